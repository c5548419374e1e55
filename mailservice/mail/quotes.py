"""Reply-quote and signature stripping, and HTML-to-text conversion for message bodies.

A citizen's reply usually carries our whole previous letter under it. What they wrote now is what staff read
first, so :func:`split_reply` separates it from the quote and the signature. It errs towards keeping text: a
missed quote costs a few lines of reading, a false cut hides what the citizen said. The whole body is always
kept elsewhere; this only decides what is shown first.
"""

from __future__ import annotations

import re

from bs4 import BeautifulSoup, Comment, Declaration, Doctype, NavigableString, ProcessingInstruction, Tag

__all__ = ["html_text_and_tree", "html_to_text", "split_reply"]

# --------------------------------------------------------------------------------------------------
# HTML to text
# --------------------------------------------------------------------------------------------------

_SKIP_TAGS = {
    "script",
    "style",
    "head",
    "title",
    "noscript",
    "template",
    "iframe",
    "object",
    "embed",
    "svg",
    "meta",
    "link",
    "xml",
    "button",
    "select",
    "canvas",
    "audio",
    "video",
}
_PARAGRAPH_TAGS = {
    "p",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "table",
    "ul",
    "ol",
    "dl",
    "pre",
    "address",
    "center",
    "figure",
    "form",
    "fieldset",
}
_BLOCK_TAGS = {
    "div",
    "section",
    "article",
    "header",
    "footer",
    "main",
    "nav",
    "aside",
    "tr",
    "dt",
    "dd",
    "caption",
    "tbody",
    "thead",
    "tfoot",
    "body",
    "html",
    "o:p",
}
_SPACE = re.compile(r"[ \t\r\n\f\v\u00a0\u200b\u200e\u200f\u2000-\u200a\u202f\u205f\u3000]+")
_HR_LINE = "_" * 32
# Private-use character: cannot come from the markup itself after html.parser decoding.
_SENTINEL = "\ue000QUOTE\ue000"


_MAX_RENDER_DEPTH = 150


def _render(node: Tag, out: list[str], *, pre: bool = False, depth: int = 0) -> None:
    if depth > _MAX_RENDER_DEPTH:
        # Absurdly deep markup (hostile or generated): keep its words, lose its layout, avoid recursion.
        out.append(" ".join(node.get_text(" ").split()))
        return
    for child in node.children:
        if isinstance(child, (Comment, Declaration, Doctype, ProcessingInstruction)):
            continue
        if isinstance(child, NavigableString):
            text = str(child)
            out.append(text if pre else _SPACE.sub(" ", text))
            continue
        if not isinstance(child, Tag):
            continue
        name = (child.name or "").lower()
        if name in _SKIP_TAGS:
            continue
        if name == "br":
            out.append("\n")
        elif name == "hr":
            out.append(f"\n{_HR_LINE}\n")
        elif name == "blockquote":
            inner = _finish(_render_to_list(child, pre=pre, depth=depth + 1))
            quoted = "\n".join(f"> {line}" if line else ">" for line in inner.split("\n"))
            out.append(f"\n{quoted}\n")
        elif name in ("td", "th"):
            _render(child, out, pre=pre, depth=depth + 1)
            out.append("  ")
        elif name == "li":
            out.append("\n- ")
            _render(child, out, pre=pre, depth=depth + 1)
            out.append("\n")
        elif name == "a":
            start = len(out)
            _render(child, out, pre=pre, depth=depth + 1)
            label = "".join(out[start:]).strip()
            href = str(child.get("href") or "").strip()
            # Show where a link really points: the visible text of a link is not to be trusted.
            if href.lower().startswith(("http://", "https://")) and href not in label:
                out.append(f" <{href}>")
        elif name == "img":
            alt = str(child.get("alt") or "").strip()
            if alt:
                out.append(f"[{_SPACE.sub(' ', alt)}]")
        elif name == "pre":
            out.append("\n\n")
            _render(child, out, pre=True, depth=depth + 1)
            out.append("\n\n")
        elif name in _PARAGRAPH_TAGS:
            out.append("\n\n")
            _render(child, out, pre=pre, depth=depth + 1)
            out.append("\n\n")
        elif name in _BLOCK_TAGS:
            out.append("\n")
            _render(child, out, pre=pre, depth=depth + 1)
            out.append("\n")
        else:
            _render(child, out, pre=pre, depth=depth + 1)


def _render_to_list(node: Tag, *, pre: bool = False, depth: int = 0) -> list[str]:
    out: list[str] = []
    _render(node, out, pre=pre, depth=depth)
    return out


def _finish(parts: list[str]) -> str:
    lines = [line.strip(" \t") for line in "".join(parts).split("\n")]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")


def _soup(html: str) -> BeautifulSoup:
    soup = BeautifulSoup(html, "html.parser")
    # Removed up front so that even the flattened rendering of over-deep markup never shows them.
    for tag in soup.find_all(list(_SKIP_TAGS)):
        tag.extract()
    return soup


def html_to_text(html: str) -> str:
    """Convert an HTML body to plain text: scripts, styles and comments dropped, blockquotes as "> " lines."""
    return html_text_and_tree(html)[0]


def html_text_and_tree(html: str) -> tuple[str, BeautifulSoup | None]:
    """:func:`html_to_text` and the parsed markup it was read from (None for an empty body), so that
    :func:`split_reply` need not parse an HTML-only letter a second time (``tree=``)."""
    if not html or not html.strip():
        return "", None
    soup = _soup(html)
    return _finish(_render_to_list(soup)), soup


# --------------------------------------------------------------------------------------------------
# Quote detection in text
# --------------------------------------------------------------------------------------------------

_SEPARATOR = re.compile(
    r"^\s*[-=_*]{2,}\s*("
    r"original message|forwarded message|исходное сообщение|пересылаемое сообщение|"
    r"переадресованное сообщение|"
    r"пересланное сообщение|ursprüngliche nachricht|original nachricht|weitergeleitete nachricht|"
    r"message d'origine|message transféré|mensaje original|mensaje reenviado|oorspronkelijk bericht|"
    r"doorgestuurd bericht|oprindelig meddelelse|videresendt meddelelse|ursprungligt meddelande|"
    r"vidarebefordrat meddelande|opprinnelig melding|wiadomość oryginalna|oryginalna wiadomość|"
    r"przekazana wiadomość|messaggio originale|mensagem original)\s*[-=_*]{2,}\s*$",
    re.IGNORECASE,
)
_FORWARD_INTRO = re.compile(
    r"^\s*(begin forwarded message|начало пересылаемого сообщения|начало переадресованного сообщения|"
    r"anfang der weitergeleiteten nachricht|début du message réexpédié)\s*:?\s*$",
    re.IGNORECASE,
)
_RULE_LINE = re.compile(r"^\s*[_\-]{10,}\s*$")
_WROTE = re.compile(
    r"(wrote|writes|написал\(а\)|написала?|пишет|schrieb|a écrit|escribió|skrev|schreef|napisał\(a\)|"
    r"napisała?|ha scritto|escreveu|kirjoitti)\s*:\s*$",
    re.IGNORECASE,
)
_ATTRIBUTION_START = re.compile(
    r"^\s*(on|am|le|el|den|op|w dniu|il|em|\d{1,4}[./\-]|\w{2,4}\.?,?\s+\d{1,2}|"
    r"(пн|вт|ср|чт|пт|сб|вс|понедельник|вторник|среда|четверг|пятница|суббота|воскресенье)\b)",
    re.IGNORECASE,
)
_EMAIL_IN_LINE = re.compile(r"[\w.+\-]{1,64}@[\w\-]{1,63}(\.[\w\-]{1,63}){1,8}")
_TIME_OR_DATE = re.compile(r"\d{1,2}[:.]\d{2}|\d{4}")
_HEADER_LABELS = (
    "from|от|von|de|fra|från|van|od|da|kimden|"
    "sent|date|to|subject|cc|bcc|reply-to|"
    "отправлено|дата|кому|тема|копия|ответить|"
    "wysłano|temat|do|data|dw|"
    "datum|gesendet|an|betreff|"
    "envoyé|à|objet|"
    "sendt|til|emne|skickat|till|ämne|verzonden|aan|onderwerp|"
    "enviado|para|asunto|inviato|oggetto|a"
)
_FROM_LINE = re.compile(r"^\s*\*?\s*(from|от|von|de|fra|från|van|od|da|kimden)\s*\*?\s*:\s*\*?\s*\S", re.I)
_HEADER_LINE = re.compile(rf"^\s*\*?\s*({_HEADER_LABELS})\s*\*?\s*:", re.IGNORECASE)


def _is_quote_line(line: str) -> bool:
    return line.lstrip().startswith(">")


def _attribution_span(lines: list[str], i: int) -> int:
    """Number of lines (1-3) of a reply attribution ("On ... wrote:") starting at ``i``, or 0."""
    first = lines[i].strip()
    if not first or _is_quote_line(first) or len(first) > 300:
        return 0
    for span in (1, 2, 3):
        if i + span > len(lines):
            break
        if span > 1 and not _ATTRIBUTION_START.match(first):
            break
        last = lines[i + span - 1].strip()
        if span > 1 and not last:
            break
        if not last.endswith(":"):
            # Both kinds below end with a colon; a longer span is tried next. Most lines of a letter end here,
            # without the case-insensitive search of every line (bench/intake.py).
            continue
        chunk = " ".join(part.strip() for part in lines[i : i + span])
        if len(chunk) > 400:
            break
        if _WROTE.search(chunk):
            return span
        # Mail.ru / Yandex / Gmail-in-other-languages attribution: a date or time, an address, a colon.
        if chunk.endswith(":") and _EMAIL_IN_LINE.search(chunk) and _TIME_OR_DATE.search(chunk):
            return span
    return 0


def _is_header_block(lines: list[str], i: int) -> bool:
    """An Outlook-style block of the quoted message's headers ("From:/Sent:/To:/Subject:") starts at ``i``."""
    if not _FROM_LINE.match(lines[i]):
        return False
    following = 0
    for line in lines[i + 1 : i + 7]:
        if _HEADER_LINE.match(line):
            following += 1
    strong = "mailto:" in lines[i] or _EMAIL_IN_LINE.search(lines[i]) is not None
    return following >= 2 or (following >= 1 and strong)


def _next_text_line(lines: list[str], start: int) -> str | None:
    for line in lines[start:]:
        if line.strip():
            return line
    return None


def _find_quote(lines: list[str]) -> tuple[int | None, set[int]]:
    """Return (index where the quoted remainder starts, indices of inline quote lines before it)."""
    inline: set[int] = set()
    i = 0
    while i < len(lines):
        line = lines[i]
        if _is_quote_line(line):
            inline.add(i)
            i += 1
            continue
        if _SEPARATOR.match(line) or _FORWARD_INTRO.match(line):
            return i, inline
        if _RULE_LINE.match(line):
            nxt = _next_text_line(lines, i + 1)
            if nxt is not None and _FROM_LINE.match(nxt):
                return i, inline
        if _is_header_block(lines, i):
            if not any(lines[k].strip() for k in range(i) if k not in inline):
                # Headers at the very top are the letter's own (pasted or a formal letterhead), not a quote.
                i += 1
                while i < len(lines) and _HEADER_LINE.match(lines[i]):
                    i += 1
                continue
            # Some clients put Date:/Subject: above From:, and a rule line above the block.
            while i > 0 and (_HEADER_LINE.match(lines[i - 1]) or _RULE_LINE.match(lines[i - 1])):
                i -= 1
            return i, inline
        span = _attribution_span(lines, i)
        if span:
            nxt = _next_text_line(lines, i + span)
            if nxt is not None and _is_quote_line(nxt):
                # Attribution of a ">"-quoted block: the block may be answered inline below it.
                inline.update(range(i, i + span))
                i += span
                continue
            return i, inline
        i += 1
    return None, inline


# --------------------------------------------------------------------------------------------------
# Signatures
# --------------------------------------------------------------------------------------------------

_SIG_DELIMITER = re.compile(r"^--\s?$")  # RFC 3676 4.3: "-- "; many clients strip the trailing space
_DEVICE_FOOTER = re.compile(
    r"^\s*("
    r"sent from my [\w\- ]{1,40}|"
    r"sent from (outlook|mail for windows|yahoo mail|yandex mail|my mobile)[\w\- ]{0,30}|"
    r"get outlook for (ios|android)|sent with [\w\- ]{1,30}|"
    r"(отправлено|послано)\s+(с|со|из)\s+[\w.\- ]{1,60}|"
    r"von meinem [\w\- ]{1,40} gesendet|envoyé de mon [\w\- ]{1,40}|skickat från min [\w\- ]{1,40}|"
    r"verzonden (vanaf|met) [\w\- ]{1,40}|wysłane z [\w\- ]{1,40}"
    r")\s*[.!]?\s*(<[^>]*>)?\s*$",
    re.IGNORECASE,
)
_SIGN_OFF = re.compile(
    r"^\s*(с уважением|с наилучшими пожеланиями|с уважением и наилучшими пожеланиями|всего доброго|"
    r"всего наилучшего|искренне ваш[аи]?|с благодарностью|заранее благодарю|заранее спасибо|"
    r"best regards|kind regards|warm regards|regards|best wishes|sincerely|yours sincerely|yours truly|"
    r"cheers|mit freundlichen grüßen|viele grüße|beste grüße|pozdrawiam|z poważaniem|med venlig hilsen|"
    r"venlig hilsen|mvh|met vriendelijke groet|vriendelijke groet|med vänlig hälsning|vänliga hälsningar|"
    r"hälsningar|cordialement|bien cordialement|saludos|un saluto|cordiali saluti)"
    r"\s*[,.!]?\s*(\S.{0,60})?$",
    re.IGNORECASE,
)
# Thanks alone on a line ends many letters, but "Спасибо за ответ, ..." begins a sentence: whole line only.
_THANKS_LINE = re.compile(
    r"^\s*(спасибо|спасибо заранее|благодарю|thanks|thank you|many thanks|thanks in advance|danke|tak|tack)"
    r"\s*[,.!]*\s*$",
    re.IGNORECASE,
)
_MAX_SIGNATURE_LINES = 12
_MAX_SIGNATURE_CHARS = 800
_MAX_DELIMITED_SIGNATURE_LINES = 30


def _split_signature(lines: list[str]) -> tuple[list[str], list[str]]:
    """Split trailing signature lines off ``lines``; the body part is never left empty."""
    body_end = len(lines)
    while body_end and not lines[body_end - 1].strip():
        body_end -= 1
    if body_end == 0:
        return lines, []
    cut: int | None = None
    for j in range(body_end - 1, -1, -1):
        if _SIG_DELIMITER.match(lines[j]) and body_end - j <= _MAX_DELIMITED_SIGNATURE_LINES:
            cut = j
            break
    if cut is None and _DEVICE_FOOTER.match(lines[body_end - 1]):
        cut = body_end - 1
    if cut is None:
        for j in range(body_end - 1, max(-1, body_end - 1 - _MAX_SIGNATURE_LINES), -1):
            if _SIGN_OFF.match(lines[j]) or _THANKS_LINE.match(lines[j]):
                tail = "\n".join(lines[j:body_end])
                if len(tail) <= _MAX_SIGNATURE_CHARS:
                    cut = j
                break
    if cut is None:
        return lines, []
    if not any(line.strip() for line in lines[:cut]):
        return lines, []  # the "signature" is all there is: keep it as the text
    return lines[:cut], lines[cut:]


# --------------------------------------------------------------------------------------------------
# HTML quote containers
# --------------------------------------------------------------------------------------------------

_QUOTE_CLASSES = {
    "gmail_quote",
    "moz-cite-prefix",
    "yahoo_quoted",
    "outlookmessageheader",
    "protonmail_quote",
    "zmail_extra",
    "ymail_android_signature_quoted",
}
_QUOTE_IDS = {
    "divrplyfwdmsg",
    "appendonsend",
    "stopspelling",
    "isforwardcontent",
    "isreplycontent",
    "mail-editor-reference-message-container",
    "zwchr",
    "olk_src_body_section",
}
_HEADER_START = re.compile(rf"^\s*({_HEADER_LABELS})\s*:", re.IGNORECASE)


def _is_quote_container(tag: Tag) -> bool:
    name = (tag.name or "").lower()
    if name == "blockquote":
        return True
    classes = {str(c).lower() for c in (tag.get("class") or [])}
    if classes & _QUOTE_CLASSES:
        return True
    if str(tag.get("id") or "").lower() in _QUOTE_IDS:
        return True
    if name in ("div", "p", "hr"):
        style = str(tag.get("style") or "").lower().replace(" ", "")
        following = ""
        if name == "hr":
            following = _following_text(tag, 120)
        elif "border-top" in style:
            following = tag.get_text(" ", strip=True)[:120]
        if following and _HEADER_START.match(following) and _FROM_LINE.match(following):
            return True
    return False


def _following_text(tag: Tag, limit: int) -> str:
    parts: list[str] = []
    size = 0
    for element in tag.next_elements:
        if isinstance(element, NavigableString) and not isinstance(element, Comment):
            text = _SPACE.sub(" ", str(element))
            parts.append(text)
            size += len(text)
            if size >= limit:
                break
    return "".join(parts).strip()


def _split_html(html: str) -> tuple[str, str] | None:
    """Cut an HTML body at the first quote container; return (text before, quoted text) or None."""
    return _split_tree(_soup(html))


def _split_tree(soup: BeautifulSoup) -> tuple[str, str] | None:
    """:func:`_split_html` of markup already parsed (marks the cut in ``soup`` itself)."""
    for tag in soup.find_all(True):
        if isinstance(tag, Tag) and _is_quote_container(tag):
            tag.insert_before(NavigableString(_SENTINEL))
            break
    else:
        return None
    text = _finish(_render_to_list(soup))
    before, _, after = text.partition(_SENTINEL)
    return before.strip("\n"), after.strip("\n")


# --------------------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------------------


def _strip_edges(lines: list[str]) -> list[str]:
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and (not lines[end - 1].strip() or _RULE_LINE.match(lines[end - 1])):
        end -= 1
    return lines[start:end]


def _split_text(text: str) -> tuple[str, str, str]:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    cut, inline = _find_quote(lines)
    head_end = len(lines) if cut is None else cut
    new_lines = [line for idx, line in enumerate(lines[:head_end]) if idx not in inline]
    quoted_lines = [line for idx, line in enumerate(lines[:head_end]) if idx in inline] + lines[head_end:]
    new_lines = _strip_edges(new_lines)
    if not new_lines:
        return text.strip(), "", ""
    body, signature = _split_signature(new_lines)
    return (
        "\n".join(_strip_edges(body)),
        "\n".join(_strip_edges(quoted_lines)),
        "\n".join(_strip_edges(signature)),
    )


def split_reply(text: str, html: str | None = None, *, tree: BeautifulSoup | None = None) -> tuple[str, str, str]:
    """Split a reply into (new text, quoted text, signature).

    Recognises "> " quoting (inline answers between quoted lines are kept), attributions ("On ... wrote:",
    "... написал(а):", Mail.ru and Yandex "date, name <address>:"), "-----Original Message-----" and
    forwarded-message separators, Outlook "From:/Sent:" and "От:/Отправлено:" header blocks, HTML quote
    containers (blockquote, Gmail, Thunderbird, Outlook, Mail.ru, Yandex), the RFC 3676 "-- " signature
    delimiter, device footers and common sign-offs ("С уважением,") of bounded length. When everything looks
    quoted, the whole text is returned as new text: the new text is never empty if the message had text.
    ``tree`` is ``html`` already parsed (:func:`html_text_and_tree`); it may be changed here.
    """
    text = text or ""
    new, quoted, signature = _split_text(text)
    if quoted or not html:
        return new, quoted, signature
    # The plain part showed no quote (or there was none): the HTML structure may still mark one.
    try:
        split = _split_tree(tree) if tree is not None else _split_html(html)
    except Exception:  # a parser failure on hostile markup must not lose the message; keep the text result
        split = None
    if split is None:
        return new, quoted, signature
    before, after = split
    h_new, h_quoted, h_signature = _split_text(before)
    if not before.strip():
        return new, quoted, signature
    return h_new, "\n".join(part for part in (h_quoted, after) if part), h_signature
