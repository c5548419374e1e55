"""The console pages of the working group: the staff login and CSRF checks of the console issue, and the group
role of the member whose address is the user's."""

from __future__ import annotations

import io

from docx import Document
from sqlalchemy import select

from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.intake.pipeline import Source, process_raw
from mailservice.web.staff.auth import Role
from mailservice.web.staff.models import AuditEntry
from mailservice.workgroup import groups, meetings, opinions, signing
from tests.console_support import add_staff, login
from tests.servers import Sink
from tests.test_wg_helpers import ADDRESSES, Clock, client, drain, mail_to, make_group, reply, working_days_ahead


def test_console_for_the_secretary_and_the_chair(lite_settings: Settings, sink: Sink) -> None:
    settings = lite_settings
    clock = Clock(utcnow())
    people = make_group(settings, clock.now)
    with session_scope(settings) as session:
        group = groups.get_group(session, "kc")
        meeting = meetings.create_meeting(
            session,
            settings,
            group,
            starts_at=working_days_ahead(settings, clock.now, 7),
            form="in_person",
            now=clock.now,
            actor="t",
        )
        meeting_id = meeting.id
        meetings.add_item(session, meeting, title="О плане работ", proposal="Утвердить план", now=clock.now, actor="t")
    secretary_email, chair_email = ADDRESSES["secretary"][1], ADDRESSES["chair"][1]
    add_staff(settings, secretary_email, Role.operator)
    add_staff(settings, chair_email, Role.operator)
    add_staff(settings, "outsider@example.ru", Role.operator)
    page = f"/staff/wg/meetings/{meeting_id}"

    anonymous = client(settings, clock)
    assert anonymous.get(page).status_code == 303  # to the login form

    outsider = client(settings, clock)
    login(outsider, "outsider@example.ru")
    assert "не найден в их составе" in outsider.get("/staff/wg").text
    assert outsider.get(page).status_code == 403

    secretary = client(settings, clock)
    csrf = login(secretary, secretary_email)
    index = secretary.get("/staff/wg")
    assert index.status_code == 200 and f"/staff/wg/meetings/{meeting_id}" in index.text
    shown = secretary.get(page)
    assert shown.status_code == 200 and "Повестка передана председателю" in shown.text and "ожидается" in shown.text
    action = f"/staff/wg/meetings/{meeting_id}/action"
    assert secretary.post(action, data={"action": "submit"}).status_code == 403  # no CSRF token
    assert secretary.post(action, data={"action": "submit", "csrf_token": csrf}).status_code == 303
    assert secretary.post(action, data={"action": "approve", "csrf_token": csrf}).status_code == 403  # not the chair
    drain(settings)
    assert mail_to(sink, chair_email, "Повестка на утверждение")

    chair = client(settings, clock)
    chair_csrf = login(chair, chair_email)
    approved = chair.post(action, data={"action": "approve", "csrf_token": chair_csrf})
    assert approved.status_code == 303
    assert "Повестка утверждена." in chair.get(approved.headers["location"]).text
    # A refused step shows the reason on the page (the meeting has not started yet).
    refused = secretary.post(action, data={"action": "finish", "csrf_token": csrf})
    assert refused.status_code == 409 and "ещё не началось" in refused.text
    assert secretary.post(action, data={"action": "send_agenda", "csrf_token": csrf}).status_code == 303
    drain(settings)

    # A held reply is confirmed from the console.
    agenda = mail_to(sink, ADDRESSES["m3"][1], "Повестка: Заседание")[0]
    process_raw(
        settings,
        reply(
            agenda,
            sender=ADDRESSES["m3"][1],
            name=ADDRESSES["m3"][0],
            body="Не смогу быть. Моё мнение: план поддерживаю.",
        ),
        Source("file"),
    )
    shown = secretary.get(page)
    assert "письменное мнение" in shown.text and "план поддерживаю" in shown.text
    with session_scope(settings) as session:
        held_id = opinions.held_items(session)[0].id
    done = secretary.post(f"/staff/wg/replies/{held_id}", data={"decision": "confirm", "csrf_token": csrf})
    assert done.status_code == 303
    with session_scope(settings) as session:
        assert opinions.held_items(session) == []
        assert opinions.opinions_of(session, meetings.get_meeting(session, meeting_id))[0].member_id == people.m3

    # Attendance and votes from the console, then the minutes as a DOCX download.
    clock.now = working_days_ahead(settings, clock.now, 7, hour=11)
    for key in ("chair", "secretary", "m1"):
        response = secretary.post(
            f"/staff/wg/meetings/{meeting_id}/attendance",
            data={"member_id": str(getattr(people, key)), "mode": "in_person", "csrf_token": csrf},
        )
        assert response.status_code == 303
    vote = {"item": "1", "member_id": str(people.m1), "choice": "for", "csrf_token": csrf}
    assert secretary.post(f"/staff/wg/meetings/{meeting_id}/vote", data=vote).status_code == 303
    twice = secretary.post(f"/staff/wg/meetings/{meeting_id}/vote", data=vote)
    assert twice.status_code == 409 and "уже записан" in twice.text
    for step in ("finish", "draft"):
        assert secretary.post(action, data={"action": step, "csrf_token": csrf}).status_code == 303
    with session_scope(settings) as session:
        minutes = signing.latest_minutes(session, meetings.get_meeting(session, meeting_id))
        assert minutes is not None
        minutes_id = minutes.id
    download = secretary.get(f"/staff/wg/minutes/{minutes_id}.docx")
    assert download.status_code == 200
    assert any("О плане работ" in p.text for p in Document(io.BytesIO(download.content)).paragraphs)
    assert outsider.get(f"/staff/wg/minutes/{minutes_id}.docx").status_code == 403
    # README "What is logged": files downloaded (the one allowed download, not the refused one).
    with session_scope(settings) as session:
        logged = session.scalars(select(AuditEntry).where(AuditEntry.action == "wg_minutes_download")).all()
        assert [(a.object_type, a.object_id) for a in logged] == [("wg_minutes", minutes_id)]
