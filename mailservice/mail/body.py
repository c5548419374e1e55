"""Walking a message's MIME tree: its text (plain, HTML, forwarded letters) and its attachments, decoded.

Every oddity becomes a defect text and walking goes on. Pure: no I/O.
"""

from __future__ import annotations

import email.utils
import hashlib
import mimetypes
import quopri
import re
from dataclasses import dataclass, field
from email import errors, policy
from email.message import Message

from mailservice.mail.calendar_text import calendar_text
from mailservice.mail.fastpath import _parse_default
from mailservice.mail.filenames import sanitize_filename
from mailservice.mail.header_reader import _MAX_DEFECTS, _clean_line, _fix_8bit, _HeaderReader
from mailservice.mail.headers import decode_base64_loose, decode_bytes, decode_encoded_words, part_content_type
from mailservice.mail.quotes import html_to_text
from mailservice.mail.smime import SMIME_TYPES, read_smime
from mailservice.mail.tnef import TnefContent, is_tnef, read_tnef


@dataclass(frozen=True)
class Attachment:
    """One attached (or inline, e.g. an embedded image) part, decoded."""

    filename: str
    content_type: str
    data: bytes = field(repr=False)
    sha256: str
    size: int
    inline: bool


_MAX_DEPTH = 40


@dataclass
class _Body:
    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    oversized: list[str] = field(default_factory=list)
    forwarded: list[str] = field(default_factory=list)  # texts of attached messages, each with its header block
    # each winmail.dat read: its name, type, bytes and content (its text is used when the letter has none)
    tnef: list[tuple[str, str, bytes, TnefContent]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # for staff (Russian), as ParsedMessage.staff_notes
    calendar: list[str] = field(default_factory=list)  # words of calendar invitations (used when there is no other)


def _safe_content_type(part: Message, defects: list[str]) -> str:
    ctype = part_content_type(part)
    try:
        declared = part.get_content_type()
    except Exception:
        declared = ""
    if declared != ctype:
        defects.append(f"content-type {declared[:60]!r} read as {ctype}")
    return ctype


def _payload_bytes(part: Message, defects: list[str]) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception as exc:
        defects.append(f"payload not decodable: {type(exc).__name__}")
        data = None
    if isinstance(data, bytes) and _base64_given_up(part):
        # Cut short by a character, base64 the standard library returns as it is (bpo-27397): a relay's size
        # limit or a broken client; what can be read is the sender's text all the same.
        defects.append("base64 cut short; the last incomplete byte dropped")
        return decode_base64_loose(data)
    if isinstance(data, bytes):
        return data
    raw = part.get_payload()
    if isinstance(raw, str):
        return raw.encode("ascii", errors="surrogateescape")
    return b""


def _base64_given_up(part: Message) -> bool:
    return any(isinstance(defect, errors.InvalidBase64LengthDefect) for defect in getattr(part, "defects", ()))


def _part_charset(part: Message) -> str | None:
    try:
        charset = part.get_param("charset")
    except Exception:
        return None
    if isinstance(charset, tuple):
        charset = email.utils.collapse_rfc2231_value(charset)
    return str(charset) if charset else None


def _raw_param(part: Message, header: str, param: str) -> str | None:
    """A parameter of the header as it came, raw 8-bit bytes kept as surrogate escapes (quoted or plain)."""
    pattern = re.compile(rf'(?:^|;)\s*{param}\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)', re.IGNORECASE)
    try:
        # unfolded (RFC 5322 2.2.3): a long name is folded inside its quotes
        values = [re.sub(r"\r?\n(?=[ \t])", "", value) for name, value in part.raw_items() if name.lower() == header]
    except Exception:
        return None
    for value in values:
        match = pattern.search(str(value))
        if match:
            found = match.group(1).strip()
            if found.startswith('"') and found.endswith('"') and len(found) >= 2:
                found = re.sub(r"\\(.)", r"\1", found[1:-1])
            return found or None
    return None


def _part_filename(part: Message, defects: list[str]) -> str | None:
    name: object = None
    try:
        name = part.get_filename()
    except Exception as exc:
        defects.append(f"attachment name unreadable: {type(exc).__name__}")
    if not name:
        try:
            param = part.get_param("name")
            if isinstance(param, tuple):
                param = email.utils.collapse_rfc2231_value(param)
            name = param
        except Exception:
            name = None
    if not name:
        return None
    if "\ufffd" in str(name):
        # Raw 8-bit bytes in the parameter (old mail programs, 1C, office scanners): the standard library has
        # replaced them by now; the raw header still holds them (tryout W6), read as the Subject's are.
        name = _raw_param(part, "content-disposition", "filename") or _raw_param(part, "content-type", "name") or name
    text, _ = _fix_8bit(str(name))
    if "=?" in text:  # RFC 2047 inside a parameter is non-standard but what Outlook and Mail.ru send
        text = decode_encoded_words(text)
    return text


def _disposition(part: Message) -> str | None:
    try:
        return part.get_content_disposition()
    except Exception:
        return None


def _serialise(msg: Message) -> bytes:
    try:
        return msg.as_bytes(policy=policy.compat32)
    except Exception:
        try:
            return msg.as_string(policy=policy.compat32).encode("utf-8", errors="surrogateescape")
        except Exception:
            return b""


def _unparsed_text(inner: Message) -> bytes:
    """The text the parser wrongly took for a message (base64 lines end up as its body)."""
    payload = inner.get_payload()
    if isinstance(payload, str) and not list(inner.keys()):
        return payload.encode("ascii", errors="surrogateescape")
    return _serialise(inner)


def _decode_transfer(data: bytes, cte: str) -> bytes:
    if cte == "base64":
        return decode_base64_loose(data)
    return quopri.decodestring(data)


# A letter forwarded as an attachment (message/rfc822) is read too (tryout G5): its text, under a short header
# block, becomes the request's text (after the sender's own, if any). At most this many characters of such text
# in all, and forwards inside forwards this deep; the .eml attachment keeps the whole message.
_FORWARDED_MAX = 20_000
_FORWARDED_LEVELS = 3
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9.+-]{0,60}/[a-z0-9][a-z0-9.+-]{0,100}")
_FORWARD_SEPARATOR = "-------- Пересланное сообщение --------"
# An S/MIME file inside an S/MIME file (signed, then signed again) is read this many layers deep; each layer is a
# copy of the one around it, so the layers bound the memory a letter can take.
_SMIME_LAYERS = 3
_SMIME_MAX_BYTES = 64 * 2**20
_HEADER_LINE = re.compile(rb"[!-9;-~]+[ \t]*:")


def _is_body_text(part: Message, ctype: str, filename: str | None) -> bool:
    """Whether a leaf part is the letter's text (plain or HTML, not an attached file)."""
    disposition = _disposition(part)
    return (
        ctype in ("text/plain", "text/html")
        and disposition != "attachment"
        and (filename is None or disposition == "inline")
    )


class _Walker:
    def __init__(self, max_attachment_bytes: int, defects: list[str]) -> None:
        self.max_attachment_bytes = max_attachment_bytes
        self.defects = defects
        self.reports = 0  # inside a multipart/report: the returned message is ours or a machine's, not a forward
        self.forwarded_left = _FORWARDED_MAX
        self.smime_layers = 0

    def walk(self, part: Message, body: _Body, depth: int = 0) -> None:
        if depth > _MAX_DEPTH:
            self.defects.append("MIME structure nested too deeply; rest skipped")
            return
        self._collect_defects(part)
        ctype = _safe_content_type(part, self.defects)
        try:
            payload = part.get_payload()
        except (ValueError, LookupError):
            # The stdlib decodes an 8-bit text payload with its charset parameter here; a name no codec lookup
            # takes (a NUL inside) raises. Only a list matters at this point: the leaf reads the bytes itself.
            payload = None
        if ctype in ("message/rfc822", "message/global"):
            inner = payload[0] if isinstance(payload, list) and payload else None
            cte = str(part.get("content-transfer-encoding", "")).strip().lower()
            if isinstance(inner, Message) and cte in ("base64", "quoted-printable"):
                # RFC 2046 5.2.1 forbids encoding message/rfc822, Yandex does it anyway: decode and re-parse.
                self.defects.append(f"message/rfc822 with {cte} encoding")
                data = _decode_transfer(_unparsed_text(inner), cte)
                self._attach_message(_parse_default(data), body, data)
            elif isinstance(inner, Message):
                self._attach_message(inner, body)
            else:
                name = sanitize_filename(_part_filename(part, self.defects), ctype)
                self._add_attachment(body, name, ctype, _payload_bytes(part, self.defects), inline=False)
            return
        if isinstance(payload, list):
            if ctype.startswith("message/"):
                # delivery-status, disposition-notification, feedback-report: kept whole as an attachment
                self._leaf(part, ctype, body)
            elif ctype == "multipart/alternative":
                self._alternative(payload, body, depth)
            else:
                self.reports += ctype == "multipart/report"
                for child in payload:
                    if isinstance(child, Message):
                        self.walk(child, body, depth + 1)
                self.reports -= ctype == "multipart/report"
            return
        if ctype.startswith("multipart/"):
            # No usable boundary: whatever text is there is still the sender's text.
            self.defects.append(f"{ctype} without parts; body read as text")
            text, note = decode_bytes(_payload_bytes(part, self.defects), _part_charset(part))
            if note:
                self.defects.append(f"body: {note}")
            if text.strip():
                body.plain.append(text)
            return
        if ctype in SMIME_TYPES and self.smime_layers < _SMIME_LAYERS:
            self._smime(part, ctype, body, depth)
            return
        self._leaf(part, ctype, body)

    def _smime(self, part: Message, ctype: str, body: _Body, depth: int) -> None:
        """Opaque S/MIME (RFC 8551 3.5.2): the letter signed inside the .p7m is read as this part's content."""
        entity = self._open_smime(part, ctype, body, forwarded=False)
        if entity is None:
            return
        if not _HEADER_LINE.match(entity):  # a bare text signed without MIME headers
            body.plain.append(decode_bytes(entity)[0])
            return
        self.smime_layers += 1
        try:
            self.walk(_parse_default(entity), body, depth + 1)
        finally:
            self.smime_layers -= 1

    def _open_smime(self, part: Message, ctype: str, body: _Body, *, forwarded: bool) -> bytes | None:
        """The MIME entity signed inside an S/MIME part, or None. The signature is not checked, so the .p7m is
        attached (staff check it in their own program) and staff are told; an encrypted one is only noted.
        ``forwarded``: the part is in a letter forwarded as an attachment (the notes say so)."""
        name = sanitize_filename(_part_filename(part, self.defects) or "smime.p7m", ctype)
        data = _payload_bytes(part, self.defects)
        self._add_attachment(body, name, ctype, data, inline=False)
        content = read_smime(data, _SMIME_MAX_BYTES)
        letter = "Пересланное письмо" if forwarded else "Письмо"
        if content.kind == "enveloped":
            self.defects.append(f"S/MIME {name!r}: encrypted (enveloped-data), not readable")
            body.notes.append(
                f"{letter} зашифровано (S/MIME) и прочитать его нельзя: текст находится в зашифрованном файле {name}, "
                "он сохранён как вложение. Автора можно попросить прислать письмо без шифрования."
            )
            return None
        if content.entity is None:
            if content.problem is not None:  # else signed with nothing inside (certificates only, RFC 8551 3.8)
                self.defects.append(f"S/MIME {name!r}: {content.problem}")
                body.notes.append(
                    f"Вложение {name} ({letter.lower()} с электронной подписью S/MIME) прочитать не удалось; файл "
                    "сохранён как вложение."
                )
            return None
        body.notes.append(
            f"{letter} подписано электронной подписью (S/MIME): "
            + ("его текст извлечён" if forwarded else "его текст и вложения извлечены")
            + f" из файла {name}. Подпись не проверялась; файл сохранён как вложение."
        )
        return content.entity

    def _collect_defects(self, part: Message) -> None:
        for defect in getattr(part, "defects", ()):
            if len(self.defects) < _MAX_DEFECTS:
                self.defects.append(f"{type(defect).__name__}: {defect}" if str(defect) else type(defect).__name__)

    def _alternative(self, children: list[Message | str], body: _Body, depth: int) -> None:
        # RFC 2046 5.1.4: alternatives in increasing order of preference; keep the best plain and best HTML.
        plain: list[str] = []
        html: list[str] = []
        for child in children:
            if not isinstance(child, Message):
                continue
            sub = _Body()
            self.walk(child, sub, depth + 1)
            if sub.plain:
                plain = sub.plain
            if sub.html:
                html = sub.html
            body.attachments.extend(sub.attachments)
            body.oversized.extend(sub.oversized)
            body.calendar.extend(sub.calendar)
            body.tnef.extend(sub.tnef)
            body.notes.extend(sub.notes)
        body.plain.extend(plain)
        body.html.extend(html)

    def _attach_message(self, inner: Message, body: _Body, data: bytes | None = None) -> None:
        subject = ""
        try:
            subject = _clean_line(_HeaderReader(inner, []).first_text("subject") or "")
        except Exception:
            subject = ""
        # A subject is not a path: its slashes must not make sanitize_filename drop the start.
        title = subject.replace("/", "_").replace("\\", "_")[:150]
        name = sanitize_filename(title + ".eml" if title else None, "message/rfc822")
        self._add_attachment(body, name, "message/rfc822", data or _serialise(inner), inline=False)
        if not self.reports and self.forwarded_left > 0:
            try:
                block = self._forwarded_block(inner, 1, body)
            except Exception as exc:  # the .eml is attached whatever happens; its text is a bonus
                self.defects.append(f"forwarded message unreadable: {type(exc).__name__}")
            else:
                if block:
                    body.forwarded.append(block)

    def _forwarded_block(self, inner: Message, level: int, body: _Body) -> str:
        """The text of an attached message under a short quoted header block, within :data:`_FORWARDED_MAX`."""
        if self.forwarded_left <= 0:
            return ""
        reader = _HeaderReader(inner, [])
        lines = [_FORWARD_SEPARATOR]
        for label, name in (("От", "from"), ("Дата", "date"), ("Тема", "subject")):
            value = _clean_line(reader.first_text(name) or "")[:300]
            if value:
                lines.append(f"{label}: {value}")
        plain: list[str] = []
        html: list[str] = []
        self._texts(inner, plain, html, (level, body), 0)
        text = "\n\n".join(t.strip("\r\n") for t in plain if t.strip())
        if not text and html:
            text = html_to_text("\n".join(html)[: self.forwarded_left * 4])
        block = "\n".join(lines) + "\n\n" + text.replace("\r\n", "\n").replace("\r", "\n").strip()
        if len(block) > self.forwarded_left:
            block = block[: self.forwarded_left].rstrip() + "\n[…]"
        self.forwarded_left -= len(block)
        return block

    def _texts(self, part: Message, plain: list[str], html: list[str], where: tuple[int, _Body], depth: int) -> None:
        """Collect the body texts of a forwarded message (its attachments stay in its .eml, undecoded); ``where`` is
        the forward's level and the letter's body (for the files and notes of a signed letter inside)."""
        if depth > _MAX_DEPTH or sum(map(len, plain)) > self.forwarded_left:
            return
        level, body = where
        ctype = part_content_type(part)
        payload = part.get_payload()
        if ctype in ("message/rfc822", "message/global"):
            inner = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(inner, Message) and level < _FORWARDED_LEVELS:
                plain.append(self._forwarded_block(inner, level + 1, body))
            return
        if isinstance(payload, list):
            if ctype.startswith("message/"):
                return  # a delivery or disposition report inside the forward: no one's words
            for child in payload:
                if isinstance(child, Message):
                    sub_plain: list[str] = []
                    sub_html: list[str] = []
                    self._texts(child, sub_plain, sub_html, where, depth + 1)
                    if ctype != "multipart/alternative":
                        plain.extend(sub_plain)
                        html.extend(sub_html)
                        continue
                    # RFC 2046 5.1.4: alternatives in increasing order of preference.
                    if sub_plain:
                        plain[:] = sub_plain
                    if sub_html:
                        html[:] = sub_html
            return
        if ctype in SMIME_TYPES and self.smime_layers < _SMIME_LAYERS:
            self._forwarded_smime(part, ctype, plain, html, where, depth)
            return
        if _is_body_text(part, ctype, _part_filename(part, [])):
            data = _payload_bytes(part, [])
            cut = self.forwarded_left * 4  # enough bytes for the characters still allowed, in any charset
            if len(data) > cut:
                # cut between words: never inside a multibyte character, which would spoil the charset's guess
                data = data[: max(data.rfind(b"\n", 0, cut), data.rfind(b" ", 0, cut), cut // 2)]
            text = decode_bytes(data, _part_charset(part))[0]
            (plain if ctype == "text/plain" else html).append(text)

    def _forwarded_smime(
        self, part: Message, ctype: str, plain: list[str], html: list[str], where: tuple[int, _Body], depth: int
    ) -> None:
        """A signed letter inside a forwarded one (a citizen forwards a signed letter; a body forwards a signed
        appeal): opened like the letter's own .p7m, its text read like the rest of the forward's."""
        entity = self._open_smime(part, ctype, where[1], forwarded=True)
        if entity is None:
            return
        if not _HEADER_LINE.match(entity):  # a bare text signed without MIME headers
            plain.append(decode_bytes(entity[: self.forwarded_left * 4])[0])
            return
        self.smime_layers += 1
        try:
            self._texts(_parse_default(entity), plain, html, where, depth + 1)
        finally:
            self.smime_layers -= 1

    def _leaf(self, part: Message, ctype: str, body: _Body) -> None:
        disposition = _disposition(part)
        filename = _part_filename(part, self.defects)
        is_body_text = _is_body_text(part, ctype, filename)
        if ctype == "message/delivery-status" or (ctype.startswith("message/") and not is_body_text):
            data = _serialise(part)
            data = data.split(b"\n\n", 1)[-1] if b"\n\n" in data else data
            self._add_attachment(body, sanitize_filename(filename, ctype), ctype, data, inline=False)
            return
        data = _payload_bytes(part, self.defects)
        if is_body_text:
            text, note = decode_bytes(data, _part_charset(part))
            if note:
                self.defects.append(f"{ctype}: {note}")
            (body.plain if ctype == "text/plain" else body.html).append(text)
            return
        if is_tnef(ctype, filename, data) and len(data) <= self.max_attachment_bytes:
            self._tnef(body, sanitize_filename(filename, ctype), ctype, data)
            return
        if ctype == "text/calendar":  # kept as the .ics attachment; its words wait for read()
            body.calendar.append(calendar_text(decode_bytes(data, _part_charset(part))[0]))
        self._add_attachment(
            body,
            sanitize_filename(filename, ctype),
            ctype,
            data,
            inline=disposition == "inline" or (disposition is None and part.get("Content-ID") is not None),
        )

    def _tnef(self, body: _Body, name: str, ctype: str, data: bytes) -> None:
        """Outlook's winmail.dat: its files become the letter's attachments; its text waits for :meth:`read`.
        Whatever is left unread keeps the .dat itself, with a note for staff."""
        try:
            content = read_tnef(data)
        except Exception as exc:  # read_tnef does not raise; should it, the letter still keeps the file
            content = TnefContent(complete=False, problems=[f"reader failure: {type(exc).__name__}"])
        for item in content.files:
            declared = (item.content_type or "").strip().lower()
            ftype = declared if _MEDIA_TYPE.fullmatch(declared) else None
            ftype = ftype or mimetypes.guess_type(item.name or "")[0] or "application/octet-stream"
            self._add_attachment(body, sanitize_filename(item.name, ftype), ftype, item.data, inline=False)
        body.tnef.append((name, ctype, data, content))
        got = content.files or content.body.strip() or content.html.strip()
        if content.complete and not got and not content.unread_body:
            # Read to the end and nothing in it (a receipt, a form's properties): the file the citizen sent is
            # still theirs to see, so it is kept as it came, with no note (nothing went wrong).
            self._add_attachment(body, name, ctype, data, inline=False)
            return
        if content.complete:
            return
        self.defects.extend(f"TNEF {name!r}: {problem}" for problem in content.problems[:5])
        self._add_attachment(body, name, ctype, data, inline=False)
        body.notes.append(
            f"Вложение {name} (формат Outlook) прочитано не полностью: "
            + (
                "извлечённые из него файлы и текст приложены к обращению"
                if got
                else "извлечь из него ничего не удалось"
            )
            + "; сам файл сохранён как вложение."
        )

    def read(self, msg: Message, body: _Body) -> None:
        """Walk the whole message; then a winmail.dat's text is the letter's when the letter has none of its own
        (an RTF one that cannot be read keeps the .dat with a note for staff), else a calendar invitation's words
        (tryout T4). Otherwise they repeat the letter's text."""
        self.walk(msg, body)
        if body.plain or body.html:
            return
        self._tnef_texts(body)
        if not body.plain and not body.html:
            body.plain.extend(text for text in body.calendar if text.strip())

    def _tnef_texts(self, body: _Body) -> None:
        for name, ctype, data, content in body.tnef:
            if content.body.strip():
                body.plain.append(content.body)
            elif content.html.strip():
                body.html.append(content.html)
            elif content.unread_body and content.complete:
                why = "; ".join(content.problems[:2])
                self.defects.append(f"TNEF {name!r}: the letter's text is there only as RTF, unreadable: {why}")
                self._add_attachment(body, name, ctype, data, inline=False)
                body.notes.append(
                    f"Текст письма находится во вложении {name} (формат Outlook, RTF), прочитать его не удалось; "
                    "файл сохранён как вложение."
                )

    def _add_attachment(self, body: _Body, name: str, ctype: str, data: bytes, *, inline: bool) -> None:
        if len(data) > self.max_attachment_bytes:
            body.oversized.append(name)
            self.defects.append(f"attachment {name!r} of {len(data)} bytes exceeds the limit; not extracted")
            return
        body.attachments.append(
            Attachment(
                filename=name,
                content_type=ctype,
                data=data,
                sha256=hashlib.sha256(data).hexdigest(),
                size=len(data),
                inline=inline,
            )
        )
