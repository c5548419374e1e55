"""Triage of inbound mail: a person's message, an automatic reply, or a bounce.

Help desks reopen tickets on out-of-office replies (zammad#5113) and open new ones in auto-reply loops
(osTicket#1041); here an automatic message never becomes a citizen's request and never gets an answer.
Rules run from the strongest evidence (a delivery report's structure) to the weakest (subject wording), and
the subject-only rules are kept narrow: a citizen's request taken for an automatic message would go
unregistered, which is worse than staff glancing at an out-of-office note.

Calendar mail (iTIP, RFC 5546: a text/calendar part with METHOD) is a program's: an answer to an invitation or a
cancellation (REPLY, CANCEL, COUNTER, DECLINECOUNTER, REFRESH: «Принято: …», «Accepted: …») is automatic unless its
text asks something; an invitation (REQUEST, ADD) waits in the visible held queue unless its text asks or complains,
when it is registered as usual (intake decides both with the same test as for list mail).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from email.utils import getaddresses
from enum import StrEnum

from mailservice.classify.prefilter import holds_needs, literals_apply, prefilters
from mailservice.mail.bounces import DELIVERY_STATUS_TYPES, bounce_text, dsn_recipients
from mailservice.mail.headers import part_content_type
from mailservice.mail.parse import ParsedMessage

__all__ = [
    "HELD_UNLESS_ASKING",
    "HOLD_AUTO_GENERATED",
    "HOLD_AUTO_SUBJECT",
    "HOLD_CALENDAR_INVITATION",
    "HOLD_CALENDAR_REPLY",
    "HOLD_LIST_MAIL",
    "HOLD_NULL_ENVELOPE",
    "HOLD_OWN_ADDRESS",
    "RELAYED_HOLDS",
    "TRIAGE_HOLDS",
    "UNANSWERABLE_HOLDS",
    "Triage",
    "Verdict",
    "triage",
]


class Verdict(StrEnum):
    normal = "normal"
    auto_reply = "auto_reply"
    bounce = "bounce"


@dataclass(frozen=True)
class Triage:
    """The verdict and the rule that decided it (short English text for logs and the staff console)."""

    verdict: Verdict
    reason: str
    # A weak sign of an automatic message on a letter otherwise a person's: it waits in the visible held queue
    # (Russian, for staff) instead of being registered at once; never dropped (59-FZ art. 8: every appeal).
    hold: str = ""
    # Sent through a mailing list, a bulk mailer (RFC 2369/2919 headers, Precedence) or a program (Auto-Submitted:
    # auto-generated): ignored as automatic unless its text asks something, which intake decides; it then waits
    # for staff with this hold (a citizen's letter relayed by a list or a site's form service is still an appeal).
    relayed: str = ""


# Mail system accounts. Gateways that send plain-text bounces without a DSN part sign as postmaster, MAILER-DAEMON
# or a "<Org>_Mail_Service" / "Mail Gateway" account (seen on regional government relays); Lotus Domino as its
# "Mail Router"; Exchange and Outlook.com from the organisation's system mailbox, whose name is fixed in every
# Exchange organisation: MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e. Read on the addresses (strong) and on
# the display names (weak: a company may be called «Почтовый сервис», tryout T4).
_SYSTEM_SENDER = re.compile(
    r"(^|[<\s\"'(])(mailer[-_.]?daemon|postmaster|post_master|mdaemon|mail[-_]?delivery[-_]?(system|subsystem)?)"
    r"(@|[>\s\"')]|$)|mail delivery (system|subsystem)|почтовая система|система доставки|"
    r"[a-z0-9]_mail_service\b|(^|[<\s\"'(])mail[-_ ]?(service|gateway|administrator|router)(@|[>\s\"')]|$)|"
    r"(^|[<\s\"'(])microsoftexchange329e71ec88ae4615bbc36ab6ce41109e@|"
    r"почтовый (шлюз|сервис|сервер)",
    re.IGNORECASE,
)
_BOUNCE_SUBJECT = re.compile(
    r"^\s*(undeliver(ed|able)|delivery (status notification|failure|failed|has failed|problem|notification)|"
    r"(mail|message) delivery (failed|failure|has failed)|returned mail|mail system error|failure notice|"
    r"(permanent |temporary )?delivery failure|could not send message|"
    r"message (not delivered|could not be delivered)|"
    r"delayed mail|delivery delayed|warning: (could not send|message .* delayed)|nondeliverable|non-delivery|"
    r"delivery (report|status)|mail could not be delivered|returned to sender|there was an error sending|"
    r"mail delivery warning|delivery (status )?warning|error during delivery|(message )?non remis\b|"
    r"non distribuable|unzustellbar|"
    r"недоставленное|не доставлено|сообщение не доставлено|"
    r"ваше сообщение не (доставлено|может быть доставлено)|"
    r"ошибка доставки|письмо не доставлено|уведомление о (недоставке|доставке))",
    re.IGNORECASE,
)
_BOUNCE_BODY = re.compile(
    r"could ?n[o']t be delivered|undeliverable|delivery (to the following recipients? )?(has )?failed|"
    r"permanent (fatal )?error|the following address(es)? (failed|had)|returned to sender|unable to deliver|"
    r"not be delivered|wasn'?t able to deliver|was not delivered|delivery status notification|failure notice|"
    r"message (was )?(not|couldn'?t be) delivered|has not been delivered|delivery problem|delivery failure|"
    r"user unknown|mailbox unavailable|delivery has been delayed|will be retried|"
    r"не (может быть|было|удалось) (быть )?доставлен|не доставлен|не удалось доставить|ошибка доставки|"
    r"n[’']a pas pu (être|etre) remis|requested action not taken|failed recipients|"
    # Exchange and Outlook.com (English and French), Lotus Domino
    r"delivery is delayed|has(n[’']?t| not) been delivered|impossible de remettre|not listed in domino directory",
    re.IGNORECASE,
)
# RFC 3834 2: "Auto-Submitted: no" means a person sent it; anything else is automatic.
_AUTO_HEADER_FLAGS = ("x-autoreply", "x-autorespond", "x-autogenerated", "x-auto-reply")
_BULK_PRECEDENCE = re.compile(r"^\s*(bulk|junk|list|auto_reply)\b", re.IGNORECASE)
# The prefixes mail programs put before the original subject of an automatic reply (Outlook, Exchange, Yandex,
# Mail.ru, Gmail, Thunderbird...): the word and a colon. «Автоответ не пришёл» is a person's complaint.
_AUTO_SUBJECT = re.compile(
    r"^\s*(auto|autoreply|auto-reply|auto reply|automatic reply|autoresponse|auto-response|automatic response|"
    r"out of (the )?office|out of office reply|out of office autoreply|автоответ|автоматический ответ|"
    r"автоответчик|автоматическое уведомление|abwesenheitsnotiz|automatische antwort|réponse automatique|"
    r"respuesta automática|automatisch antwoord)\s*:",
    re.IGNORECASE,
)
HOLD_AUTO_SUBJECT = "похоже на автоответ: тема начинается как у автоответа, других признаков автоматического письма нет"
HOLD_LIST_MAIL = (
    "пришло как письмо рассылки (заголовки List-Id, List-Unsubscribe или Precedence), но в тексте есть просьба, "
    "жалоба или адрес"
)
HOLD_AUTO_GENERATED = (
    "пришло как письмо, сформированное программой (заголовок Auto-Submitted, например форма сайта), но в тексте "
    "есть просьба, вопрос, жалоба или адрес"
)
HOLD_CALENDAR_INVITATION = (
    "приглашение на встречу из календаря (iTIP REQUEST): в тексте нет просьбы, вопроса, жалобы или адреса"
)
HOLD_CALENDAR_REPLY = (
    "ответ на приглашение из календаря или отмена встречи (iTIP REPLY, CANCEL), но в тексте есть просьба, вопрос, "
    "жалоба или адрес"
)
HOLD_NULL_ENVELOPE = (
    "пришло с пустым адресом возврата (<>): так приходят уведомления почтовых систем, но в письме есть вопрос — "
    "проверьте и зарегистрируйте"
)
HOLD_OWN_ADDRESS = (
    "пришло от собственного адреса департамента (поле From — адрес, с которого служба пишет или который читает): "
    "так бывает при подделке отправителя или петле пересылки; автоматический ответ не отправлен — проверьте и "
    "зарегистрируйте или закройте без номера"
)
HOLD_SYSTEM_NOTICE = (
    "похоже на автоматическое уведомление другой системы («сформировано автоматически», «отвечать не нужно»): "
    "проверьте, нужно ли его регистрировать"
)
# The holds triage itself decides, with the short English reason intake's journal records for each.
TRIAGE_HOLDS = {
    HOLD_AUTO_SUBJECT: "automatic-reply subject alone",
    HOLD_LIST_MAIL: "list mail that asks something",
    HOLD_AUTO_GENERATED: "auto-generated mail that asks something",
    HOLD_CALENDAR_INVITATION: "calendar invitation that asks nothing",
    HOLD_CALENDAR_REPLY: "calendar reply that asks something",
    HOLD_NULL_ENVELOPE: "null envelope sender <> on a letter that asks something",
    HOLD_OWN_ADDRESS: "From is one of our own addresses",
    HOLD_SYSTEM_NOTICE: "automatic notice of another system",
}
# Holds of a copy a list or a program relayed: it never acts as its sender's command or thanks. A letter with a
# null return path is held the same way: nothing may answer it automatically (RFC 5321 4.5.5).
RELAYED_HOLDS = frozenset(
    {HOLD_LIST_MAIL, HOLD_AUTO_GENERATED, HOLD_CALENDAR_REPLY, HOLD_NULL_ENVELOPE, HOLD_SYSTEM_NOTICE}
)
# Holds of a letter nothing may answer automatically (RFC 5321 4.5.5; RFC 3834 2): it joins no request either, since
# joining may send a notice.
UNANSWERABLE_HOLDS = frozenset({HOLD_NULL_ENVELOPE, HOLD_OWN_ADDRESS})
# Holds that intake lifts when the letter asks, complains or names a place: it is then registered as usual.
HELD_UNLESS_ASKING = frozenset({HOLD_CALENDAR_INVITATION})
# iTIP methods (RFC 5546 1.4): answers and cancellations are automatic; invitations wait for staff.
_ITIP_ANSWERS = frozenset({"REPLY", "CANCEL", "COUNTER", "DECLINECOUNTER", "REFRESH"})
_ITIP_INVITATIONS = frozenset({"REQUEST", "ADD"})
_ITIP_TYPES = frozenset({"text/calendar", "application/ics"})
_ITIP_METHOD = re.compile(rb"^METHOD[ \t]*:[ \t]*([A-Za-z-]{1,20})[ \t]*\r?$", re.MULTILINE | re.IGNORECASE)
_ITIP_READ = 65536  # METHOD is a property of VCALENDAR, before any component
# Phrases a citizen could also start a subject with: believed only for a reply to one of our messages.
_WEAK_AUTO_SUBJECT = re.compile(
    r"^\s*((re|ответ)\s*:\s*)?(нет на месте|отсутствую|отсутствие на рабочем месте|я в отпуске|в отпуске|"
    r"вне офиса|нахожусь в отпуске|out of office|vacation|on vacation|away from the office)\b",
    re.IGNORECASE,
)
_WEAK_AUTO_MAX_TEXT = 2000
# A read receipt sent as an ordinary letter, not as RFC 8098's report (Outlook and Exchange in some set-ups, older
# programs): the receipt's subject prefix and its sentence together; either alone may be a person's words.
_RECEIPT_SUBJECT = re.compile(r"^\s*(прочитано|не прочитано|read|not read|lu|gelesen|ungelesen)\s*:", re.IGNORECASE)
_RECEIPT_TEXT = re.compile(
    r"(было|были) прочитан|удален[оы]? без прочтения|\bwas read on\b|was deleted without being read|"
    r"\ba été lu\b|wurde am .{1,40} gelesen",
    re.IGNORECASE,
)
_SES_NOTIFICATION = re.compile(r'\\?"notificationType\\?"\s*:\s*\\?"(Bounce|Complaint|Delivery)', re.IGNORECASE)


class _Prefiltered:
    """A case-insensitive search skipped for a text that lacks the literals every match holds, derived from the
    expression as for the classifier's rules (classify/prefilter.py): nearly every letter lacks them, and the
    substring tests cost a fraction of the search (bench/intake.py)."""

    def __init__(self, regex: re.Pattern[str]) -> None:
        self.regex = regex
        self.needs, _twin = prefilters(regex)

    def search(self, text: str) -> re.Match[str] | None:
        """``regex.search(text)``."""
        folded = text.lower()
        # The literals are exact for a lower-case text with no look-alike letters (literals_apply); here that text
        # stands for ``text`` when lowering it kept one character for one.
        exact = len(folded) == len(text) and literals_apply(folded)
        if exact and not holds_needs(folded, self.needs):
            return None
        return self.regex.search(text)


# What another body's system writes under its notices («Ваше обращение зарегистрировано под № …», a status changed
# on Госуслуги), often without Auto-Submitted: made by a program, and not to be answered.
_MADE_BY_PROGRAM = _Prefiltered(
    re.compile(
        r"(сформирован|сгенерирован|создан|отправлен|рассылается)[оаы]?\s+автоматически|"
        r"автоматически\s+(сформирован|сгенерирован|создан|отправлен)|"
        r"автоматическ(ое|ая|ий)\s+(уведомлени|рассылк|письм|сообщени)|"
        r"generated automatically|automatically generated|automated (message|notification)",
        re.IGNORECASE,
    )
)
_DO_NOT_REPLY = re.compile(
    r"не\s+отвечайте|отвечать\s+на\s+(него|нее|неё|это\s+письмо|это\s+сообщение|данное\s+(письмо|сообщение))\s+не\s+"
    r"(нужно|требуется|следует|надо)|не\s+требует\s+ответа|do not reply|don[’']t reply|please do not respond",
    re.IGNORECASE,
)
# Enough of a notice's text to find both: they stand in its first lines or its last ones.
_NOTICE_READ = 4000
_NO_REPLY_LOCAL = re.compile(r"^(no-?reply|do-?not-?reply|noreply|bounces?|mailer|mail-?daemon)([-+._].*)?$")
_LIST_ROBOT_LOCAL = re.compile(r".-(admin|owner|request|bounces?)$")
# What list software (Mailman, ezmlm, fml, Sympa, Majordomo, LISTSERV) writes besides List-Id/List-Unsubscribe:
# with a robot's address it marks list mail; a person's address alone (olga-admin@mail.ru) marks nothing (tryout T2).
_LIST_SOFTWARE_HEADERS = re.compile(
    r"^(list-\S+|mailing-list|x-mailman-\S+|x-beenthere|x-list-\S+|x-ml-\S+|x-mlserver|x-loop)$"
)
_LIST_SOFTWARE = re.compile(r"mailman|ezmlm|sympa|majordomo|listserv|mlmmj|\bfml\b", re.IGNORECASE)


def _content_types(raw_msg: Message) -> list[str]:
    try:
        return [part_content_type(part) for part in raw_msg.walk()]
    except Exception:  # a broken tree: what was read so far is all we know
        return [part_content_type(raw_msg)]


def _report_type(raw_msg: Message) -> str:
    try:
        value = raw_msg.get_param("report-type")
    except Exception:
        return ""
    return str(value).strip().lower() if isinstance(value, str) else ""


def _null_sender(value: str | None) -> bool:
    return value is not None and value.strip().strip("<>").strip() == ""


def triage(msg: ParsedMessage, raw_msg: Message, envelope_from: str | None) -> Triage:
    """Decide whether ``msg`` is a person's message, an automatic reply or a bounce (see module docstring).

    ``envelope_from`` is the SMTP MAIL FROM when known ("" or "<>" for the null sender), None otherwise.
    """
    headers = msg.headers
    content_type = _content_types(raw_msg)
    top = content_type[0] if content_type else ""
    report_type = _report_type(raw_msg) if top == "multipart/report" else ""

    # 1. Structured reports (RFC 3464 delivery status, RFC 8098 read receipts, RFC 5965 feedback).
    if any(ct in DELIVERY_STATUS_TYPES for ct in content_type) or report_type == "delivery-status":
        reports = dsn_recipients(raw_msg)
        if reports and all(r.action.startswith(("delivered", "relayed", "expanded")) for r in reports):
            return Triage(Verdict.auto_reply, "delivery status notification reporting success (RFC 3464)")
        return Triage(Verdict.bounce, "delivery status notification: message/delivery-status (RFC 3464)")
    if report_type in ("feedback-report",) or "message/feedback-report" in content_type:
        return Triage(Verdict.auto_reply, "abuse feedback report (ARF, RFC 5965)")
    if _is_jmrp(raw_msg):
        return Triage(Verdict.auto_reply, "abuse complaint report (Microsoft JMRP)")
    if report_type == "disposition-notification" or "message/disposition-notification" in content_type:
        return Triage(Verdict.auto_reply, "message disposition notification (read receipt, RFC 8098)")
    if headers.get("x-failed-recipients"):
        return Triage(Verdict.bounce, "X-Failed-Recipients header")

    # 2. Non-standard bounces. Bounce wording alone is not enough: a citizen may well complain in a subject
    # that "the letter was not delivered", and forward the returned letter as an attachment (tryout T5); a machine
    # sender must back it: a mail system's address, the null envelope, Auto-Submitted.
    addresses, names = _sender_parts(msg, raw_msg)
    system_sender = bool(_SYSTEM_SENDER.search(addresses))
    null_envelope = _null_sender(envelope_from) or _null_sender(headers.get("return-path"))
    auto_submitted = headers.get("auto-submitted", "").strip().lower()
    automatic = bool(auto_submitted) and not auto_submitted.startswith("no")
    machine = system_sender or null_envelope or automatic
    bounce_subject = bool(_BOUNCE_SUBJECT.search(msg.subject))
    if machine and (bounce_subject or system_sender or null_envelope):
        if bounce_subject or _BOUNCE_BODY.search(_bounce_body(raw_msg, msg)):
            return Triage(Verdict.bounce, "delivery failure notice from a mail system or automatic sender")
        if system_sender:
            return Triage(Verdict.auto_reply, "sent by a mail system account (MAILER-DAEMON/postmaster)")
    if bounce_subject and _SYSTEM_SENDER.search(names) and _BOUNCE_BODY.search(_bounce_body(raw_msg, msg)):
        # A gateway that signs with a name only ("NSO_Mail_Service <mailgate@...>"): the name, the subject and
        # the failure text together; the name alone is a company's (tryout T4).
        return Triage(Verdict.bounce, "delivery failure notice signed with a mail system's name")
    ses = _SES_NOTIFICATION.search(msg.text[:4000])
    if ses is not None:
        if ses.group(1).lower() == "bounce":
            return Triage(Verdict.bounce, "Amazon SES bounce notification")
        return Triage(Verdict.auto_reply, "Amazon SES notification")
    local = (msg.from_addr or "").split("@", 1)[0].lower()
    if _NO_REPLY_LOCAL.search(local) and _BOUNCE_BODY.search(_bounce_body(raw_msg, msg)):
        return Triage(Verdict.bounce, "delivery failure text from a no-reply sender")
    if msg.from_addr is None:
        return Triage(Verdict.auto_reply, "no usable sender address: machine-generated message")
    method = _itip_method(raw_msg)
    if method in _ITIP_ANSWERS:
        return Triage(Verdict.auto_reply, f"calendar METHOD:{method} (iTIP, RFC 5546)", relayed=HOLD_CALENDAR_REPLY)
    if method in _ITIP_INVITATIONS:
        return Triage(Verdict.normal, f"calendar METHOD:{method} (iTIP, RFC 5546)", hold=HOLD_CALENDAR_INVITATION)

    # 3. RFC 3834 and vendor auto-reply markers. "auto-replied", or any value on an answer to some message (Exchange
    # marks its out-of-office "auto-generated"), is an automatic reply; an "auto-generated" new message is also what
    # a site's form service puts on the appeal it relays (tryout T3): that waits for staff if it asks.
    if automatic:
        answer = (
            auto_submitted.startswith("auto-replied")
            or bool(msg.in_reply_to or msg.references)
            or bool(_AUTO_SUBJECT.search(msg.subject) or _WEAK_AUTO_SUBJECT.search(msg.subject))
        )
        relayed = "" if answer else HOLD_AUTO_GENERATED
        return Triage(Verdict.auto_reply, f"Auto-Submitted: {auto_submitted[:40]} (RFC 3834)", relayed=relayed)
    for name in _AUTO_HEADER_FLAGS:
        if name in headers:
            return Triage(Verdict.auto_reply, f"{name.title()} header")
    # X-Auto-Response-Suppress asks *others* not to answer automatically; ordinary mail from Outlook, CRMs and
    # site forms carries it: it says nothing of the message itself (RFC 3834 uses Auto-Submitted).
    if "x-ms-exchange-generated-message-source" in headers or "x-ms-exchange-inbox-rules-loop" in headers:
        return Triage(Verdict.auto_reply, "generated by an Exchange rule or service")
    for name in ("precedence", "x-precedence"):
        precedence = _BULK_PRECEDENCE.search(headers.get(name, ""))
        if precedence:
            relayed = "" if precedence.group(1).lower() == "auto_reply" else HOLD_LIST_MAIL
            return Triage(Verdict.auto_reply, f"{name.title()}: {headers[name][:20]}", relayed=relayed)
    if "list-id" in headers:
        return Triage(Verdict.auto_reply, "mailing list message (List-Id, RFC 2919)", relayed=HOLD_LIST_MAIL)
    if "list-unsubscribe" in headers:
        return Triage(
            Verdict.auto_reply, "mailing list or bulk message (List-Unsubscribe, RFC 2369)", relayed=HOLD_LIST_MAIL
        )
    if _LIST_ROBOT_LOCAL.search(local) and _list_software(headers, raw_msg):
        return Triage(
            Verdict.auto_reply,
            "mailing-list robot address (-admin, -owner, -request) and list software headers",
            relayed=HOLD_LIST_MAIL,
        )
    own_text = msg.new_text or msg.text
    notice_text = own_text[:_NOTICE_READ] + "\n" + own_text[-_NOTICE_READ:]
    if _MADE_BY_PROGRAM.search(notice_text) and (_NO_REPLY_LOCAL.search(local) or _DO_NOT_REPLY.search(notice_text)):
        # Another body's system answering the department's mailbox (a registration notice, a status changed): not
        # an appeal (tryout W10). From a no-reply address it is an automatic reply, held when it asks something;
        # from an address a person may use (a reception's mailbox) it always waits for staff, never dropped.
        if _NO_REPLY_LOCAL.search(local):
            return Triage(Verdict.auto_reply, "automatic notice from a no-reply address", relayed=HOLD_SYSTEM_NOTICE)
        return Triage(
            Verdict.normal, "automatic notice: made by a program, not to be answered", hold=HOLD_SYSTEM_NOTICE
        )
    if null_envelope:
        # RFC 5321 4.5.5: a message with a null reverse-path gets no automatic reply (it is how notices of mail
        # systems come). But a site's form relay or a gateway releasing a letter from its quarantine sends a
        # person's letter so too (tryout T9): one that asks waits in the held queue for staff, unanswered (intake
        # decides, as for list mail); one that asks nothing is ignored and journalled.
        return Triage(Verdict.auto_reply, "null envelope sender <> (RFC 5321 4.5.5)", relayed=HOLD_NULL_ENVELOPE)

    # 4. Subjects: believed only on a short reply (an answer to some message of ours or another's); alone, the
    # subject is a weak sign and the letter waits in the held queue for staff to look.
    short_reply = bool(msg.in_reply_to or msg.references) and len(msg.text) <= _WEAK_AUTO_MAX_TEXT
    if _AUTO_SUBJECT.search(msg.subject):
        if short_reply:
            return Triage(Verdict.auto_reply, "automatic-reply subject on a short reply")
        return Triage(Verdict.normal, "automatic-reply subject alone: held for staff", hold=HOLD_AUTO_SUBJECT)
    if _WEAK_AUTO_SUBJECT.search(msg.subject) and short_reply:
        return Triage(Verdict.auto_reply, "out-of-office subject on a short reply")
    if _RECEIPT_SUBJECT.search(msg.subject) and len(msg.text) <= _WEAK_AUTO_MAX_TEXT and _RECEIPT_TEXT.search(msg.text):
        # Never the person's clarification or answer: it only says our letter was opened (tryout W11).
        return Triage(Verdict.auto_reply, "read receipt as a plain letter (subject and text of a receipt)")
    return Triage(Verdict.normal, "no automatic-message marker")


def _itip_method(raw_msg: Message) -> str:
    """The iTIP method of the letter's calendar part ("" if none): its Content-Type parameter, else its METHOD line.
    Parts of an attached message are not looked at: a forwarded invitation is the forwarder's letter."""
    stack = [raw_msg]
    seen = 0
    while stack and seen < 100:
        part = stack.pop()
        seen += 1
        ctype = part_content_type(part)
        if ctype.startswith("message/"):
            continue
        # Only a multipart's list of parts is read here: a leaf's body is decoded with its charset parameter, which a
        # broken Content-Type (RFC 2231 `name*` and `name*0` together) makes the email package raise on.
        if part.is_multipart():
            stack.extend(reversed([child for child in part.get_payload() if isinstance(child, Message)]))
        elif ctype in _ITIP_TYPES and (method := _part_method(part)):
            return method
    return ""


def _part_method(part: Message) -> str:
    try:
        declared = part.get_param("method")
        data = part.get_payload(decode=True)
    except Exception:  # a broken part: no method read from it
        return ""
    if isinstance(declared, str) and declared.strip():
        return declared.strip().upper()[:20]
    match = _ITIP_METHOD.search(data[:_ITIP_READ]) if isinstance(data, bytes) else None
    return match.group(1).decode("ascii").upper() if match else ""


def _is_jmrp(raw_msg: Message) -> bool:
    """Microsoft's complaint loop returns the complained-about message with X-HmXmrOriginalRecipient."""
    try:
        for part in raw_msg.walk():
            if part_content_type(part) != "message/rfc822":
                continue
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(inner, Message) and any(
                str(k).lower() == "x-hmxmroriginalrecipient" for k, _ in inner.raw_items()
            ):
                return True
    except Exception:
        return False
    return False


def _sender_parts(msg: ParsedMessage, raw_msg: Message) -> tuple[str, str]:
    """The addresses and the display names of From and Sender, each joined into one text for _SYSTEM_SENDER."""
    try:
        values = [str(v) for k, v in raw_msg.raw_items() if k.lower() == "from"]
    except Exception:
        values = []
    values.append(msg.headers.get("sender", ""))
    addresses, names = [msg.from_addr or ""], [msg.from_name]
    for value in filter(None, values):
        try:
            pairs = getaddresses([value])
        except Exception:
            pairs = []
        if any(address for _name, address in pairs):
            addresses += [address for _name, address in pairs]
            names += [name for name, _address in pairs]
        else:
            addresses.append(value)  # "MAILER-DAEMON" with nothing around it, or a header too broken to split
    return " ".join(a for a in addresses if a), " ".join(n for n in names if n)


def _list_software(headers: Mapping[str, str], raw_msg: Message) -> bool:
    """Whether list software's own headers are on the message (read raw: intake keeps only a few headers)."""
    try:
        names = [str(name).lower() for name in raw_msg.keys()]
    except Exception:
        names = list(headers)
    if any(_LIST_SOFTWARE_HEADERS.match(name) for name in names):
        return True
    return bool(_LIST_SOFTWARE.search(headers.get("x-mailer", "")))


def _bounce_body(raw_msg: Message, msg: ParsedMessage) -> str:
    try:
        text = bounce_text(raw_msg)
    except Exception:
        text = ""
    return (text or msg.text)[:50_000]
