"""Sending over SMTP with aiosmtplib: one connection per batch, per-message outcome, TLS per settings."""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass

import aiosmtplib

from mailservice.config import Security, Settings


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


async def send_batch(settings: Settings, batch: Sequence[tuple[int, str, list[str], bytes]]) -> dict[int, SendOutcome]:
    """Send pre-serialised messages ``(key, mail_from, recipients, raw)`` over one connection.

    A connection failure marks every message not yet sent as retryable.
    """
    outcomes: dict[int, SendOutcome] = {}
    smtp_client = client(settings)
    try:
        await smtp_client.connect()
    except (aiosmtplib.SMTPException, OSError) as exc:
        failure = _classify_error(exc)
        return {key: SendOutcome(ok=False, error=failure.error) for key, *_ in batch}
    try:
        for key, mail_from, recipients, raw in batch:
            try:
                await smtp_client.sendmail(mail_from, recipients, raw)
                outcomes[key] = SendOutcome(ok=True)
            except aiosmtplib.SMTPServerDisconnected as exc:
                outcomes[key] = _classify_error(exc)
                break
            except aiosmtplib.SMTPException as exc:
                outcomes[key] = _classify_error(exc)
                try:
                    await smtp_client.rset()
                except aiosmtplib.SMTPException:
                    break
    finally:
        try:
            await smtp_client.quit()
        except (aiosmtplib.SMTPException, OSError):
            smtp_client.close()
    for key, *_ in batch:
        outcomes.setdefault(key, SendOutcome(ok=False, error="connection lost before sending"))
    return outcomes
