"""The sender's fast paths give exactly what the plain functions give: links signed with a prepared key."""

from __future__ import annotations

import secrets

from mailservice.config import Settings
from mailservice.mailings.subscribers import (
    UnsubscribeLinks,
    unsubscribe_mailto,
    unsubscribe_token,
    unsubscribe_url,
)


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
