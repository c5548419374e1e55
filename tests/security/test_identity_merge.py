"""Tryout F1 (high): merging two client records handed the absorbed record's proven addresses to the other client.

An operator typed the attacker's record number into «Объединить записи» (or clicked the phone-match suggestion) and
the attacker's proven address became a proven address of the victim: the victim's history, the `[№]` tag and
answers then went to the attacker. README, "Security model": records are merged only after an identity check in
person (the document's type, who, when), and the absorbed record's addresses come over unproven.
"""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.inforequests import identity
from mailservice.inforequests.models import Client, ClientContact, IdentityCheck, MergeSuggestion, Proof, Request
from tests.console_support import mail_request
from tests.security.identity_support import OPERATOR, staff_console

VICTIM = "victim@example.ru"
ATTACKER = "attacker7@evil.example"


def _proven_clients(settings: Settings) -> tuple[int, int]:
    """The victim and the attacker, each with an address proven by answering our message."""
    ids = []
    for sender, name in ((VICTIM, "Виктория Жертва"), (ATTACKER, "Виктория Жертва")):
        request_id = mail_request(settings, sender=sender, name=name)
        with session_scope(settings) as session:
            client = session.get(Request, request_id).client  # type: ignore[union-attr]
            identity.prove(session, client, sender, Proof.reply, utcnow())
            ids.append(client.id)
    return ids[0], ids[1]


def _contacts(settings: Settings, client_id: int) -> dict[str, str | None]:
    with session_scope(settings) as session:
        rows = session.scalars(select(ClientContact).where(ClientContact.client_id == client_id))
        return {c.value: c.proof for c in rows}


def _merged_into(settings: Settings, client_id: int) -> int | None:
    with session_scope(settings) as session:
        return session.get(Client, client_id).merged_into_id  # type: ignore[union-attr]


def _merge(http: TestClient, csrf: str, victim: int, attacker: int, **extra: str) -> int:
    data = {"csrf_token": csrf, "other_id": str(attacker), **extra}
    response = http.post(f"/staff/clients/{victim}/merge", data=data)
    assert response.status_code == 303 or "только после проверки личности" in response.text
    return response.status_code


def test_a_typed_record_number_alone_merges_nothing(settings: Settings) -> None:
    victim, attacker = _proven_clients(settings)
    http, csrf = staff_console(settings)
    assert _merge(http, csrf, victim, attacker) == 400
    assert _merge(http, csrf, victim, attacker, document="library_card") == 400
    assert _merged_into(settings, attacker) is None
    assert _contacts(settings, victim) == {VICTIM: "reply"}
    assert "Документ, предъявленный лично" in http.get(f"/staff/clients/{victim}").text


def test_a_merge_after_a_check_brings_the_other_records_addresses_unproven(settings: Settings) -> None:
    victim, attacker = _proven_clients(settings)
    http, csrf = staff_console(settings)
    assert _merge(http, csrf, victim, attacker, document="passport_rf") == 303
    assert _merged_into(settings, attacker) == victim
    assert _contacts(settings, victim) == {VICTIM: "reply", ATTACKER: None}  # came over, proves nothing
    with session_scope(settings) as session:
        check = session.scalars(select(IdentityCheck)).one()
        assert (check.client_id, check.document, check.checked_by) == (victim, "passport_rf", OPERATOR)
        assert check.checked_at is not None


def test_an_address_named_at_the_merge_check_is_proven_in_person(settings: Settings) -> None:
    victim, attacker = _proven_clients(settings)
    http, csrf = staff_console(settings)
    assert _merge(http, csrf, victim, attacker, document="passport_rf", email=ATTACKER) == 303
    assert _contacts(settings, victim) == {VICTIM: "reply", ATTACKER: "in_person"}


def test_a_click_on_the_suggestion_is_not_enough(settings: Settings) -> None:
    victim, attacker = _proven_clients(settings)
    with session_scope(settings) as session:
        suggestion = MergeSuggestion(client_id=attacker, other_id=victim, reason="Тот же телефон", status="open")
        session.add(suggestion)
        session.flush()
        suggestion_id = suggestion.id
    http, csrf = staff_console(settings)
    page = http.get(f"/staff/clients/{victim}")
    assert re.search(rf'action="/staff/merge-suggestions/{suggestion_id}"', page.text)
    click = http.post(f"/staff/merge-suggestions/{suggestion_id}", data={"csrf_token": csrf, "decision": "accept"})
    assert click.status_code == 400 and "только после проверки личности" in click.text
    assert _merged_into(settings, attacker) is None
    with session_scope(settings) as session:
        assert session.get(MergeSuggestion, suggestion_id).status == "open"  # type: ignore[union-attr]
    checked = http.post(
        f"/staff/merge-suggestions/{suggestion_id}",
        data={"csrf_token": csrf, "decision": "accept", "document": "military_id"},
    )
    assert checked.status_code == 303
    assert _merged_into(settings, attacker) == victim
    assert _contacts(settings, victim) == {VICTIM: "reply", ATTACKER: None}
