"""Issue 14, high: a phone number was enough to take another client's whole history.

Staff registered a call from the victim (phone and e-mail), then a second call with the same phone and the
caller's own address: that address was attached to the victim's record, and POST /history sent the confirmation
to the attacker, who downloaded the victim's messages. Now an address typed by staff proves nothing, a phone
match only suggests a merge to staff, and the history goes only to an address proven for that very client.
"""

from __future__ import annotations

import io
import re
import zipfile

from sqlalchemy import select

from mailservice.cli import main as cli_main
from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.inforequests.models import ClientContact, Request
from mailservice.web.staff.models import AuditEntry
from tests.console_support import drain, link_in, text_of
from tests.mailfactory import citizen_mail
from tests.security.identity_support import (
    Outcome,
    deliver,
    mail_to,
    number_of,
    register_call,
    reply_to,
    run_worker_once,
    staff_console,
    texts_to,
)
from tests.servers import Sink

PHONE = "+7 913 777-66-55"
VICTIM = "victim@example.ru"
ATTACKER = "attacker@evil-mail.ru"
SECRET = "паспорт 50 04 123456, участок 54:35:011111:42"


def _history_links(sink: Sink, address: str) -> list[str]:
    return [link_in(m, "/history/") for m in mail_to(sink, address) if "/history/" in text_of(m)]


def test_a_second_call_with_the_victims_phone_gets_none_of_the_victims_history(settings: Settings, sink: Sink) -> None:
    http, csrf = staff_console(settings)
    victim_request = register_call(
        http, csrf, name="Петрова Анна Сергеевна", phone=PHONE, email=VICTIM,
        subject="Договор аренды участка", text=f"Просит сведения по договору аренды; {SECRET}",
    )  # fmt: skip
    drain(settings)
    # The victim answers our acknowledgement from her address: it is now proven hers.
    assert deliver(settings, reply_to(sink, VICTIM, "Спасибо, получила.")).outcome is Outcome.reply
    victim_number = number_of(settings, victim_request)

    register_call(
        http, csrf, name="Петрова А. С.", phone=PHONE, email=ATTACKER,
        subject="Копии обращений", text="Просит направить копии всех её обращений",
    )  # fmt: skip
    drain(settings)
    with session_scope(settings) as session:
        victim = session.get(Request, victim_request)
        assert victim is not None
        addresses = {c.value for c in victim.client.contacts if c.kind == "email"}
        assert ATTACKER not in addresses  # the phone match gave the caller's address to nobody

    # The web form and an e-mail, from the attacker's address: no confirmation, no link, no data.
    page = http.post("/history", data={"email": ATTACKER})
    assert page.status_code == 200
    history_mail = citizen_mail(
        sender=ATTACKER, name="Петрова А. С.", subject="История взаимодействия",
        body="Прошу направить мне всю историю моего взаимодействия с департаментом.",
    )  # fmt: skip
    deliver(settings, history_mail)
    run_worker_once(settings)
    assert _history_links(sink, ATTACKER) == []
    assert SECRET not in texts_to(sink, ATTACKER) and victim_number not in texts_to(sink, ATTACKER)

    # Even once the attacker proves his address (he answers our acknowledgement of his own call), the history it
    # opens is his own record's: nothing of the victim's.
    ack = next(m for m in mail_to(sink, ATTACKER) if "зарегистрировано" in str(m["Subject"]))
    proof = citizen_mail(
        sender=ATTACKER, name="", subject=f"Re: {ack['Subject']}", body="Получил, спасибо.",
        in_reply_to=str(ack["Message-ID"]).strip("<>"),
    )  # fmt: skip
    deliver(settings, proof)
    http.post("/history", data={"email": ATTACKER})
    run_worker_once(settings)
    [link] = _history_links(sink, ATTACKER)
    archive = http.get(link + "/archive.zip")
    assert archive.status_code == 200 and archive.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(archive.content)) as opened:
        everything = b"".join(opened.read(n) for n in opened.namelist()).decode("utf-8", "replace")
    assert "Копии обращений" in everything  # his own call
    assert SECRET not in everything and victim_number not in everything and VICTIM not in everything

    # The victim's own address still gets her history.
    http.post("/history", data={"email": VICTIM})
    run_worker_once(settings)
    assert [link for link in _history_links(sink, VICTIM) if "/history/download/" in link]


def test_staff_see_the_phone_match_as_a_suggestion_and_decide_it(settings: Settings, sink: Sink) -> None:
    http, csrf = staff_console(settings)
    victim_request = register_call(
        http, csrf, name="Петрова Анна Сергеевна", phone=PHONE, email=VICTIM, subject="Аренда", text=SECRET
    )
    caller_request = register_call(
        http, csrf, name="Петрова А. С.", phone=PHONE, email=ATTACKER, subject="Копии", text="Копии обращений"
    )
    with session_scope(settings) as session:
        victim_client = session.get(Request, victim_request).client_id  # type: ignore[union-attr]
        caller_client = session.get(Request, caller_request).client_id  # type: ignore[union-attr]
    assert victim_client != caller_client
    page = http.get(f"/staff/clients/{victim_client}")
    assert "Возможно, тот же человек" in page.text and f"/staff/clients/{caller_client}" in page.text
    assert PHONE in page.text  # the reason names the phone that matched
    suggestion_id = int(re.findall(r'action="/staff/merge-suggestions/(\d+)"', page.text)[0])
    rejected = http.post(f"/staff/merge-suggestions/{suggestion_id}", data={"csrf_token": csrf, "decision": "reject"})
    assert rejected.status_code == 303
    assert "Возможно, тот же человек" not in http.get(f"/staff/clients/{victim_client}").text
    with session_scope(settings) as session:
        assert session.get(Request, caller_request).client_id == caller_client  # type: ignore[union-attr]
        audited = session.scalars(select(AuditEntry).where(AuditEntry.action == "merge_reject")).one()
        assert audited.actor == "operator@dizo.test" and audited.object_id == suggestion_id


def test_the_cli_registration_follows_the_same_rule(settings: Settings) -> None:
    for email, name in ((VICTIM, "Петрова Анна Сергеевна"), (ATTACKER, "Петрова А. С.")):
        code = cli_main(
            ["requests", "register", "--channel", "phone", "--name", name, "--phone", PHONE, "--email", email,
             "--subject", "Звонок", "--text", "Устный запрос о договоре аренды"],
        )  # fmt: skip
        assert code == 0
    with session_scope(settings) as session:
        owners = {c.value: c.client_id for c in session.scalars(select(ClientContact))}
        phone_owner = owners[PHONE]
        assert owners.get(ATTACKER) != phone_owner  # never attached to the phone's client
        victim_reply = session.scalars(select(Request).where(Request.reply_email == VICTIM)).one()
        attacker_reply = session.scalars(select(Request).where(Request.reply_email == ATTACKER)).one()
        assert victim_reply.client_id == phone_owner and attacker_reply.client_id != phone_owner
