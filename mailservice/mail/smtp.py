"""Sending over SMTP with aiosmtplib: one connection per batch, per-message outcome, TLS per settings."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass

import aiosmtplib

from mailservice.config import Security, Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SendOutcome:
    """How one message fared: sent, to be retried (4xx, network), or refused for good (5xx)."""

    ok: bool
    permanent: bool = False
    error: str = ""


def tls_context(ca_file: str = "") -> ssl.SSLContext:
    """A verifying TLS context; certificate checks are never turned off (a CA file may be added)."""
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(ca_file)
    return context


def client(settings: Settings) -> aiosmtplib.SMTP:
    """An SMTP client configured from settings (not yet connected)."""
    security = settings.smtp_security
    return aiosmtplib.SMTP(
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        use_tls=security is Security.ssl,
        start_tls=True if security is Security.starttls else False,
        tls_context=tls_context(settings.smtp_ca_file) if security is not Security.none else None,
        timeout=settings.smtp_timeout,
        username=settings.smtp_user or None,
        password=settings.smtp_password or None,
    )


def _classify_error(exc: Exception) -> SendOutcome:
    code = getattr(exc, "code", None)
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [getattr(r, "code", 0) for r in exc.recipients]
        permanent = bool(codes) and all(500 <= c < 600 for c in codes)
        return SendOutcome(ok=False, permanent=permanent, error=str(exc)[:2000])
    if isinstance(code, int) and 500 <= code < 600:
        return SendOutcome(ok=False, permanent=True, error=str(exc)[:2000])
    return SendOutcome(ok=False, error=f"{type(exc).__name__}: {exc}"[:2000])


def needs_smtputf8(mail_from: str, recipients: Sequence[str], raw: bytes) -> bool:
    """True when the envelope or the header of a message is not ASCII (a mailbox such as юрий@почта.рф): it can
    go only to a server that offers SMTPUTF8 (RFC 6531, RFC 6532)."""
    if not (mail_from.isascii() and all(r.isascii() for r in recipients)):
        return True
    end = raw.find(b"\r\n\r\n")
    return not raw[: end if end >= 0 else len(raw)].isascii()


# Staff read this in the outbox (last_error): the letter cannot go through a server without SMTPUTF8.
NO_SMTPUTF8 = (
    "Почтовый сервер не поддерживает SMTPUTF8 (RFC 6531): письмо на адрес, где имя ящика написано не латиницей "
    "(например, юрий@почта.рф), отправить через него нельзя. Сообщите заявителю другим способом или попросите "
    "у него другой адрес."
)


def _unexpected(exc: Exception) -> SendOutcome:
    """A failure that is not the server's answer. A value the client refused (an address or a text it cannot put
    on the wire) fails the same way on every try: permanent; anything else is retried."""
    error = f"Письмо не отправлено из-за ошибки программы ({type(exc).__name__}: {exc})"[:2000]
    return SendOutcome(ok=False, permanent=isinstance(exc, ValueError), error=error)


async def _open(settings: Settings) -> tuple[aiosmtplib.SMTP | None, str]:
    smtp_client = client(settings)
    try:
        await smtp_client.connect()
    except (aiosmtplib.SMTPException, OSError) as exc:
        return None, _classify_error(exc).error
    return smtp_client, ""


async def _close(smtp_client: aiosmtplib.SMTP) -> None:
    try:
        await smtp_client.quit()
    except (aiosmtplib.SMTPException, OSError):
        smtp_client.close()


async def send_batch(settings: Settings, batch: Sequence[tuple[int, str, list[str], bytes]]) -> dict[int, SendOutcome]:
    """Send pre-serialised messages ``(key, mail_from, recipients, raw)`` over one connection.

    Every message gets its own outcome, whatever happens to another: a connection failure marks every message not
    yet sent as retryable; a message with a non-ASCII mailbox or header goes with SMTPUTF8 when the server offers
    it and fails for good (with a reason for staff) when it does not; an unexpected error fails that message alone
    and the rest go over a fresh connection (the old one is in an unknown state).
    """
    outcomes: dict[int, SendOutcome] = {}
    smtp_client, error = await _open(settings)
    if smtp_client is None:
        return {key: SendOutcome(ok=False, error=error) for key, *_ in batch}
    try:
        for key, mail_from, recipients, raw in batch:
            options = ["SMTPUTF8"] if needs_smtputf8(mail_from, recipients, raw) else []
            try:
                await smtp_client.sendmail(mail_from, recipients, raw, mail_options=options)
                outcomes[key] = SendOutcome(ok=True)
            except aiosmtplib.SMTPNotSupported:
                outcomes[key] = SendOutcome(ok=False, permanent=True, error=NO_SMTPUTF8)
            except aiosmtplib.SMTPServerDisconnected as exc:
                outcomes[key] = _classify_error(exc)
                break
            except aiosmtplib.SMTPException as exc:
                outcomes[key] = _classify_error(exc)
                try:
                    await smtp_client.rset()
                except aiosmtplib.SMTPException:
                    break
            except Exception as exc:  # one bad message must never lose the outcomes of the others
                log.exception("outbox: sending message %s failed", key)
                outcomes[key] = _unexpected(exc)
                smtp_client.close()
                smtp_client, error = await _open(settings)
                if smtp_client is None:
                    break
    finally:
        if smtp_client is not None:
            await _close(smtp_client)
    for key, *_ in batch:
        outcomes.setdefault(key, SendOutcome(ok=False, error=error or "connection lost before sending"))
    return outcomes
