"""Subscribe and unsubscribe commands that arrive by e-mail.

Intake calls these only for a command in its strict form or sent to a dedicated address (intake/commands.py; a
letter that merely mentions the mailing, «отписались», is registered as a request); staff call them when they
convert a registered letter into its command.

* A message carrying one of our unsubscribe tokens (the ``mailto:`` of List-Unsubscribe puts it in the subject)
  withdraws that subscription at once.
* An unsubscribe command withdraws every subscription of the sender's address. The From header can be forged, so
  the address itself is told (a forger learns nothing, and the owner can subscribe again); a withdrawal is the
  safe direction of a mistake. An address that had nothing to withdraw is told nothing: a stranger must not make
  us write to third parties; the journal records the command.
* A subscribe command records the request and mails a confirmation link (double opt-in): the sender's mailbox
  must confirm, as on the site.
"""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailservice.config import get_settings
from mailservice.intake.models import IntakeEntry
from mailservice.mail.compose import build_message
from mailservice.mail.parse import ParsedMessage
from mailservice.mailings import subscribers
from mailservice.mailings.consent import Evidence, parse_address
from mailservice.mailings.models import MailingList, Subscriber, Subscription, SubscriptionStatus
from mailservice.mailings.subscribers import LinkError
from mailservice.outbox import enqueue_raw, wire_fields

# An itsdangerous token: base64url payload, a dot, a base64url HMAC-SHA1 (27 characters).
TOKEN = re.compile(r"[A-Za-z0-9_\-]{4,200}\.[A-Za-z0-9_\-]{27}(?![A-Za-z0-9_\-])")


def _evidence(parsed: ParsedMessage, entry: IntakeEntry) -> Evidence:
    return Evidence(
        method="email",
        source="письмо",
        detail=f"журнал входящей почты № {entry.id}; Message-ID {parsed.message_id or '-'}",
    )


def _notify_withdrawn(session: Session, address: str, parsed: ParsedMessage, lists: list[MailingList]) -> None:
    settings = get_settings()
    message = build_message(
        settings,
        to=address,
        subject="Вы отписаны от рассылки",
        template="mailing_withdrawn",
        context={"lists": lists, "subscribe_url": f"{settings.public_url.rstrip('/')}/subscribe"},
        auto_submitted="auto-replied",
        in_reply_to=parsed.message_id,
        references=[parsed.message_id] if parsed.message_id else (),
    )
    # A queued row while intake writes its batch in bulk (outbox.enqueue_raw): nothing here needs the row's object.
    enqueue_raw(session, **wire_fields(message), kind="mailing_withdrawn", ref_type=subscribers.REF_TYPE)


def handle_subscribe(session: Session, parsed: ParsedMessage, entry: IntakeEntry, now: dt.datetime) -> str | None:
    """Intake's route for the subscribe command; returns the journal reason, or None to register a request."""
    settings = get_settings()
    address = parse_address(parsed.from_addr or "")
    if address is None:
        return None
    result = subscribers.subscribe(
        session,
        settings,
        address=address,
        lists=[subscribers.default_list(session)],
        evidence=_evidence(parsed, entry),
        consent_text=None,  # no consent text was shown: the confirmation page shows it and records it
        now=now,
        auto_submitted="auto-replied",
    )
    return f"mailing: subscription requested by e-mail ({result.outcome})"


def handle_unsubscribe(session: Session, parsed: ParsedMessage, entry: IntakeEntry, now: dt.datetime) -> str | None:
    """Intake's route for the unsubscribe command; returns the journal reason, or None to register a request."""
    settings = get_settings()
    text = f"{parsed.subject}\n{parsed.new_text or parsed.text}"
    for candidate in dict.fromkeys(TOKEN.findall(text)):
        try:
            subscription = subscribers.load_unsubscribe(session, settings, candidate)
        except LinkError:
            continue
        subscribers.withdraw_in_transaction(session, settings, subscription, evidence=_evidence(parsed, entry), now=now)
        return f"mailing: consent withdrawn by e-mail (subscription {subscription.id})"
    withdrawn = _withdraw_sender(session, parsed, _evidence(parsed, entry), now)
    if withdrawn is None:
        return None
    if not withdrawn:
        return "mailing: withdrawal requested by e-mail (0 lists: not subscribed, nothing sent)"
    return f"mailing: withdrawal requested by e-mail ({len(withdrawn)} lists)"


def withdraw_beside_a_request(session: Session, parsed: ParsedMessage, now: dt.datetime) -> str:
    """Intake's withdrawal for a letter registered for asking something besides the unsubscribe its subject or first
    sentence is (intake/commands.named): every subscription of the sender's address is withdrawn at once, the
    address told as for the command; returns the internal note for the request."""
    evidence = Evidence(
        method="email",
        source="письмо",
        detail=f"зарегистрированное обращение с просьбой отписаться; Message-ID {parsed.message_id or '-'}",
    )
    withdrawn = _withdraw_sender(session, parsed, evidence, now)
    said = (
        "Тема или первая фраза письма — просьба отписаться от рассылки; письмо зарегистрировано, так как в нём есть "
        "и другая просьба или вопрос. "
    )
    if withdrawn is None:
        return said + "Адрес отправителя не прочитан: отпишите его сами."
    if not withdrawn:
        return said + "Подписок на рассылки у этого адреса не было."
    names = ", ".join(f"«{mailing_list.title}»" for mailing_list in withdrawn)
    return said + f"Подписки отозваны при приёме письма: {names}; отправителю сообщено."


def _withdraw_sender(
    session: Session, parsed: ParsedMessage, evidence: Evidence, now: dt.datetime
) -> list[MailingList] | None:
    """Withdraw every subscription of the sender's mailbox and tell the address (when it had any); the lists, or
    None when the sender's address cannot be read."""
    settings = get_settings()
    address = parse_address(parsed.from_addr or "")
    if address is None:
        return None
    withdrawn: list[MailingList] = []
    # Every subscriber row of the mailbox, whatever the case it was written in (an earlier version kept one per
    # spelling; the hash folds case): the sender asked to stop the mail to this mailbox.
    same_mailbox = select(Subscriber.id).where(Subscriber.email_hash == address.hash, Subscriber.email.is_not(None))
    rows = session.execute(
        select(Subscription, MailingList)
        .join(MailingList, MailingList.id == Subscription.list_id)
        .where(
            Subscription.subscriber_id.in_(same_mailbox),
            Subscription.status.in_([SubscriptionStatus.active, SubscriptionStatus.pending]),
        )
        .order_by(Subscription.id)
    ).all()
    for subscription, mailing_list in rows:
        subscribers.withdraw_in_transaction(session, settings, subscription, evidence=evidence, now=now)
        if mailing_list not in withdrawn:
            withdrawn.append(mailing_list)
    if withdrawn:
        _notify_withdrawn(session, address.ascii, parsed, withdrawn)
    return withdrawn
