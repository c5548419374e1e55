"""The sender's fast paths: links signed with a prepared key equal the plain ones; its own SMTP transactions."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope

from mailservice.config import Settings
from mailservice.mailings.subscribers import (
    UnsubscribeLinks,
    unsubscribe_mailto,
    unsubscribe_token,
    unsubscribe_url,
)
from mailservice.mailings.wire import Lane
from tests.conftest import make_env
from tests.servers import free_port


def test_campaign_links_equal_the_plain_ones() -> None:
    settings = Settings(
        environment="development",
        secret_keys=["new-key-" + "n" * 40, "old-key-" + "o" * 40],
        public_url="https://dizo.test/",
        mailing_unsubscribe_address="unsubscribe+list@dizo.test",
    )
    links = UnsubscribeLinks(settings)
    for subscription_id in (1, 42, 2**31 - 1):
        nonce = secrets.token_hex(8)
        token = unsubscribe_token(settings, subscription_id, nonce)
        assert links(subscription_id, nonce) == (unsubscribe_url(settings, token), unsubscribe_mailto(settings, token))
        assert links(subscription_id, nonce)[0] == f"https://dizo.test/unsubscribe/{token}"


def test_lane_reads_multiline_replies_and_refuses_line_breaks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sqlite_url: str
) -> None:
    """The sender's own SMTP transaction code against a real aiosmtpd: a multi-line refusal is one reply with the
    code of its last line, the message and the final dot go through, a CR/LF in an address never reaches the wire."""

    received: list[bytes] = []

    class Handler:
        async def handle_RCPT(
            self, server: object, session: object, envelope: Envelope, address: str, _o: list[str]
        ) -> str:
            if address.startswith("gone"):
                return "550-5.1.1 No such user\r\n550 5.1.1 Try another address"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server: object, session: object, envelope: Envelope) -> str:
            received.append(bytes(envelope.content or b""))
            return "250 2.0.0 Accepted"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings = make_env(monkeypatch, tmp_path, sqlite_url, smtp_port=str(port), smtp_host="127.0.0.1")

        async def talk() -> list[str]:
            lane = await Lane.open(settings)
            replies = [str(await lane.command(b"MAIL", b"FROM:<info@dizo.test>"))]
            replies.append(str(await lane.command(b"RCPT", b"TO:<gone@example.org>")))
            replies.append(str(await lane.command(b"RSET")))
            await lane.command(b"MAIL", b"FROM:<info@dizo.test>")
            await lane.command(b"RCPT", b"TO:<here@example.org>")
            replies.append(str(await lane.command(b"DATA")))
            lane.write(b"Subject: t\r\n\r\n..dot-stuffed line\r\n.\r\n")
            replies.append(str(await lane.reply()))
            with pytest.raises(ValueError):
                await lane.command(b"RCPT", b"TO:<x@example.org>\r\nRCPT TO:<y@example.org>")
            await lane.quit()
            assert not lane.is_connected
            return replies

        replies = asyncio.run(talk())
    finally:
        controller.stop()
    assert replies[0].startswith("250")
    assert replies[1] == "550 5.1.1 No such user\n5.1.1 Try another address"
    assert replies[2].startswith("250") and replies[3].startswith("354") and replies[4] == "250 2.0.0 Accepted"
    assert received == [b"Subject: t\r\n\r\n.dot-stuffed line\r\n"]
