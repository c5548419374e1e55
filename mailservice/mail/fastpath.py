"""The parser's fast paths: header values and the message tree read cheaply, with policy.default's results.

policy.default's header parser costs tens of microseconds per value, most of the parse time of an ordinary
message. The helpers below give the same result as ``str(policy.default.header_factory(name, value))`` (or
its ``addresses``) for the values ordinary mail is made of, and answer None for anything else, which then
goes through policy.default as before. :func:`_parse_default` builds the tree policy.default's parser would,
by the cheaper compat32 parse when the two cannot differ. tests/test_parse.py compares both on generated values.
Pure: no I/O.
"""

from __future__ import annotations

import base64
import email.utils
import functools
import re
from collections.abc import Callable
from email import policy
from email.headerregistry import BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.policy import EmailPolicy
from typing import Any, cast

from mailservice.mail.headers import decode_bytes

# An RFC 2047 encoded word in its strict form: a plain charset label, base64 of whole quanta or Q text of
# RFC 2047 5(3) characters and =XX escapes, and no "?" or white space inside (which would make the stdlib
# parser split it differently).
_STRICT_WORD = re.compile(
    r"=\?([A-Za-z0-9][A-Za-z0-9_.:+-]{0,79})(?:\*[A-Za-z0-9-]{0,40})?\?"
    r"(?:[bB]\?((?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{4}|[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=))"
    r"|[qQ]\?((?:[!-<>@-~]|=[0-9A-Fa-f]{2})+))\?="
)
_Q_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")
_WSP_RUN = re.compile(r"([ \t]+)")
# ASCII controls other than tab: the stdlib tokenisers treat some of them as white space.
_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_HEADER_REGISTRY = cast(HeaderRegistry, policy.default.header_factory)
_CACHED_VALUE_MAX = 1000


@functools.lru_cache(maxsize=512)
def _cached_header_object(name: str, value: str) -> BaseHeader:
    return _HEADER_REGISTRY(name, value)


def _header_object(name: str, value: str) -> BaseHeader:
    """``policy.default.header_factory(name, value)``, remembered for short values.

    Header objects are immutable, and the same values recur: a part's Content-Type is read by several
    Message methods, and "text/plain; charset=utf-8" or "base64" by nearly every message.
    """
    if len(value) > _CACHED_VALUE_MAX:
        return _HEADER_REGISTRY(name, value)
    return _cached_header_object(name, value)


# RFC 2045 5.1 tokens: printable ASCII but tspecials. Parameter names and unquoted values leave out "*", "'"
# and "%" too, which would make them RFC 2231 extended parameters.
_MIME_TTEXT = r"[!#$%&'*+.0-9A-Z^_`a-z{|}~-]+"
_MIME_ATTRIBUTE = r"[!#$&+.0-9A-Z^_`a-z{|}~-]+"
_MIME_TYPE_PART = re.compile(rf"[ \t]*{_MIME_TTEXT}[ \t]*(?:/[ \t]*{_MIME_TTEXT}[ \t]*)?")
_MIME_PARAMETER = re.compile(
    rf';[ \t]*({_MIME_ATTRIBUTE})[ \t]*=[ \t]*(?:({_MIME_ATTRIBUTE})|"([^"\\\x00-\x1f\x7f]*)")[ \t]*'
)


def _fast_mime_header(name: str, value: str) -> str | None:
    """:func:`_mime_header_text`, remembered for short values: Message asks for a part's Content-Type a dozen
    times per message (get_content_type, get_param, the walker), and "text/plain; charset=utf-8" recurs."""
    if len(value) > _CACHED_VALUE_MAX:
        return _mime_header_text(name, value)
    return _cached_mime_header_text(name, value)


def _mime_header_text(name: str, value: str) -> str | None:
    """``str(header)`` of a plain Content-Type or Content-Disposition value under policy.default, or None.

    The stdlib keeps the type part as written and writes the parameters anew: ``; name="value"`` each, a
    parameter with an empty value reduced to its name. Plain means ASCII tokens and quoted strings only: no
    comments, encoded words, RFC 2231 parameters or duplicate names; for these values it notes no defects.
    """
    head = _MIME_TYPE_PART.match(value)
    if head is None or not value.isascii() or ("/" in head.group()) != (name == "content-type"):
        return None
    params: dict[str, str] = {}
    pos = head.end()
    while pos < len(value):
        match = _MIME_PARAMETER.match(value, pos)
        if match is None:
            return None
        pos = match.end()
        attribute, token, quoted = match.group(1), match.group(2), match.group(3)
        if attribute in params or (quoted is not None and "=?" in quoted):
            return None  # a duplicate is a defect; encoded words are decoded even inside quoted strings
        params[attribute] = token if token is not None else quoted or ""
    if not params:
        return head.group()
    written = "; ".join(f"{key}={_quote(text)}" if text else key for key, text in params.items())
    return f"{head.group()}; {written}"


_cached_mime_header_text = functools.lru_cache(maxsize=1024)(_mime_header_text)


def _quote(text: str) -> str:
    """RFC 5322 3.2.4 quoted string, as ``_header_value_parser.quote_string`` writes it."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


_FAST_MIME_HEADERS = frozenset({"content-type", "content-disposition"})


class _ReadPolicy(EmailPolicy):
    """policy.default, cheaper: plain Content-Type and Content-Disposition values come back as the string their
    header object would be, other header objects are remembered.

    The string is all that Message's methods use of these two headers; only EmailMessage's is_attachment,
    iter_attachments and get_body read attributes of the header object, and this module calls none of them.
    """

    def header_fetch_parse(self, name: str, value: str) -> Any:
        if hasattr(value, "name"):
            return value
        value = "".join(_LINESEP.split(value))  # as EmailPolicy.header_fetch_parse
        lowered = name.lower()
        if lowered in _FAST_MIME_HEADERS:
            text = _fast_mime_header(lowered, value)
            if text is not None:
                return text
        return _header_object(name, value)


_LINESEP = re.compile(r"\n|\r")
_READ_POLICY = _ReadPolicy()


@functools.lru_cache(maxsize=256)
def _fast_reader(name: str) -> Callable[[str], str | None] | None:
    """The fast reader of a (lower-case) header name, if it has one."""
    if name == "date":
        return _fast_date
    if name in _FAST_MIME_HEADERS:
        return functools.partial(_fast_mime_header, name)
    if issubclass(_HEADER_REGISTRY.registry.get(name, _HEADER_REGISTRY.default_class), UnstructuredHeader):
        return _fast_unstructured  # RFC 5322 2.2.1 unstructured text
    return None


# UTF-8 words (most Cyrillic headers) decode the same on both paths: no second look for them.
_UTF8_LABELS = frozenset({"utf-8", "utf8"})


def _strict_word_text(match: re.Match[str], *, for_address: bool) -> str | None:
    """Decoded text of a strict encoded word, as the stdlib decodes it; None when it would not decode cleanly."""
    charset, b_payload, q_payload = match.group(1, 2, 3)
    try:
        if b_payload is not None:
            data = base64.b64decode(b_payload, validate=True)
        else:
            data = _Q_ESCAPE.sub(lambda m: bytes.fromhex(m.group(1).decode()), q_payload.replace("_", " ").encode())
        text = data.decode(charset)
    except Exception:  # unknown charset or bytes invalid in it: the stdlib then adds defects and surrogates
        return None
    if not data.isascii() and charset.lower() not in _UTF8_LABELS and decode_bytes(data, charset)[0] != text:
        return None  # a label the careful path overrules (UTF-8 or Cyrillic under a Latin label): decode it there
    if _SURROGATE.search(text) or "=?" in text:
        return None
    if for_address and _ASCII_CONTROL.search(text):  # headerregistry.Address refuses CR and LF
        return None
    return text


def _fast_unstructured(value: str) -> str | None:
    """``str(header)`` of an unstructured header as policy.default builds it, or None when not sure."""
    if "=?" not in value:
        return None if _SURROGATE.search(value) else value
    if not value.isascii() or _ASCII_CONTROL.search(value):
        return None
    return _decode_words(value, for_address=False)


def _decode_words(value: str, *, for_address: bool) -> str | None:
    """Text of white-space separated words and strict encoded words as the stdlib decodes it, or None.

    Mirrors ``_header_value_parser.get_unstructured`` (and the content of a quoted string in
    ``get_bare_quoted_string``): text outside encoded words is kept as it is, encoded words are decoded and
    the white space between two adjacent encoded words is dropped (RFC 2047 6.2). ``value`` must be ASCII
    without controls, so that only space and tab are white space to the stdlib's tokenisers too.
    """
    out: list[str] = []
    space = ""
    after_word = False
    for i, piece in enumerate(_WSP_RUN.split(value)):
        if i % 2:
            space = piece
            continue
        if not piece:  # only at either end
            continue
        match = _STRICT_WORD.fullmatch(piece)
        if match is not None:
            text = _strict_word_text(match, for_address=for_address)
            if text is None:
                return None
            if not after_word:
                out.append(space)
            out.append(text)
            after_word = True
        elif "=?" in piece:  # a word glued to text or malformed: the stdlib has its own recovery for it
            return None
        else:
            out.append(space)
            out.append(piece)
            after_word = False
        space = ""
    out.append(space)
    return "".join(out)


def _fast_date(value: str) -> str | None:
    """``str(header)`` of a Date header as policy.default builds it: the date re-formatted (RFC 5322 3.3)."""
    if not value:
        return None
    try:
        return email.utils.format_datetime(email.utils.parsedate_to_datetime(value))
    except Exception:  # the stdlib notes a defect or fails here: let it
        return None


_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_DOT_ATOM = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
_ADDR_SPEC = rf"{_DOT_ATOM}@{_DOT_ATOM}"
# One mailbox of an address list (RFC 5322 3.4) in its plain forms: addr-spec, <addr-spec>, or a display name
# then <addr-spec>. The display name is one quoted string without escapes, or atoms and encoded words with
# the periods of obs-phrase (RFC 5322 4.1: "Иванов И. И.", which Python's own encoder writes as an encoded
# word followed by "."). No comments, groups or domain literals: those go to the full parser.
_PLAIN_MAILBOX = re.compile(
    rf"""[ \t]*(?:
        (?P<bare>{_ADDR_SPEC})
      | (?:"(?P<quoted>[^"\\]*)"[ \t]*|(?P<words>{_ATEXT}(?:{_ATEXT}|[ \t.])*))?<(?P<angle>{_ADDR_SPEC})>
    )[ \t]*(?:,|$)""",
    re.VERBOSE,
)
_PHRASE_ITEM = re.compile(rf"([ \t]+)|(\.)|({_ATEXT}+)")


def _phrase_text(words: str, *, join_words: bool = True) -> str | None:
    """A display name of atoms, encoded words and periods as ``_header_value_parser.get_phrase`` reads it.

    Items keep one space where white space separated them and none where they touch ("И." stays "И."). The
    white space between two adjacent encoded words is dropped (RFC 2047 6.2; the stdlib keeps it, which splits a
    name a mailer cut mid-word: «Новосиб ирскземстрой», tryout F16; ``join_words=False`` reads it as the stdlib
    does, for the tests that compare the two). The stdlib collapses runs of white space
    inside decoded words as well, which ``_clean_line`` does after this anyway.
    """
    if words.endswith("."):  # a period right before "<": the stdlib's display_name raises AttributeError
        return None
    out: list[str] = []
    spaced = False
    after_word = False
    for space, period, atom in _PHRASE_ITEM.findall(words):
        if space:
            spaced = bool(out)
            continue
        text = period or atom
        encoded = "=?" in atom
        if encoded:
            word_match = _STRICT_WORD.fullmatch(atom)
            decoded = _strict_word_text(word_match, for_address=True) if word_match else None
            if decoded is None:
                return None
            text = decoded
        if spaced and not (join_words and encoded and after_word):
            out.append(" ")
        out.append(text)
        spaced = False
        after_word = encoded
    return "".join(out)


def _fast_addresses(value: str, *, join_words: bool = True) -> list[tuple[str, str]] | None:
    """(display name, addr-spec) pairs as policy.default's address parser gives them, or None when not sure;
    except that white space between adjacent encoded words of a name is dropped (RFC 2047 6.2) unless
    ``join_words`` is False.

    Display names may differ from the stdlib's in white space only, which ``_clean_line`` removes: callers must
    pass them through it.
    """
    if not value.isascii() or _ASCII_CONTROL.search(value):
        return None
    found: list[tuple[str, str]] = []
    pos = 0
    while pos < len(value):
        match = _PLAIN_MAILBOX.match(value, pos)  # ends after its comma or at the end of the value
        if match is None:
            return None
        pos = match.end()
        if match.group("bare") is not None:
            spec, display = match.group("bare"), ""
        else:
            spec = match.group("angle")
            display = match.group("quoted") or ""
            words = match.group("words")
            if words:
                phrase = _phrase_text(words, join_words=join_words)
                if phrase is None:
                    return None
                display = phrase
            elif "=?" in display:  # the stdlib decodes encoded words even inside quotes (Outlook sends them)
                decoded = _decode_words(display, for_address=True)
                if decoded is None:
                    return None
                display = decoded
        if "=?" in spec:  # and inside the local part
            return None
        found.append((display, spec))
    if not found or value.rstrip(" \t").endswith(","):  # a trailing comma: rare, left to the full parser
        return None
    return found


# compat32's header handling with policy.default's message class. The feedparser asks every part for its
# Content-Type (and a multipart for its boundary): under policy.default each question parses the header
# into an object, which made the parse itself cost eight times compat32's.
_SCAN_POLICY = policy.compat32.clone(message_factory=EmailMessage)
_MULTIPART_CTE = ("7bit", "8bit", "binary")


def _structure_key(part: Message) -> tuple[object, ...]:
    """Everything the feedparser's decisions about one part depend on: media type, boundary, encoding check."""
    ctype = part.get_content_type()
    if ctype.split("/")[0] != "multipart":
        return (ctype,)
    boundary = part.get_boundary()
    if boundary is None:
        return (ctype, None)
    return (ctype, boundary, str(part.get("content-transfer-encoding", "8bit")).lower() in _MULTIPART_CTE)


def _quick_parse(data: bytes) -> Message | None:
    """The tree policy.default's parser builds, made by the cheaper compat32 parse; None when they may differ.

    Both parsers split the message alike and keep the same raw header values; they can differ only where a
    part's media type, boundary or transfer encoding reads differently under the two policies. That is
    checked for every part after switching it to policy.default semantics; any difference (or error) and the
    caller parses with policy.default itself.
    """
    try:
        msg = BytesParser(policy=_SCAN_POLICY).parsebytes(data)
        parts = list(msg.walk())
        seen = [_structure_key(part) for part in parts]
        for part in parts:
            part.policy = _READ_POLICY
        if any(_structure_key(part) != key for part, key in zip(parts, seen, strict=True)):
            return None
    except Exception:  # hostile structure or header: policy.default's parse decides, as it always did
        return None
    return msg


def _parse_default(data: bytes) -> Message:
    """Parse as ``BytesParser(policy=policy.default)`` does, cheaply when possible; may raise as it does."""
    msg = _quick_parse(data)
    if msg is None:
        msg = BytesParser(policy=policy.default).parsebytes(data)
    return msg
