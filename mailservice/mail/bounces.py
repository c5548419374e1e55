"""Bounce parsing: which address bounced, hard or soft, with what status and diagnostic.

RFC 3464 delivery status notifications are read first (message/delivery-status: Final-Recipient, Action,
Status, Diagnostic-Code). Mail systems that send plain-text bounces (older Postfix and Exim set-ups, qmail,
Exchange, Gmail, Mail.ru, Yandex and many more) are read by heuristics over the human-readable text, cut
before the copy of the original message, plus X-Failed-Recipients.

``kind`` answers the question the mailing sender asks: may this address ever receive mail again?
- ``hard``: the address itself is dead (no such user or domain, moved, null MX): stop sending to it.
  Class 5 statuses (RFC 3463) whose cause cannot be told are hard too.
- ``soft``: delivery failed for a reason that may pass or is not about the address: any class 4 status or
  delayed action, and class 5 refusals for a full mailbox, a too-large message, spam or policy blocks,
  authentication or network failures. Suppressing a consenting subscriber on a spam filter's whim is worse
  than retrying.
- ``unknown``: no status and no recognisable reason.
Pure: takes a parsed message, no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from typing import Literal

from mailservice.mail.headers import (
    decode_bytes,
    decode_encoded_words,
    loose_address,
    normalise_address,
    part_content_type,
)
from mailservice.mail.quotes import html_to_text

__all__ = [
    "DELIVERY_STATUS_TYPES",
    "BounceInfo",
    "DsnRecipient",
    "bounce_text",
    "dsn_recipients",
    "parse_bounce",
]

Kind = Literal["hard", "soft", "unknown"]

DELIVERY_STATUS_TYPES = ("message/delivery-status", "message/global-delivery-status")  # RFC 3464, RFC 6533


@dataclass(frozen=True)
class BounceInfo:
    """What one bounce says about the first failed recipient."""

    recipient: str | None
    kind: Kind
    status: str | None
    diagnostic: str


@dataclass(frozen=True)
class DsnRecipient:
    """One per-recipient block of an RFC 3464 report."""

    recipient: str | None
    action: str
    status: str | None
    diagnostic: str


# --------------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------------

_MAX_DIAGNOSTIC = 500
_MAX_TEXT = 50_000  # a bounce's explanation is short; past this it is pasted content, not worth the regexes
_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?!\d|\.\d)")
_REPLY_CODE = re.compile(r"(?<![\d.#])([45])(\d\d)(?:[ -]|$)(?![\d.]{0,10}\d{2})", re.MULTILINE)
_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-\u0080-\uffff]{1,64}@[A-Za-z0-9\-\u0080-\uffff]{1,63}"
    r"(?:\.[A-Za-z0-9\-\u0080-\uffff]{1,63}){1,8}"
)
_SYSTEM_LOCAL = re.compile(r"^(mailer[-_]?daemon|postmaster|post_master|mdaemon|mail[-_]?delivery)$", re.I)


def _fix(value: str) -> str:
    if any("\udc80" <= ch <= "\udcff" for ch in value):
        value = decode_bytes(value.encode("ascii", errors="surrogateescape"))[0]
    return " ".join(re.sub(r"\r?\n", " ", value).split())


_QUOTED_LOCAL = re.compile(r'^"[^"\\\r\n]{1,64}"@[^\s<>@]+$')


def _address(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip().strip("<>(),;:[] ").strip()
    if value.startswith("@") and ":" in value:  # RFC 5321 4.1.2 source route: <@relay:user@host>
        value = value.rsplit(":", 1)[1]
    if not _QUOTED_LOCAL.match(value):  # RFC 5321 4.1.2 quoted local parts keep their quotes
        value = value.strip("\"'").strip()
    if "@" not in value:
        return None
    return normalise_address(value) or loose_address(value)


def _field_address(value: str) -> str | None:
    """Address from a DSN recipient field: "rfc822; user@example.com" (RFC 3464 2.3.2)."""
    _, _, addr = value.rpartition(";")
    addr = (addr or value).strip().strip("<>").strip()
    if "@" in addr and not any(ch.isspace() for ch in addr):
        direct = _address(addr)
        if direct is not None:
            return direct
    found = _ADDRESS.search(addr)
    return _address(found.group(0)) if found else None


def _status_from(text: str) -> str | None:
    match = _STATUS.search(text or "")
    return ".".join(match.groups()) if match else None


def _walk(msg: Message, depth: int = 0) -> Iterator[tuple[Message, bool]]:
    """Yield (part, inside an attached original message) pairs without descending into garbage forever."""
    if depth > 30:
        return
    yield msg, False
    payload = msg.get_payload()
    if not isinstance(payload, list):
        return
    ctype = _ctype(msg)
    for child in payload:
        if not isinstance(child, Message):
            continue
        if ctype in ("message/rfc822", "message/global", "text/rfc822-headers"):
            continue  # the returned original: its addresses are not the bounce's
        if ctype in DELIVERY_STATUS_TYPES:
            continue  # header blocks of the report, read separately
        yield from _walk(child, depth + 1)


def _ctype(part: Message) -> str:
    return part_content_type(part)


def _raw_fields(block: Message) -> list[tuple[str, str]]:
    try:
        items = list(block.raw_items())
    except Exception:
        return []
    return [(str(k).strip().lower(), _fix(str(v))) for k, v in items]


_FIELD_LINE = re.compile(r"^([A-Za-z][A-Za-z0-9-]*)\s*:\s*(.*)$")


def _blocks_from_text(text: str) -> list[list[tuple[str, str]]]:
    """Parse RFC 3464 field blocks from text (broken reports, plain-text bounces quoting a DSN)."""
    blocks: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            if current:
                blocks.append(current)
                current = []
            continue
        if line[:1] in (" ", "\t") and current:
            name, value = current[-1]
            current[-1] = (name, f"{value} {line.strip()}")
            continue
        match = _FIELD_LINE.match(line.strip())
        if match:
            current.append((match.group(1).lower(), match.group(2).strip()))
    if current:
        blocks.append(current)
    return blocks


def _part_text(part: Message) -> str:
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if not isinstance(data, bytes):
        raw = part.get_payload()
        data = raw.encode("ascii", errors="surrogateescape") if isinstance(raw, str) else b""
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    return decode_bytes(data, charset)[0]


# --------------------------------------------------------------------------------------------------
# RFC 3464 reports
# --------------------------------------------------------------------------------------------------


def _delivery_status_blocks(msg: Message) -> list[list[tuple[str, str]]]:
    blocks: list[list[tuple[str, str]]] = []
    for part, _ in _walk(msg):
        if _ctype(part) not in DELIVERY_STATUS_TYPES:
            continue
        payload = part.get_payload()
        if isinstance(payload, list):
            for block in payload:
                if isinstance(block, Message):
                    fields = _raw_fields(block)
                    body = block.get_payload()
                    # A block without its blank separator line swallows the next one as its "body".
                    if isinstance(body, str) and body.strip():
                        fields_blocks = [fields, *_blocks_from_text(body)]
                    else:
                        fields_blocks = [fields]
                    blocks.extend(b for b in fields_blocks if b)
        elif isinstance(payload, str):
            blocks.extend(_blocks_from_text(_part_text(part)))
    return blocks


def _recipients_from_blocks(blocks: list[list[tuple[str, str]]]) -> list[DsnRecipient]:
    out: list[DsnRecipient] = []
    for block in blocks:
        fields: dict[str, str] = {}
        for name, value in block:
            fields.setdefault(name, value)
        if not any(k in fields for k in ("final-recipient", "original-recipient", "action", "status")):
            continue
        if "reporting-mta" in fields and not any(k in fields for k in ("final-recipient", "action")):
            continue  # the per-message block
        final = _field_address(fields.get("final-recipient", ""))
        original = _field_address(fields.get("original-recipient", ""))
        # An internal routing name (user@server) in Final-Recipient: Original-Recipient is the address.
        if final is not None and original is not None and normalise_address(final) is None:
            final = original if normalise_address(original) is not None else final
        recipient = final or original
        if recipient is None and "x-actual-recipient" in fields:
            recipient = _field_address(fields["x-actual-recipient"])
        diagnostic = fields.get("diagnostic-code", "")
        diagnostic = diagnostic.split(";", 1)[1].strip() if ";" in diagnostic[:20] else diagnostic
        status = _status_from(fields.get("status", ""))
        out.append(
            DsnRecipient(
                recipient=recipient,
                action=fields.get("action", "").strip().lower().split()[0] if fields.get("action") else "",
                status=status,
                diagnostic=diagnostic[:_MAX_DIAGNOSTIC],
            )
        )
    return out


def dsn_recipients(msg: Message) -> list[DsnRecipient]:
    """Per-recipient blocks of every message/delivery-status part (RFC 3464 section 2.3)."""
    if _ctype(msg) in DELIVERY_STATUS_TYPES and not isinstance(msg.get_payload(), list):
        return _recipients_from_blocks(_blocks_from_text(_part_text(msg)))
    blocks = _delivery_status_blocks(msg)
    if _ctype(msg) in DELIVERY_STATUS_TYPES:
        blocks = [_raw_fields(msg), *blocks]
    return _recipients_from_blocks(blocks)


# --------------------------------------------------------------------------------------------------
# Human-readable text
# --------------------------------------------------------------------------------------------------

_COPY_PHRASES = (
    r"this is a copy of the message|below this line is a copy of the message|original message follows|"
    r"a copy of the original message|copy of the original|header of the original message|"
    r"headers of the original|message headers follow|your message reads|returned message|"
    r"копия исходного сообщения|заголовки исходного сообщения|ниже приведена копия"
)
# Decorated separators may use a shorter wording ("--- Original message ---"); plain lines must be explicit.
_ORIGINAL_MARKERS = re.compile(
    rf"^[ \t]*(?:[-=*_]{{2,}}[ \t]*(?:{_COPY_PHRASES}|original message|undelivered message|unsent message|"
    rf"original mail|исходное сообщение|оригинальное сообщение)|(?:{_COPY_PHRASES}))\b[^\n]*$",
    re.IGNORECASE | re.MULTILINE,
)
_EMBEDDED_FIRST = re.compile(r"^(Return-Path|Received|Delivered-To|Message-ID|DKIM-Signature|X-[\w-]+):", re.I)
_FIELD_START = re.compile(r"^[\w-]+:")


def _cut_embedded_headers(text: str) -> str:
    """Cut where a pasted header block of the returned message starts (a blank line, then header fields)."""
    lines = text.split("\n")
    for i in range(1, len(lines) - 1):
        if lines[i - 1].strip() or not _EMBEDDED_FIRST.match(lines[i]):
            continue
        j = i + 1
        while j < len(lines) and lines[j][:1] in (" ", "\t"):
            j += 1
        if j < len(lines) and _FIELD_START.match(lines[j]):
            return "\n".join(lines[: i - 1])
    return text


def bounce_text(msg: Message) -> str:
    """Human-readable bounce text: inline text parts outside the returned original, cut before its copy."""
    texts: list[str] = []
    for part, _ in _walk(msg):
        ctype = _ctype(part)
        if ctype.startswith("multipart/") and isinstance(part.get_payload(), str):
            ctype = "text/plain"  # no boundary found: the whole body is one text
        if ctype not in ("text/plain", "text/html") or isinstance(part.get_payload(), list):
            continue
        try:
            disposition = part.get_content_disposition()
            filename = part.get_filename()
        except Exception:
            disposition, filename = None, None
        if disposition == "attachment" or filename:
            continue
        text = _part_text(part)
        texts.append(html_to_text(text) if ctype == "text/html" else text)
        if ctype == "text/plain" and _ctype(msg) == "multipart/report":
            break  # RFC 6522: the first part is the human-readable one
    text = "\n\n".join(texts).replace("\r\n", "\n")
    marker = _ORIGINAL_MARKERS.search(text)
    if marker is not None and marker.start() > 0:
        text = text[: marker.start()]
    return _cut_embedded_headers(text)


# --------------------------------------------------------------------------------------------------
# Reasons
# --------------------------------------------------------------------------------------------------

# Our own wording of what mail systems commonly say when an address does not exist.
_ADDRESS_GONE = re.compile(
    r"user unknown|unknown user|no such (user|mailbox|recipient|account|address|local user)|"
    r"user(name)? not found|recipient not found|mailbox not found|unknown recipient|recipient unknown|"
    r"invalid recipient|invalid mailbox|"
    r"(mailbox|address|account|user|recipient|domain) (does not|doesn'?t) exist|"
    r"(does not|doesn'?t) have an? (account|mailbox)|not a valid (mailbox|user|recipient|address)|"
    r"no mailbox here|mailbox unavailable|mailbox is unavailable|"
    r"host or domain name not found|domain not found|host ([\w.-]+ )?not found(?!, try again)|no mx record|"
    r"null mx|does not accept mail|unknown (local part|alias|e-?mail address)|unknown address(?! error)|"
    r"nonexistent|non-existent|not recogni[sz]ed|"
    r"(address|recipient) (couldn'?t|could not|cannot|can'?t) be found|"
    r"recipient address rejected: access denied|not accepting (network )?(messages|mail)|"
    r"not our customer|no one at this address|address (is )?unknown|"
    r"account that you tried to reach does not exist|"
    r"recipient address rejected: (user unknown|unknown|undeliverable|invalid)|bad destination mailbox|"
    r"has moved|no longer (valid|active|available|in use|exists|with)|not listed in|"
    r"account or domain may not exist|no smtp service|domain is not reachable|"
    r"invalid (final delivery )?userid|"
    r"mailbox .{0,40} (does not|doesn'?t) exist|user .{0,40} (does not|doesn'?t) exist|"
    r"пользовател\w* не (найден|существует)|нет такого (пользователя|ящика|адреса)|не существует|"
    r"почтов\w* ящик\w* не найден|неверный адрес|несуществующ|destinataire (invalide|inconnu)|"
    r"adresse (invalide|inconnue)|unbekannt|existiert nicht",
    re.IGNORECASE,
)
_TRANSIENT_OR_POLICY = re.compile(
    r"(mailbox|mailfolder|folder|inbox|mail ?box) (is )?full|mailbox.{0,20}(over|exceed)|quota|storage|"
    r"insufficient (system )?space|"
    r"ящик\w* переполнен|превышен\w* (размер|квот)|переполнен|too many messages|"
    r"(message|mail) (is )?too (large|big)|size (limit|exceed)|exceeds? .{0,30}(size|limit)|too large|"
    r"spam|blocked|block ?list|black ?list|listed|rbl|reputation|rejected (due to|by|for|as)|denied|"
    r"permission|"
    r"unavailable|retries|retry|giving up|gave up|too long|connect|"
    r"not (allowed|permitted|authori[sz]ed)|policy|prohibited|refused|relay|authenticat|dmarc|\bspf\b|"
    r"\bdkim\b|reverse dns|\bptr\b|rate limit|too many (connections|recipients)|try (again )?later|"
    r"temporar|timed? ?out|connection|network|unreachable|virus|malware|content|suspend|disabled|inactive|"
    r"deactivated|locked|frozen|expired|delay|deferred|greylist|grey-list|not (a )?member|"
    r"system error|server error|local error|internal error|loop|hop count|tls|encrypt|security|"
    r"спам|заблокирован|отклонен|временн",
    re.IGNORECASE,
)
_DELAY = re.compile(
    r"delayed|will (continue|be) (to )?(retry|retried|trying)|still (being )?(retried|trying)|not yet been "
    r"delivered|warning: message|temporar|deferred|задерж",
    re.IGNORECASE,
)

# The failure concerns our side (sender address, connection, the receiving program), not the recipient.
_NOT_RECIPIENT = re.compile(
    r"after mail from|mail from command|after end of data|after data|sender address rejected|"
    r"sender (domain|address) (is )?(invalid|unknown|not)|pipe to \||generated by .{0,60}\bpipe\b|"
    r"couldn'?t create|procmail",
    re.IGNORECASE,
)
# Explicitly temporary wording wins over anything else in the text.
_TRANSIENT = re.compile(
    r"try again|temporar|will (continue|be) (to )?(retry|retried|trying)|still (being )?(retried|trying)|"
    r"deferred|greylist|grey-list|временн|"
    r"has(n[’']?t| not) been delivered yet|keep trying to deliver",  # Exchange and Outlook.com delay warnings
    re.IGNORECASE,
)
# RFC 3463 subject.detail codes that concern the recipient address itself.
_ADDRESS_CODES = {("1", d) for d in ("0", "1", "2", "3", "4", "5", "6", "9", "10")} | {("4", "4"), ("3", "2")}


def _is_address_code(status: str | None) -> bool:
    """RFC 3463 status naming the recipient address itself (X.1.1 bad mailbox, X.1.2 bad system, ...)."""
    if not status:
        return False
    _, subject, detail = status.split(".")
    return (subject, detail) in _ADDRESS_CODES and (subject, detail) != ("1", "0")


def _kind(status: str | None, diagnostic: str, action: str = "") -> Kind:
    if action.startswith("delayed") or (status is not None and status.startswith("4")):
        return "soft"
    if status is not None and status.startswith("2"):
        return "unknown"
    if _NOT_RECIPIENT.search(diagnostic):
        return "soft"
    if _ADDRESS_GONE.search(diagnostic):
        return "hard"
    if _TRANSIENT.search(diagnostic) or _TRANSIENT_OR_POLICY.search(diagnostic):
        return "soft"
    if status is not None:
        _, subject, detail = status.split(".")
        if (subject, detail) in _ADDRESS_CODES or (subject in ("0", "3") and detail == "0"):
            return "hard"  # the address, or permanent and unexplained: RFC 3463 class 5
        return "soft"
    code = _REPLY_CODE.search(diagnostic)
    if code is not None:
        return "soft" if code.group(1) == "4" else "hard"
    return "unknown"


# --------------------------------------------------------------------------------------------------
# Heuristics for text bounces
# --------------------------------------------------------------------------------------------------

_STRONG_RECIPIENT = [
    re.compile(
        r"^[ \t]*<([^<>\s]{1,64}@[^<>\s]{1,255})>[ \t]*:", re.MULTILINE
    ),  # Postfix, qmail: "<user@host>: reason"
    re.compile(
        r"^[ \t*>]*<?([^<>\s@:;,()\"']{1,64}@[^<>\s:;,()\"']{1,255})>?:?[ \t]*(\([^\n]*\)|\[[^\n]*\])?[ \t]*$",
        re.MULTILINE,
    ),
    re.compile(
        r"(?:failed recipient|recipient address|original recipient|final recipient|recipient|"
        r"failed address|to address|адрес получателя|получател[ья]|адресат)\s*:?\s*(?:rfc822;)?\s*<?"
        r"([^<>\s@:;,()\"']{1,64}@[^<>\s:;,()\"']{1,255})",
        re.IGNORECASE,
    ),
    re.compile(r"RCPT TO:?\s*<([^<>\s]{1,64}@[^<>\s]{1,255})>", re.IGNORECASE),
    re.compile(
        r"(?:delivered|deliver|delivery|delivering [\w ]{1,20}) to:?\s*<?"
        r"([^<>\s@:;,()\"']{1,64}@[^<>\s:;,()\"']{1,255})",
        re.IGNORECASE,
    ),
]


def _candidates(text: str, exclude: set[str]) -> list[str]:
    seen: list[str] = []
    tried: set[tuple[str, bool]] = set()

    def add(value: str, *, allow_system: bool, allow_own: bool = False) -> None:
        if (value, allow_own) in tried or len(tried) > 200:  # validation is slow; a bounce names few addresses
            return
        tried.add((value, allow_own))
        addr = _address(value.rstrip("."))
        if addr is None or addr.lower() in (s.lower() for s in seen):
            return
        if addr.lower() in exclude and not allow_own:
            return
        if not allow_system and _SYSTEM_LOCAL.match(addr.split("@", 1)[0]):
            return
        seen.append(addr)

    for pattern in _STRONG_RECIPIENT:
        for match in pattern.finditer(text):
            add(match.group(1), allow_system=True)
        if seen:
            return seen
    # Our own address can be the failed one (a message to oneself); believe it only in the strong forms.
    for pattern in _STRONG_RECIPIENT:
        for match in pattern.finditer(text):
            add(match.group(1), allow_system=True, allow_own=True)
        if seen:
            return seen
    for match in _ADDRESS.finditer(text):
        before = text[max(0, match.start() - 16) : match.start()].lower()
        if "message-id" in before or re.search(r"\bid\s*<?$", before):
            continue  # a message id, not an address
        add(match.group(0), allow_system=False)
    return seen


def _diagnostic_around(text: str, recipient: str | None) -> str:
    """The lines that explain the failure: after a mention of the recipient, or with an SMTP code."""
    lines = [line.strip() for line in text.split("\n")]
    picked: list[str] = []
    if recipient:
        needles = [recipient.lower(), recipient.split("@", 1)[0].lower()]
        mentions = [i for needle in needles for i, line in enumerate(lines) if needle in line.lower()][:20]
        best_score = -1
        for i in dict.fromkeys(mentions):
            window = [part[:1000] for part in lines[i : i + 5] if part]
            joined = " ".join(window)
            score = sum(bool(rx.search(joined)) for rx in (_STATUS, _REPLY_CODE, _ADDRESS_GONE, _TRANSIENT_OR_POLICY))
            if score > best_score:
                picked, best_score = window, score
    coded = [line for line in lines if _STATUS.search(line) or _REPLY_CODE.search(line)]
    text_out = " ".join(picked)
    if not (_STATUS.search(text_out) or _REPLY_CODE.search(text_out)) and coded:
        text_out = " ".join([text_out, *coded[:2]]).strip()
    if not text_out:
        text_out = " ".join(line for line in lines if line)[:_MAX_DIAGNOSTIC]
    return " ".join(text_out.split())[:_MAX_DIAGNOSTIC]


_DATA_STAGE = re.compile(
    r"in reply to (end of )?data( command)?|after (end of )?data\b",
    re.IGNORECASE,
)


def _refused_after_data(text: str, recipient: str | None, *, single: bool) -> bool:
    """The remote server accepted the recipient and refused the content (RFC 5321 4.3.2, DATA stage).

    Such a refusal says nothing about the address, whatever words it uses ("User unknown" from filters).
    """
    if single and _DATA_STAGE.search(text):
        return True
    return bool(_DATA_STAGE.search(_diagnostic_around(text, recipient)))


def _json_bounce(text: str) -> BounceInfo | None:
    """Amazon SES / SNS JSON notifications: {"notificationType": "Bounce", "bounce": {...}}."""
    start = text.find("{")
    if start < 0 or "bounce" not in text.lower():
        return None
    try:
        data = json.loads(text[start : text.rfind("}") + 1])
    except ValueError:
        return None
    if isinstance(data, dict) and isinstance(data.get("Message"), str):
        try:
            data = json.loads(data["Message"])
        except ValueError:
            return None
    if not isinstance(data, dict):
        return None
    bounce = data.get("bounce")
    if not isinstance(bounce, dict):
        return None
    recipients = bounce.get("bouncedRecipients") or []
    first = recipients[0] if recipients and isinstance(recipients[0], dict) else {}
    status = _status_from(str(first.get("status") or ""))
    diagnostic = str(first.get("diagnosticCode") or bounce.get("bounceSubType") or "")[:_MAX_DIAGNOSTIC]
    kind = _kind(status, diagnostic)
    if kind == "unknown":
        kind = "hard" if str(bounce.get("bounceType")) == "Permanent" else "soft"
    return BounceInfo(_address(str(first.get("emailAddress") or "")), kind, status, diagnostic)


def _own_addresses(msg: Message) -> set[str]:
    out: set[str] = set()
    # Not Delivered-To/X-Original-To: some agents (DragonFly) put the failed recipient there.
    for name in ("from", "to", "sender", "return-path", "reply-to"):
        for key, value in _raw_fields(msg):
            if key != name:
                continue
            for found in _ADDRESS.findall(decode_encoded_words(value)):
                addr = _address(found)
                if addr:
                    out.add(addr.lower())
    return out


def _returned_recipient(msg: Message) -> str | None:
    """Last resort: the single To address of the returned original message (or its headers)."""
    for part in msg.walk():
        ctype = _ctype(part)
        headers: list[tuple[str, str]] = []
        if ctype in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                headers = _raw_fields(payload[0])
        elif ctype == "text/rfc822-headers":
            blocks = _blocks_from_text(_part_text(part))
            headers = blocks[0] if blocks else []
        found = [
            addr
            for name, value in headers
            if name == "to"
            for addr in (_address(a) for a in _ADDRESS.findall(decode_encoded_words(value)))
            if addr
        ]
        if len(found) == 1:
            return found[0]
    return None


def parse_bounce(raw_msg: Message) -> BounceInfo:
    """Read a bounce: RFC 3464 report first, then X-Failed-Recipients and text heuristics. Never raises."""
    try:
        return _parse_bounce(raw_msg)
    except Exception as exc:  # a bounce handler must not crash on a broken report; say so in the diagnostic
        return BounceInfo(None, "unknown", None, f"bounce not parseable: {type(exc).__name__}")


def _parse_bounce(msg: Message) -> BounceInfo:
    reports = dsn_recipients(msg)
    failed = [r for r in reports if r.action.startswith("failed")]
    delayed = [r for r in reports if r.action.startswith("delayed")]
    permanent = [r for r in reports if (r.status or "").startswith("5")]
    ranked = failed or permanent or delayed or reports
    chosen: DsnRecipient | None = ranked[0] if ranked else None
    text = bounce_text(msg)[:_MAX_TEXT]
    failed_header = [
        _address(a) for key, value in _raw_fields(msg) if key == "x-failed-recipients" for a in value.split(",")
    ]
    failed_from_header = next((a for a in failed_header if a), None)
    if chosen is not None:
        recipient = chosen.recipient or failed_from_header
        if recipient is None:
            found = _candidates(text, _own_addresses(msg))
            recipient = found[0] if found else _returned_recipient(msg)
        diagnostic = chosen.diagnostic
        if len(re.findall(r"[^\W\d_]", diagnostic)) < 3:  # empty or junk such as "77"
            diagnostic = _diagnostic_around(text, recipient) if text.strip() else diagnostic
        status = chosen.status
        # A generic "5.0.0" is often refined by the remote server's own code in the diagnostic.
        refined = _status_from(diagnostic)
        if refined and (status is None or status.endswith(".0.0")) and refined[0] == (status or refined)[0]:
            status = refined
        if status is None:
            status = refined
        kind = _kind(status, diagnostic or text, chosen.action)
        if (
            kind == "hard"
            and not _is_address_code(status)
            and _refused_after_data(text, recipient, single=len(failed or reports) == 1)
        ):
            kind = "soft"
        return BounceInfo(recipient, kind, status, diagnostic)

    json_info = _json_bounce(text)
    if json_info is not None:
        return json_info
    inline = _recipients_from_blocks(_blocks_from_text(text))
    inline_failed = [r for r in inline if r.recipient]
    if inline_failed:
        first = inline_failed[0]
        diagnostic = first.diagnostic or _diagnostic_around(text, first.recipient)
        status = first.status or _status_from(diagnostic)
        return BounceInfo(first.recipient, _kind(status, diagnostic, first.action), status, diagnostic)

    candidates = _candidates(text, _own_addresses(msg))
    recipient = failed_from_header or (candidates[0] if candidates else None) or _returned_recipient(msg)
    diagnostic = _diagnostic_around(text, recipient)
    status = _status_from(diagnostic) or _status_from(text)
    kind = _kind(status, diagnostic)
    if kind == "unknown":
        kind = _kind(status, text)
    if (
        kind == "hard"
        and not _is_address_code(status)
        and _refused_after_data(text, recipient, single=len(candidates) <= 1)
    ):
        kind = "soft"
    return BounceInfo(recipient, kind, status, diagnostic)
