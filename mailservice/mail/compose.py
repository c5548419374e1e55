"""Building outgoing e-mail, separate from sending it.

Messages are built with the ``compat32`` classes (``MIMEText``, ``Header``): for Cyrillic headers the modern
``EmailMessage`` folder costs about 9 ms per message (its encoded-word refolding), these about 0.4 ms, with the
same RFC 2047 / RFC 2231 output. Every value that came from outside (a citizen's name, a subject) passes
:func:`safe_header_value` before it reaches a header: Python 3.11's encoder still lets an encoded CR/LF through
(CVE-2024-6923).
"""

from __future__ import annotations

import base64
import email.policy
import functools
import io
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from email import base64mime
from email import charset as _charset
from email.generator import BytesGenerator
from email.header import Header
from email.headerregistry import Address
from email.message import Message
from email.mime.application import MIMEApplication
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, make_msgid
from typing import cast

from mailservice.config import Settings
from mailservice.db import utcnow
from mailservice.mail.headers import one_line, safe_header_value
from mailservice.templating import environment


class _Base64Charset(_charset.Charset):
    """UTF-8 with Base64 headers and bodies, splitting encoded words in linear time.

    The standard ``Charset.header_encode_lines`` re-encodes the whole growing line for every character (quadratic:
    a fifth of building an acknowledgement). Base64 of a run of characters is four characters per started three
    bytes, so the running byte count gives the same split; tests/test_compose.py checks the output against the
    standard charset's.
    """

    def header_encode_lines(self, string: str, maxlengths: Iterator[int]) -> list[str | None]:
        codec = self.output_codec or "us-ascii"
        extra = len(self.get_output_charset() or codec) + _charset.RFC2047_CHROME_LEN
        lines: list[str | None] = []
        start = used = 0
        maxlen = next(maxlengths) - extra
        for index, character in enumerate(string):
            size = len(character.encode(codec))
            if -(-(used + size) // 3) * 4 > maxlen:
                # The character does not fit: the line ends before it (None: nothing fitted on the first line).
                if not lines and index == start:
                    lines.append(None)
                else:
                    lines.append(base64mime.header_encode(string[start:index].encode(codec), codec))
                start, used = index, size
                maxlen = next(maxlengths) - extra
            else:
                used += size
        lines.append(base64mime.header_encode(string[start:].encode(codec), codec))
        return lines


# Base64 bodies: for Russian text they are a third of the size of quoted-printable.
UTF8 = _Base64Charset("utf-8")
UTF8.header_encoding = _charset.BASE64
UTF8.body_encoding = _charset.BASE64

# compat32 with CRLF line ends: what SMTP wants (RFC 5321 2.3.8); bare LF makes aiosmtpd answer "500 Line too long".
WIRE_POLICY = email.policy.compat32.clone(linesep="\r\n")
_NEWLINE = re.compile(r"\r\n|\r|\n")  # email.generator.NLCRE


@functools.lru_cache(maxsize=4096)
def _folded(name: str, value: str) -> bytes:
    """A text header folded by WIRE_POLICY: the same From on every notice, the same To on a client's notices."""
    return WIRE_POLICY.fold_binary(name, value)


def _header_line(name: str, value: str | Header, policy: email.policy.Compat32 = WIRE_POLICY) -> bytes:
    """One header as :class:`_WireGenerator` writes it (see there)."""
    if (
        isinstance(value, str)
        and value.isascii()
        and len(name) + len(value) + 2 <= (policy.max_line_length or 78)
        and "\n" not in value
        and "\r" not in value
    ):
        return f"{name}: {value}{policy.linesep}".encode("ascii", "surrogateescape")  # BytesGenerator.write
    if isinstance(value, str) and policy is WIRE_POLICY:
        return _folded(name, value)
    return policy.fold_binary(name, value)  # type: ignore[arg-type]  # compat32 folds a Header too


class _WireGenerator(BytesGenerator):
    """compat32 output, with the common header written directly.

    ``compat32`` folds every header through ``email.header.Header`` (about a third of building an
    acknowledgement). A header whose value is ASCII, has no line break and fits on one line (RFC 5322 2.1.1: 78
    characters) comes out of that folder unchanged, so it is written as is; anything else still goes through it.
    tests/test_outbox.py checks both paths give the same bytes.
    """

    def _write_headers(self, msg: Message) -> None:
        policy = cast(email.policy.Compat32, self.policy)
        for name, value in msg.raw_items():
            self._fp.write(_header_line(name, value, policy))  # type: ignore[attr-defined]
        self.write(self._NL)  # type: ignore[attr-defined]

    def _write_lines(self, lines: str) -> None:
        # The standard writer splits the body and writes it a line at a time (a Base64 body has one per 76
        # characters); one substitution gives the same bytes.
        self.write(_NEWLINE.sub(self._NL, lines))  # type: ignore[attr-defined]


def serialise(message: Message) -> bytes:
    """Bytes for the wire with CRLF line ends, never bare LF (UTF-8 headers for a message built for SMTPUTF8)."""
    if isinstance(message, email.message.EmailMessage):
        utf8 = getattr(message.policy, "utf8", False)
        return message.as_bytes(policy=email.policy.SMTPUTF8 if utf8 else email.policy.SMTP)
    out = io.BytesIO()
    _WireGenerator(out, mangle_from_=False, policy=WIRE_POLICY).flatten(message, unixfrom=False)
    return out.getvalue()


def new_message_id(settings: Settings) -> str:
    """A fresh Message-ID (RFC 5322 3.6.4) in our own domain, without angle brackets."""
    domain = settings.from_address.rpartition("@")[2] or "localhost"
    return make_msgid(domain=domain).strip("<>")


def encode_header(value: str, header_name: str) -> str | Header:
    """A header value, RFC 2047-encoded (and split into encoded words of legal length) when not ASCII."""
    value = safe_header_value(value)
    if value.isascii():
        return value
    return Header(value, UTF8, header_name=header_name)


@functools.lru_cache(maxsize=4096)  # a notice asks it for its sender and recipient twice each
def wire_address(addr: str) -> str:
    """An address as it goes into headers and the SMTP envelope: an internationalised domain IDNA-encoded."""
    addr = safe_header_value(addr)
    local, _, domain = addr.rpartition("@")
    if not domain.isascii():
        domain = domain.encode("idna").decode("ascii")
    return f"{local}@{domain}"


@functools.lru_cache(maxsize=4096)
def format_address(name: str, addr: str, header_name: str = "To") -> str:
    """``Name <addr>`` with the display name encoded per RFC 2047 when needed (the address itself stays ASCII
    or, for an internationalised domain, IDNA-encoded).

    A line break or control character in the name (a name pasted from Word carries a vertical tab) becomes a
    space: a display name never fails a letter and never loses a letter of itself. The address is checked."""
    addr = wire_address(addr)
    name = safe_header_value(one_line(name))
    if not name:
        return addr
    if name.isascii():
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{quoted}" <{addr}>'
    return f"{Header(name, UTF8, header_name=header_name).encode()} <{addr}>"


def _smtputf8_message(message: Message, name: str, addr: str) -> Message:
    """The message with ``To: name <addr>`` for a mailbox whose local part is not ASCII (юрий@почта.рф).

    Such an address cannot be written in ASCII at all (RFC 2047 5 forbids encoded words in an addr-spec), so the
    message becomes an RFC 6532 one: UTF-8 headers under ``email.policy.SMTPUTF8``, sent with SMTPUTF8 (RFC 6531;
    mail/smtp.py fails it with a reason for staff where the server lacks it). Rare, so the message is simply
    re-read under that policy rather than built twice.
    """
    local, _, domain = wire_address(addr).rpartition("@")
    utf8 = email.message_from_bytes(serialise(message), policy=email.policy.SMTPUTF8)
    utf8["To"] = Address(display_name=safe_header_value(one_line(name)), username=local, domain=domain)
    return utf8


def _utf8_text_headers(subtype: str) -> tuple[tuple[str, str], ...]:
    return (
        ("Content-Type", f'text/{subtype}; charset="utf-8"'),
        ("MIME-Version", "1.0"),
        ("Content-Transfer-Encoding", "base64"),
    )


def _text_part(text: str, subtype: str) -> Message:
    if text.isascii():
        return MIMEText(text, subtype, "us-ascii")
    # What MIMEText(text, subtype, UTF8) makes (the same headers in the same order, the same Base64 lines), without
    # its parsing the Content-Type it has just written to set the charset again: a tenth of an acknowledgement.
    part = Message()
    for name, value in _utf8_text_headers(subtype):
        part[name] = value
    part.set_payload(base64.encodebytes(text.encode("utf-8")).decode("ascii"))
    return part


def build_message(
    settings: Settings,
    *,
    to: str,
    to_name: str = "",
    subject: str,
    template: str,
    context: Mapping[str, object],
    auto_submitted: str = "auto-generated",
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    extra_headers: Mapping[str, str] | None = None,
    attachments: Sequence[tuple[str, str, bytes]] = (),
    message_id: str | None = None,
) -> Message:
    """Render ``templates/email/<template>.txt`` (and ``.html`` when it exists) into a ready message.

    ``auto_submitted`` follows RFC 3834: ``auto-replied`` for a direct answer to a message (the acknowledgement),
    ``auto-generated`` for notices we start ourselves; ``no`` for a message a person wrote (an answer).
    ``attachments`` are ``(filename, content_type, data)``.
    """
    env = environment()
    full_context = {"settings": settings, **context}
    text = env.get_template(f"email/{template}.txt").render(**full_context)
    html_name = f"email/{template}.html"
    html = env.get_template(html_name).render(**full_context) if html_name in _templates() else None

    body: Message = _text_part(text, "plain")
    if html is not None:
        alternative = MIMEMultipart("alternative")
        alternative.attach(body)
        alternative.attach(_text_part(html, "html"))
        body = alternative
    message: Message = body
    if attachments:
        message = MIMEMultipart("mixed")
        message.attach(body)
        for filename, content_type, data in attachments:
            maintype, _, subtype = content_type.partition("/")
            part: MIMEBase = (
                MIMEApplication(data, subtype or "octet-stream")
                if maintype == "application"
                else _generic_part(maintype, subtype, data)
            )
            # RFC 2231 parameter encoding keeps a Cyrillic file name intact.
            part.add_header("Content-Disposition", "attachment", filename=("utf-8", "", safe_header_value(filename)))
            message.attach(part)

    utf8_to = not to.rpartition("@")[0].isascii()  # To is added last, once the message is re-read as UTF-8
    headers = _envelope_headers(
        settings,
        to=None if utf8_to else to,
        to_name=to_name,
        subject=subject,
        auto_submitted=auto_submitted,
        in_reply_to=in_reply_to,
        references=references,
        extra_headers=extra_headers,
        message_id=message_id or new_message_id(settings),
    )
    for name, value in headers:
        message[name] = value  # type: ignore[assignment]  # compat32 takes a Header
    if utf8_to:
        return _smtputf8_message(message, to_name, to)
    return message


def _envelope_headers(
    settings: Settings,
    *,
    to: str | None,
    to_name: str,
    subject: str,
    auto_submitted: str,
    in_reply_to: str | None,
    references: Sequence[str],
    extra_headers: Mapping[str, str] | None,
    message_id: str,
) -> list[tuple[str, str | Header]]:
    """The headers :func:`build_message` puts above the body, in order (no To when ``to`` is None)."""
    headers: list[tuple[str, str | Header]] = [
        ("From", format_address(settings.from_name, settings.from_address, "From"))
    ]
    if to is not None:
        headers.append(("To", format_address(to_name, to, "To")))
    headers += [
        ("Subject", encode_header(subject, "Subject")),
        ("Date", format_datetime(utcnow())),
        ("Message-ID", f"<{message_id}>"),
    ]
    if in_reply_to:
        headers.append(("In-Reply-To", f"<{safe_header_value(in_reply_to)}>"))
    refs = [safe_header_value(r) for r in references if r]
    if refs:
        headers.append(("References", " ".join(f"<{r}>" for r in refs[-20:])))
    if auto_submitted != "no":
        headers.append(("Auto-Submitted", auto_submitted))
        # Ask Exchange not to answer our notices with its own auto-replies (mail loops, RFC 3834 section 2).
        headers.append(("X-Auto-Response-Suppress", "All"))
    headers += [(name, encode_header(value, name)) for name, value in (extra_headers or {}).items()]
    return headers


_DIGITS_AS_ZERO = str.maketrans("123456789", "000000000")
_ENCODED_WORD = re.compile(r"=\?utf-8\?b\?([A-Za-z0-9+/=]*)\?=")
_Layout = tuple[tuple[str, ...], tuple[int, ...]]


def _encoded_line(name: str, value: str) -> bytes:
    """``_header_line(name, Header(value, UTF8))``: the acknowledgement's subject differs from letter to letter only
    in the digits of its number, and digits do not move the split into encoded words (it counts bytes), so the
    folding of a value with zeros for digits is reused with this value's own bytes in its encoded words."""
    layout = _header_layout(name, value.translate(_DIGITS_AS_ZERO))
    if layout is None:
        return _header_line(name, Header(value, UTF8, header_name=name))
    return _fill_layout(layout, value.encode("utf-8")).encode("ascii")


@functools.lru_cache(maxsize=256)
def _header_layout(name: str, shape: str) -> _Layout | None:
    """How WIRE_POLICY folds header ``name`` of value ``shape``: the text between its encoded words and the number
    of bytes each carries (None when the folding is not made of such words alone)."""
    folded = WIRE_POLICY.fold_binary(name, Header(shape, UTF8, header_name=name)).decode("ascii")  # type: ignore[arg-type]
    pieces = _ENCODED_WORD.split(folded)
    layout = (tuple(pieces[0::2]), tuple(len(base64.b64decode(word)) for word in pieces[1::2]))
    return layout if _fill_layout(layout, shape.encode("utf-8")) == folded else None


def _fill_layout(layout: _Layout, data: bytes) -> str:
    between, sizes = layout
    out = [between[0]]
    start = 0
    for size, after in zip(sizes, between[1:], strict=True):
        out += ["=?utf-8?b?", base64.b64encode(data[start : start + size]).decode("ascii"), "?=", after]
        start += size
    return "".join(out)


@dataclass(frozen=True)
class TextMessage:
    """A plain-text letter already in wire bytes, with what the outbox records of it."""

    raw: bytes
    message_id: str  # without angle brackets
    subject: str


def text_message_bytes(
    settings: Settings,
    *,
    to: str,
    to_name: str = "",
    subject: str,
    text: str,
    auto_submitted: str = "auto-generated",
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    message_id: str | None = None,
) -> TextMessage | None:
    """``serialise(build_message(...))`` of a letter whose template rendered ``text`` and that has no HTML part,
    no attachments and no extra headers, written straight to bytes without the ``email`` package's objects (intake
    writes one acknowledgement per letter: building and serialising them was a third of its main process).

    None when the letter is not of the common kind this covers (an ASCII-only text goes as 7bit, a mailbox with a
    non-ASCII local part needs SMTPUTF8): build it with :func:`build_message` then. tests/test_compose.py checks
    the bytes against that path.
    """
    if text.isascii() or not to.rpartition("@")[0].isascii():
        return None
    message_id = message_id or new_message_id(settings)
    headers = _envelope_headers(
        settings,
        to=to,
        to_name=to_name,
        subject=subject,
        auto_submitted=auto_submitted,
        in_reply_to=in_reply_to,
        references=references,
        extra_headers=None,
        message_id=message_id,
    )
    lines = [
        _encoded_line(name, str(value)) if isinstance(value, Header) else _header_line(name, value)
        for name, value in (*_utf8_text_headers("plain"), *headers)
    ]
    lines.append(b"\r\n")
    # The Base64 lines of _text_part, each ended by CRLF as _WireGenerator._write_lines ends them.
    lines.append(base64.encodebytes(text.encode("utf-8")).replace(b"\n", b"\r\n"))
    subject_value = next(value for name, value in headers if name == "Subject")
    return TextMessage(b"".join(lines), message_id, str(subject_value))


def _generic_part(maintype: str, subtype: str, data: bytes) -> MIMEBase:
    from email import encoders

    part = MIMEBase(maintype or "application", subtype or "octet-stream")
    part.set_payload(data)
    encoders.encode_base64(part)
    return part


_template_names: set[str] | None = None


def _templates() -> set[str]:
    # list_templates() walks the folder; once per process is enough.
    global _template_names
    if _template_names is None:
        _template_names = set(environment().list_templates())
    return _template_names
