"""Addresses, their hashes, the versioned consent text and the append-only consent log.

152-FZ art. 9 part 1: consent must be specific, informed and unambiguous; part 3 puts the burden of proof on the
operator. Each record therefore says who (a hash of the address), to what (list and purpose, data processed,
operator, term, how to withdraw), when, from where (page, IP, user agent) and which text was shown (version and
its SHA-256, the text itself kept in ``mailing_consent_texts``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email
from sqlalchemy.orm import Session

from mailservice.config import Settings
from mailservice.mailings.models import ConsentEvent, ConsentText, MailingList
from mailservice.templating import render

DATA_PROCESSED = "адрес электронной почты; имя, если указано"
TERM = "до отзыва согласия"


@dataclass(frozen=True)
class MailAddress:
    """An address as email-validator normalised it, with its ASCII (punycode domain) form for SMTP."""

    normalized: str
    ascii: str

    @property
    def hash(self) -> str:
        """The suppression and consent-log key."""
        return email_hash(self.normalized)


def parse_address(raw: str) -> MailAddress | None:
    """Validate an address for mailing (no DNS); None when it is not usable.

    IDN domains are accepted (sent as punycode); a non-ASCII local part needs SMTPUTF8 (RFC 6531), which many
    relays still lack, so it is refused rather than silently lost later.
    """
    candidate = (raw or "").strip()
    if not candidate or len(candidate) > 320 or any(ord(ch) < 32 for ch in candidate):
        return None
    try:
        result = validate_email(candidate, check_deliverability=False, allow_smtputf8=False)
    except (EmailNotValidError, UnicodeError, ValueError):
        return None
    if not result.ascii_email:
        return None
    return MailAddress(normalized=result.normalized, ascii=result.ascii_email)


def email_hash(address: str) -> str:
    """SHA-256 of the case-folded address: stable across purges and key rotation (a hash is enough, RULES.md).

    Case-folding the local part may merge two mailboxes that differ only in case; for suppression that errs on
    the side of not mailing.
    """
    return hashlib.sha256(("mailservice-mailing:" + address.strip().casefold()).encode("utf-8")).hexdigest()


def operator_name(settings: Settings) -> str:
    """The operator of the personal data: the department."""
    return settings.department_name


# The first word of a body's name in the dative case («согласие Департаменту …»).
_DATIVE = {
    "Департамент": "Департаменту",
    "Министерство": "Министерству",
    "Комитет": "Комитету",
    "Управление": "Управлению",
    "Агентство": "Агентству",
    "Инспекция": "Инспекции",
    "Служба": "Службе",
    "Администрация": "Администрации",
}


def operator_dative(settings: Settings) -> str:
    """The operator's name in the dative case, as the consent text says it: ``department_name_dative`` when set,
    else the name with its first word declined (a name that starts otherwise is used as it is)."""
    if settings.department_name_dative.strip():
        return settings.department_name_dative.strip()
    first, _, rest = settings.department_name.partition(" ")
    return f"{_DATIVE.get(first, first)} {rest}".strip()


def contact_address(settings: Settings) -> str:
    """Where a person can write to withdraw consent."""
    return settings.mailing_unsubscribe_address or settings.from_address


def withdrawal_method(settings: Settings) -> str:
    """How consent is withdrawn, as recorded with every consent."""
    return f"ссылка «Отписаться» в каждом письме рассылки; письмо на адрес {contact_address(settings)}"


def render_consent_text(settings: Settings) -> str:
    """The consent text shown next to the subscribe button (and on the confirmation page)."""
    return render(
        "web/mailings/consent_text.txt",
        operator=operator_dative(settings),
        operator_address=settings.department_address,
        contact=contact_address(settings),
    ).strip()


def text_version(text: str) -> tuple[str, str]:
    """A version label derived from the text itself, and the text's SHA-256: a changed text is a new version."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return f"t-{digest[:12]}", digest


def current_consent(session: Session, settings: Settings) -> ConsentText:
    """The consent text in force, stored on first use so that every record can point at it."""
    text = render_consent_text(settings)
    version, digest = text_version(text)
    row = session.get(ConsentText, version)
    if row is None:
        row = ConsentText(version=version, text=text, sha256=digest)
        session.add(row)
        session.flush()
    return row


def known_consent(session: Session, version: str) -> ConsentText | None:
    """A consent text by version, or None when that version was never shown."""
    return session.get(ConsentText, version) if version else None


@dataclass(frozen=True)
class Evidence:
    """Where and how a consent (or a withdrawal) was expressed."""

    method: str
    source: str = ""
    ip: str = ""
    user_agent: str = ""
    detail: str = ""


def record(
    session: Session,
    settings: Settings,
    *,
    kind: str,
    subscriber_id: int,
    address_hash: str,
    evidence: Evidence,
    mailing_list: MailingList | None = None,
    subscription_id: int | None = None,
    consent: ConsentText | None = None,
    at: dt.datetime,
) -> ConsentEvent:
    """Append one record to the consent log (never updated afterwards)."""
    event = ConsentEvent(
        at=at,
        kind=kind,
        subscriber_id=subscriber_id,
        subscription_id=subscription_id,
        list_id=mailing_list.id if mailing_list is not None else None,
        email_hash=address_hash,
        method=evidence.method[:32],
        source=evidence.source[:2000],
        ip=evidence.ip[:64],
        user_agent=evidence.user_agent[:1000],
        purpose=(mailing_list.purpose or mailing_list.title) if mailing_list is not None else "",
        data_processed=DATA_PROCESSED,
        operator=operator_name(settings),
        term=TERM,
        withdrawal_method=withdrawal_method(settings),
        consent_version=consent.version if consent is not None else "",
        consent_sha256=consent.sha256 if consent is not None else "",
        detail=evidence.detail[:2000],
    )
    session.add(event)
    return event
