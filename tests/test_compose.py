"""Building outgoing mail: the fast header writer gives exactly what the compat32 folder gives."""

from __future__ import annotations

import random
import string
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from mailservice.config import Settings
from mailservice.mail.compose import WIRE_POLICY, build_message, serialise

HEADER_TEXT = st.text(alphabet=string.ascii_letters + string.digits + ' \t<>@.,;:"()[]=?-_/' + "ёЖщ", max_size=120)


def _slow(message: object) -> bytes:
    return message.as_bytes(policy=WIRE_POLICY)  # type: ignore[attr-defined]


@settings(max_examples=300, deadline=None)
@given(name=HEADER_TEXT, subject=HEADER_TEXT, reference=st.text(alphabet=string.ascii_letters + ".@-", max_size=90))
def test_serialise_matches_the_compat32_generator(name: str, subject: str, reference: str) -> None:
    message = build_message(
        Settings(from_address="info@dizo.test"),
        to="ivanov@example.ru",
        to_name=name,
        subject=subject,
        template="feedback_survey",
        context={
            "request": SimpleNamespace(number="2026-000042", client=SimpleNamespace(organisation="")),
            "addressee": name,
            "url": "https://example.test/x",
            "days": 30,
            "final": "answered",
        },
        in_reply_to=reference or None,
        references=[reference] * random.Random(len(reference)).randint(0, 25),
        extra_headers={"X-Long": "x" * len(subject) * 2, "X-Name": name},
        attachments=[("Справка.pdf", "application/pdf", b"%PDF-1.4 test")],
    )
    assert serialise(message) == _slow(message)
