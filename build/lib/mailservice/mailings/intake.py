"""Subscribe and unsubscribe requests that arrive by e-mail (the classifier labels them ``subscription``).

* A message carrying one of our unsubscribe tokens (the ``mailto:`` of List-Unsubscribe puts it in the subject)
  withdraws that subscription at once.
* A message asking to stop the mailing withdraws every subscription of the sender's address. The From header can
  be forged, so the address itself is told (a forger learns nothing, and the owner can subscribe again); a
  withdrawal is the safe direction of a mistake.
* A message asking to subscribe records the request and mails a confirmation link (double opt-in): the sender's
  mailbox must confirm, as on the site.
* Anything else (a change of address, a question about the mailing) is left to staff as an ordinary request.
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailservice.config import get_settings
from mailservice.db import utcnow
from mailservice.inforequests.service import Labels
from mailservice.intake.models import IntakeEntry
from mailservice.mail.compose import build_message
from mailservice.mail.parse import ParsedMessage
from mailservice.mailings import subscribers
from mailservice.mailings.consent import Evidence, parse_address
from mailservice.mailings.models import MailingList, Subscription, SubscriptionStatus
from mailservice.mailings.subscribers import LinkError
from mailservice.outbox import enqueue

# An itsdangerous token: base64url payload, a dot, a base64url HMAC-SHA1 (27 characters).
TOKEN = re.compile(r"[A-Za-z0-9_\-]{4,200}\.[A-Za-z0-9_\-]{27}(?![A-Za-z0-9_\-])")
UNSUBSCRIBE = re.compile(
    r"отпис|unsubscribe|отказ\w*\s+от\s+(рассылк|подписк)|"
    r"(исключ|удал|убер|убра)\w*\s+(меня|мой|мою|адрес|почту)|"
    r"прекрат\w*\s+(рассылк|присыл|отправ|направл)|"
    r"(не|больше\s+не)\s+(присыл|отправл|направл|шли)\w*",
    re.IGNORECASE,
)
SUBSCRIBE = re.compile(r"подпи[шс]|\bsubscribe\b|получать\s+(рассылк|новост|информац|сообщен|письм)", re.IGNORECASE)


def intent(text: str) -> str | None:
    """``unsubscribe``, ``subscribe`` or None (for staff). Withdrawal wins when both appear."""
    if UNSUBSCRIBE.search(text):
        return "unsubscribe"
    if SUBSCRIBE.search(text):
        return "subscribe"
    return None


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


def handle_subscription_mail(session: Session, parsed: ParsedMessage, labels: Labels, entry: IntakeEntry) -> str | None:
    """Intake's type route for ``subscription``; returns the journal reason, or None to register a request."""
    settings = get_settings()
    now = utcnow()
    text = f"{parsed.subject}\n{parsed.new_text or parsed.text}"
    for candidate in dict.fromkeys(TOKEN.findall(text)):
        try:
            subscription = subscribers.load_unsubscribe(session, settings, candidate)
        except LinkError:
            continue
        subscribers.withdraw_in_transaction(session, settings, subscription, evidence=_evidence(parsed, entry), now=now)
        return f"mailing: consent withdrawn by e-mail (subscription {subscription.id})"
    address = parse_address(parsed.from_addr or "")
    wish = intent(text)
    if address is None or wish is None:
        return None
    if wish == "subscribe":
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
    withdrawn: list[MailingList] = []
    subscriber = subscribers.find_subscriber(session, address)
    if subscriber is not None:
        rows = session.execute(
            select(Subscription, MailingList)
            .join(MailingList, MailingList.id == Subscription.list_id)
            .where(
                Subscription.subscriber_id == subscriber.id,
                Subscription.status.in_([SubscriptionStatus.active, SubscriptionStatus.pending]),
            )
            .order_by(Subscription.id)
        ).all()
        for subscription, mailing_list in rows:
            subscribers.withdraw_in_transaction(
                session, settings, subscription, evidence=_evidence(parsed, entry), now=now
            )
            withdrawn.append(mailing_list)
    _notify_withdrawn(session, address.ascii, parsed, withdrawn)
    return f"mailing: withdrawal requested by e-mail ({len(withdrawn)} lists)"
