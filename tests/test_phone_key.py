"""A phone is one contact however a clerk typed it (tryout W7): the key is its digits, a Russian number as +7 and ten
digits; migration 2110_phone_key merges the spellings already stored as 2001 merged those of an address."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mailservice import config, db
from mailservice.db import session_scope
from mailservice.inforequests import identity
from mailservice.inforequests.models import Client, ClientContact, MergeSuggestion
from mailservice.mail.addresses import phone_key
from tests.test_contact_case import FEB01, JAN10, JAN20, insert_old_contacts
from tests.test_identity import fresh_url  # noqa: F401  (a fixture)


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("+7 913 555-12-34", "+79135551234"),
        ("8 (913) 555-12-34", "+79135551234"),
        ("89135551234", "+79135551234"),
        ("7-913-555-12-34", "+79135551234"),
        ("913 555 12 34", "+79135551234"),  # a mobile number without its trunk prefix
        ("8 (383) 222-33-44", "+73832223344"),  # a Novosibirsk landline
        ("222-33-44", "2223344"),  # a local number stays as its digits
        ("+49 30 1234567", "+49301234567"),
        ("нет телефона", "нет телефона"),
    ],
)
def test_a_phone_is_compared_by_its_digits(typed: str, key: str) -> None:
    assert phone_key(typed) == key


def test_migration_merges_the_spellings_of_one_phone(fresh_url: str) -> None:  # noqa: F811
    settings = config.Settings(database_url=fresh_url)
    db.upgrade(settings, "2003_postal_address_format")  # phones keyed as typed
    contacts = [
        # One client, two spellings: the proven one stays.
        (1, 1, "+7 913 555-12-34", JAN10, None, None),
        (2, 1, "8 (913) 555-12-34", JAN20, FEB01, "in_person"),
        # Two clients, one number: the older contact stays with its client, the other client keeps its record.
        (3, 2, "8 383 222 33 44", JAN10, None, None),
        (4, 3, "+7 (383) 222-33-44", JAN20, None, None),
        (5, 3, "ivan@example.ru", JAN10, None, None),
    ]
    insert_old_contacts(fresh_url, (1, 2, 3), contacts, keyed=True)
    db.upgrade(settings)
    with session_scope(settings) as session:
        rows = {c.id: c for c in session.scalars(select(ClientContact))}
        assert sorted(rows) == [2, 3, 5]
        assert (rows[2].client_id, rows[2].value, rows[2].value_key, rows[2].proof) == (
            1, "8 (913) 555-12-34", "+79135551234", "in_person",
        )  # fmt: skip
        assert (rows[3].client_id, rows[3].value_key) == (2, "+73832223344")
        assert rows[5].value_key == "ivan@example.ru"
        # Nobody's records were merged: client 3 keeps its record and address, and staff are asked.
        assert session.get_one(Client, 3).merged_into_id is None
        [suggestion] = session.scalars(select(MergeSuggestion)).all()
        assert (suggestion.client_id, suggestion.other_id, suggestion.status) == (3, 2, "open")
        assert "+7 (383) 222-33-44" in suggestion.reason and "проверки личности" in suggestion.reason
        # The look-ups use the key from now on: any usual spelling finds the client.
        assert identity.contact_of(session, "phone", "+7 383 222-33-44") is rows[3]
        assert identity.contact_of(session, "phone", "89135551234") is rows[2]
    db.dispose_engines()
