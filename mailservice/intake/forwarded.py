"""Who wrote a letter another body forwarded to us: the forwarded author's name, address, date, subject and text.

A body outside the department («Направляем по компетенции обращение гр. Иванова…») forwards a citizen's letter
either inline, under a client's separator and a block of the original's headers, or as an attached
``message/rfc822``. :func:`read_forwarded` finds the first such letter and returns its author, or None. Pure: no
I/O, no database; it reads a :class:`~mailservice.mail.parse.ParsedMessage` whose attachments still carry their
bytes (intake's *prepare* step calls it before the bytes go to the blob store).

Inline shapes read (each in Russian and English where the client has both):

* Gmail: ``---------- Forwarded message ---------`` / ``Пересылаемое сообщение``, then ``From:``/``От:``,
  ``Date:``, ``Subject:``, ``To:`` (Gmail keeps some labels English in its Russian interface);
* Thunderbird: ``-------- Forwarded Message --------`` / ``-------- Пересылаемое сообщение --------``, then
  ``Subject:``, ``Date:``, ``From:``, ``To:`` with a tab after the colon;
* Yandex: ``-------- Пересылаемое сообщение --------``, then either a line ``16.02.2026, 10:00, "Имя" <адрес>:``
  or ``От кого:``/``Кому:``/``Дата:``/``Тема:``; ends at ``-------- Конец пересылаемого сообщения --------``;
* Mail.ru: the same separator with ``От кого:``, ``Кому:``, ``Дата:``, ``Тема:``;
* Apple Mail: ``Begin forwarded message:`` / ``Начало переадресованного сообщения:``, the block and the text
  often quoted with ``>``;
* Outlook: ``-----Original Message-----`` / ``-----Исходное сообщение-----`` or a rule of underscores, then
  ``From:``/``От:`` (``Имя [mailto:адрес]`` too), ``Sent:``/``Отправлено:``, ``To:``/``Кому:``,
  ``Subject:``/``Тема:``. Outlook writes the same block above a quoted *reply*, so these markers count only when
  the subject is not a reply's (``RE:``, ``Ответ:``, ``AW:``...).

A quoted reply («On … wrote:», «… написал(а):») is no forward, and a forwarded block without a ``From`` line that
holds a valid address gives None: nothing is guessed from the text around it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from mailservice.intake.authres import forwarder_trust
from mailservice.mail.headers import normalise_address, one_line
from mailservice.mail.parse import ParsedMessage, ParseError, parse_message

__all__ = ["Finding", "Forwarded", "examine", "read_forwarded", "strip_forward_prefix"]

# The separator parse_message puts above the text of an attached message/rfc822 (mail/body.py, README "Limits"):
# what follows it in ParsedMessage.text came from an attachment, which is read from the attachment itself.
PARSER_SEPARATOR = "-------- Пересланное сообщение --------"
# The most text kept from the forwarded letter (the whole letter stays in the source).
MAX_TEXT = 20_000

_DEFINITE = re.compile(
    r"^\s*[-=_*]{2,}\s*(forwarded message|пересылаемое сообщение|переадресованное сообщение|"
    r"пересланное сообщение)\s*[-=_*]{2,}\s*$"
    r"|^\s*(begin forwarded message|начало переадресованного сообщения|начало пересылаемого сообщения)\s*:?\s*$",
    re.IGNORECASE,
)
_AMBIGUOUS = re.compile(
    r"^\s*[-=_*]{2,}\s*(original message|исходное сообщение)\s*[-=_*]{2,}\s*$|^\s*_{10,}\s*$", re.IGNORECASE
)
_END = re.compile(
    r"^\s*[-=_*]{2,}\s*(конец пересылаемого сообщения|end of forwarded message|конец переадресованного сообщения)"
    r"\s*[-=_*]{2,}\s*$",
    re.IGNORECASE,
)
# A reply's subject: Outlook's separators above it quote, they do not forward.
_REPLY_SUBJECT = re.compile(r"^\s*(re|ответ|отв|aw|antw|sv|odp|rif)\s*(\[\d+\])?\s*:", re.IGNORECASE)
_FORWARD_PREFIX = re.compile(r"^\s*((fwd?|fw|пересл|переслано|tr|wg|doorst)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)
_LABELS = {
    "from": "from",
    "от": "from",
    "от кого": "from",
    "отправитель": "from",
    "date": "date",
    "sent": "date",
    "дата": "date",
    "отправлено": "date",
    "дата отправки": "date",
    "subject": "subject",
    "тема": "subject",
    "to": "to",
    "кому": "to",
    "cc": "to",
    "копия": "to",
    "reply-to": "to",
    "ответить": "to",
}
_HEADER_LINE = re.compile(
    r"^\s*\*?\s*(" + "|".join(sorted(map(re.escape, _LABELS), key=len, reverse=True)) + r")\s*\*?\s*:\s*\*?(.*)$",
    re.IGNORECASE,
)
# Yandex's one-line attribution under its separator: «16.02.2026, 10:00, "Петров" <petrov@example.ru>:».
_YANDEX_LINE = re.compile(
    r"^\s*(\d{1,2}\.\d{1,2}\.\d{2,4}(?:,?\s*\d{1,2}:\d{2}(?::\d{2})?)?)\s*,\s*(.*?<[^<>]+>)\s*:\s*$"
)
_ANGLED = re.compile(r"<\s*(?:mailto:)?([^<>\s]+@[^<>\s]+?)\s*>")
_MAILTO = re.compile(r"\[\s*mailto:\s*([^\]\s]+)\s*\]", re.IGNORECASE)
_BARE = re.compile(r"[^\s<>()\[\],;:\"'*]{1,64}@[^\s<>()\[\],;:\"'*]{1,255}")
_QUOTE = re.compile(r"^\s?>\s?")


@dataclass(frozen=True)
class Forwarded:
    """The forwarded letter's author (``address`` valid for delivery), as the forward shows it.

    ``date`` is the date as the forward writes it (clients write it in a dozen ways; it is shown to staff, never
    used for a term: the legal clock runs from our registration). ``source`` is ``inline`` or ``attachment``.
    """

    name: str
    address: str
    date: str
    subject: str
    text: str
    source: str


def read_forwarded(parsed: ParsedMessage) -> Forwarded | None:
    """The first forwarded letter in ``parsed`` with a valid author address, or None.

    The sender's own text is read first (an inline forward); then the first attached ``message/rfc822`` (its
    bytes needed: call before they are dropped). A forward of the sender's own letter counts all the same; the
    caller decides what a forward by whom means.
    """
    own = parsed.text.split(PARSER_SEPARATOR, 1)[0] if PARSER_SEPARATOR in parsed.text else parsed.text
    found = _inline(own, parsed.subject)
    if found is not None:
        return found
    for part in parsed.attachments:
        if part.content_type in ("message/rfc822", "message/global") and part.data:
            return _attached(part.data)
    return None


# Every marker holds one of these (lower case): most letters hold none and are passed over at once (intake's speed).
_MARKER_WORDS = ("сообщени", "message", "__________")


def _inline(text: str, subject: str) -> Forwarded | None:
    lowered = text.lower()
    if not any(word in lowered for word in _MARKER_WORDS):
        return None
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    reply = _REPLY_SUBJECT.match(subject) is not None
    for index, line in enumerate(lines):
        # A marker inside a quote («> ---------- Forwarded message») is in the letter this one answers, not its own.
        if _DEFINITE.match(line):
            # The first forward decides: a forward inside the forwarded letter is that letter's business.
            return _block(lines, index + 1, quoted=False)
        if not reply and _AMBIGUOUS.match(line):
            found = _block(lines, index + 1, quoted=False)
            if found is not None:  # a rule line over no From block is a signature's or a layout's
                return found
    return None


def _block(lines: list[str], start: int, *, quoted: bool) -> Forwarded | None:
    """Read the header block from ``start`` and the text under it."""
    i = start
    while i < len(lines) and not _QUOTE.sub("", lines[i]).strip():
        i += 1
    # Apple Mail quotes the forwarded block with ">" under an unquoted separator line.
    quoted = quoted or (i < len(lines) and _QUOTE.match(lines[i]) is not None)
    unquote = (lambda s: _QUOTE.sub("", s)) if quoted else (lambda s: s)
    fields: dict[str, str] = {}
    if i < len(lines) and (yandex := _YANDEX_LINE.match(unquote(lines[i]))):
        fields["date"], fields["from"] = yandex.group(1), yandex.group(2)
        i += 1
    else:
        last = ""
        while i < len(lines):
            line = unquote(lines[i]).rstrip()
            match = _HEADER_LINE.match(line)
            if match:
                last = _LABELS[match.group(1).lower()]
                fields.setdefault(last, match.group(2).strip(" \t*"))
            elif line.strip() and last == "to" and line[:1] in " \t":
                pass  # a long To/Cc list wrapped onto the next line
            else:
                break
            i += 1
    if "from" not in fields:
        return None
    name, address = _author(fields["from"])
    if address is None:
        return None
    body: list[str] = []
    for line in lines[i:]:
        plain = unquote(line)
        if _END.match(plain):
            break
        body.append(plain)
    text = "\n".join(body).strip("\n")
    return Forwarded(
        name=name,
        address=address,
        date=one_line(fields.get("date", ""))[:200],
        subject=one_line(fields.get("subject", ""))[:500],
        text=text[:MAX_TEXT],
        source="inline",
    )


def _author(value: str) -> tuple[str, str | None]:
    """The name and the address of a forwarded From line (``Имя <адрес>``, ``Имя [mailto:адрес]``, a bare
    address, Outlook's ``адрес<mailto:адрес>`` after an HTML conversion)."""
    value = one_line(value)
    spec = None
    for pattern in (_MAILTO, _ANGLED, _BARE):
        match = pattern.search(value)
        if match:
            spec = match.group(1) if pattern is not _BARE else match.group(0)
            value = value[: match.start()] + value[match.end() :]
            break
    address = normalise_address(spec.strip(".")) if spec else None
    if address is None:
        return "", None
    name = _BARE.sub("", value)
    name = re.sub(r"<\s*mailto:[^>]*>|[<>\[\]]", " ", name)
    name = one_line(name).strip(" \"'*,;:")
    return name[:300], address


def _attached(data: bytes) -> Forwarded | None:
    """The author of an attached message, read by the same strict parser as our own mail."""
    try:
        inner = parse_message(data)
    except ParseError:
        return None
    if inner.from_addr is None or normalise_address(inner.from_addr) is None:
        return None
    return Forwarded(
        name=inner.from_name,
        address=inner.from_addr,
        date=inner.date.strftime("%d.%m.%Y %H:%M %z") if inner.date else "",
        subject=inner.subject[:500],
        text=inner.text[:MAX_TEXT],
        source="attachment",
    )


def strip_forward_prefix(subject: str) -> str:
    """A forward's subject without its «Fwd:»/«FW:»/«Пересл:» prefixes."""
    return _FORWARD_PREFIX.sub("", subject).strip()


@dataclass(frozen=True)
class Finding:
    """A letter that forwards someone else's: its ``author``, and whether the sender is a forwarding body proven
    by our server (``trusted``; ``reason`` says why or why not, for the journal)."""

    author: Forwarded
    trusted: bool
    reason: str


def examine(
    parsed: ParsedMessage,
    authentication_results: Sequence[str],
    *,
    bodies: Collection[str],
    authserv_id: str,
    ours: Collection[str] = (),
) -> Finding | None:
    """What intake should know of a forward in ``parsed``: None when there is none, or when it forwards the
    sender's own letter or one of ours (``ours``: our addresses), which are no one else's appeal.

    A sender whose From was not read plainly (several authors, or none and Sender taken) is never trusted.
    """
    author = read_forwarded(parsed)
    if author is None or parsed.from_addr is None:
        return None
    own = {a.strip().casefold() for a in ours if a and "@" in a}
    if author.address.casefold() in own | {parsed.from_addr.casefold()}:
        return None
    if any((d.startswith("from:") and " authors; " in d) or d.startswith("no usable") for d in parsed.defects):
        return Finding(author, False, "the sender's From was not read plainly")
    trust = forwarder_trust(parsed.from_addr, authentication_results, bodies=bodies, authserv_id=authserv_id)
    return Finding(author, trust.trusted, trust.reason)
