"""The inbound SMTP/LMTP receiver (aiosmtpd) that feeds intake.

The receiver rejects at the protocol edge what intake could never use (too large: 552 via SIZE, RFC 1870) and
hands every accepted message to the same intake as the IMAP poller. A failure inside intake answers 451 so that
the sending MTA keeps the message and retries (RFC 5321 4.2.5): nothing is lost at this edge either.

Lines longer than RFC 5321 4.5.3.1.6's 1,000 octets are accepted up to :data:`MAX_LINE_BYTES`: mail programs send
longer HTML lines, and refusing them would bounce a citizen's letter. The bound is also the most a connection's
reader buffers for one line, so memory stays bounded; the message size limit applies as before.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session

from mailservice.config import Settings
from mailservice.intake.pipeline import Source, process_raw
from mailservice.mail.sink import raw_content

log = logging.getLogger(__name__)

# The longest line taken, its CRLF included (aiosmtpd's own limit is RFC 5321's 1,000 octets and the CRLF).
MAX_LINE_BYTES = 2**20


class IntakeHandler:
    """Hands each message received over SMTP/LMTP to intake."""

    def __init__(self, settings: Settings, lmtp: bool = False) -> None:
        self.settings = settings
        self.lmtp = lmtp

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Run intake in a worker thread (the database layer is synchronous) and answer per RFC 5321."""
        source = Source("lmtp" if self.lmtp else "smtp", envelope_from=envelope.mail_from or "")
        try:
            await asyncio.get_running_loop().run_in_executor(
                None, process_raw, self.settings, raw_content(envelope), source
            )
        except Exception:
            log.exception("intake failed; asking the client to retry")
            reply = "451 4.3.0 Temporary failure, please retry"
        else:
            reply = "250 2.0.0 Message accepted"
        # LMTP answers once per recipient (RFC 2033 4.2); SMTP once per message.
        count = len(envelope.rcpt_tos) if self.lmtp else 1
        return "\r\n".join([reply] * max(count, 1))


class _SMTP(SMTP):
    line_length_limit = MAX_LINE_BYTES


class _LMTP(LMTP):
    line_length_limit = MAX_LINE_BYTES


class _SMTPController(Controller):
    def factory(self) -> Any:
        return _SMTP(self.handler, **self.SMTP_kwargs)


class _LMTPController(Controller):
    def factory(self) -> Any:
        return _LMTP(self.handler, **self.SMTP_kwargs)


def start_receiver(settings: Settings) -> Controller:
    """Start the inbound receiver on ``receiver_host:receiver_port`` in its own thread."""
    handler = IntakeHandler(settings, lmtp=settings.receiver_lmtp)
    cls = _LMTPController if settings.receiver_lmtp else _SMTPController
    controller = cls(
        handler,
        hostname=settings.receiver_host,
        port=settings.receiver_port,
        data_size_limit=settings.max_message_bytes,
        decode_data=False,
        enable_SMTPUTF8=True,  # a citizen's mailbox may be юрий@почта.рф (RFC 6531)
    )
    controller.start()
    return controller
