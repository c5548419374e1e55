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
from mailservice.outbox import enqueue

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
    enqueue(session, message, kind="mailing_withdrawn", ref_type=subscribers.REF_TYPE)


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
        subscribers.withdraw_in_transaction(session, settings, subscription, evidence=_evidence(parsed, entry), now=now)
        if mailing_list not in withdrawn:
            withdrawn.append(mailing_list)
    if not withdrawn:
        return "mailing: withdrawal requested by e-mail (0 lists: not subscribed, nothing sent)"
    _notify_withdrawn(session, address.ascii, parsed, withdrawn)
    return f"mailing: withdrawal requested by e-mail ({len(withdrawn)} lists)"
