"""Instructions given by decisions (issue 18): from a meeting's decision through an instruction reported done by its
assignee's signed link to the next agenda's item; requests for more time, reminders, the console's list. Both
databases, the real SMTP sink, the application over HTTP."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from mailservice.blobs import BlobStore
from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.templating import ru_date
from mailservice.web.staff.auth import Role
from mailservice.web.staff.models import StaffUser
from mailservice.workdays import default_calendar
from mailservice.workgroup import groups, instructions, meetings, periodic, service, signing, voting
from mailservice.workgroup.minutes import docx_text
from mailservice.workgroup.models import WgAgendaItem, WgInstruction, WgMember
from mailservice.workgroup.service import WorkgroupError
from mailservice.workgroup.tally import Choice
from tests.console_support import add_staff, login
from tests.servers import Sink
from tests.test_wg_helpers import (
    ADDRESSES,
    Clock,
    People,
    client,
    drain,
    mail_to,
    make_group,
    text_of,
    working_days_ahead,
)

REPORT_LINK = re.compile(r"https?://\S+?(/wg/instruction/[A-Za-z0-9_.\-]+)")


def report_link(settings: Settings, sink: Sink, address: str, subject: str = "Поручение рабочей группы") -> str:
    messages = mail_to(sink, address, subject)
    assert messages, f"no '{subject}' e-mail to {address}"
    match = REPORT_LINK.search(text_of(messages[-1]))
    assert match, text_of(messages[-1])
    return match.group(1)


def held_meeting(settings: Settings, clock: Clock, people: People, *, title: str = "О плане работ") -> tuple[int, int]:
    """A meeting with one question adopted 3-0-1 by four of five members; returns (meeting id, item id)."""
    start = working_days_ahead(settings, clock.now, 7)
    with session_scope(settings) as session:
        group = groups.get_group(session, "kc")
        meeting = meetings.create_meeting(
            session, settings, group, starts_at=start, form="in_person", now=clock.now, actor="test"
        )
        item = meetings.add_item(session, meeting, title=title, proposal="Утвердить план.", now=clock.now, actor="t")
        meetings.submit_agenda(session, settings, meeting, now=clock.now, actor="t")
        chair = session.get(WgMember, people.chair)
        assert chair is not None
        meetings.approve_agenda(session, settings, meeting, chair, now=clock.now, how="cli")
        meetings.send_agenda(session, settings, meeting, now=clock.now, actor="t")
        meeting_id, item_id = meeting.id, item.id
    clock.now = start + dt.timedelta(minutes=30)
    with session_scope(settings) as session:
        meeting = meetings.get_meeting(session, meeting_id)
        item = meetings.items_of(session, meeting)[-1]
        for key, choice in (
            ("chair", Choice.for_),
            ("secretary", Choice.abstain),
            ("m1", Choice.for_),
            ("m2", Choice.for_),
        ):
            member = session.get(WgMember, getattr(people, key))
            assert member is not None
            voting.record_attendance(session, meeting, member, "in_person", now=clock.now, actor="t")
            voting.record_vote(session, settings, meeting, item, member, choice, now=clock.now, actor="t")
    return meeting_id, item_id


def sign(settings: Settings, clock: Clock, meeting_id: int) -> None:
    """Finish, draft, sign (the presiding chair) and so distribute the minutes."""
    with session_scope(settings) as session:
        meeting = meetings.get_meeting(session, meeting_id)
        if meeting.status in ("agenda_approved", "agenda_sent"):
            voting.finish_meeting(session, settings, meeting, now=clock.now, actor="t")
        signing.draft_minutes(session, settings, meeting, now=clock.now, actor="t")
        (signature,) = signing.request_signatures(session, settings, meeting, now=clock.now, actor="t")
        signing.sign_minutes(session, settings, signature, now=clock.now, method="cli")


def test_decision_to_instruction_reported_done_to_next_agenda(settings: Settings, sink: Sink) -> None:
    clock = Clock(utcnow())
    http = client(settings, clock)
    people = make_group(settings, clock.now)
    meeting_id, item_id = held_meeting(settings, clock, people)
    petrov_name, petrov = ADDRESSES["m1"]

    with session_scope(settings) as session:
        meeting = meetings.get_meeting(session, meeting_id)
        item = session.get(WgAgendaItem, item_id)
        assert item is not None
        m1 = session.get(WgMember, people.m1)
        given = instructions.give(
            session,
            settings,
            meeting,
            item,
            member=m1,
            text="Подготовить проект плана мероприятий на 2027 год.",
            expected_result="Проект плана направлен секретарю.",
            due_wd=10,
            now=clock.now,
            actor="test",
        )
        instruction_id = given.id
        # The term: 10 working days counted from the meeting day, the day itself not counted (RULES.md).
        day = service.meeting_day(settings, meeting)
        assert given.due == default_calendar(settings).add_working_days(day, 10)
        assert given.due > day + dt.timedelta(days=13)  # two weekends at least inside ten working days
        due = given.due
        # Nothing goes out before the minutes are signed.
        assert given.sent_at is None

    drain(settings)
    assert mail_to(sink, petrov, "Поручение") == []
    sign(settings, clock, meeting_id)
    with session_scope(settings) as session:
        minutes = signing.latest_minutes(session, meetings.get_meeting(session, meeting_id))
        assert minutes is not None and minutes.status == "signed"
        text = docx_text(BlobStore(settings.blob_dir).get(minutes.docx_sha256))
        assert f"Поручить: {petrov_name} — Подготовить проект плана мероприятий на 2027 год." in text
        assert f"Срок: в течение 10 рабочих дней (до {due:%d.%m.%Y})" in text
        assert session.get(WgInstruction, instruction_id).sent_at is not None  # type: ignore[union-attr]
    drain(settings)
    (letter,) = mail_to(sink, petrov, "Поручение рабочей группы")
    body = text_of(letter)
    assert "Подготовить проект плана мероприятий на 2027 год." in body and f"до {due:%d.%m.%Y}" in body
    assert petrov not in body.split("/wg/instruction/")[1]  # the link carries opaque ids, never the address
    link = report_link(settings, sink, petrov)

    # A GET shows the instruction and changes nothing; a tampered link changes nothing either.
    shown = http.get(link)
    assert shown.status_code == 200 and "Подготовить проект плана" in shown.text and "на исполнении" in shown.text
    assert http.get(link[:-3] + "xyz").status_code == 400
    assert http.post(link[:-3] + "xyz", data={"action": "done", "text": "x"}).status_code == 400
    with session_scope(settings) as session:
        assert session.get(WgInstruction, instruction_id).state == "assigned"  # type: ignore[union-attr]

    # The assignee reports it done with a comment and a file.
    clock.now += dt.timedelta(days=3)
    plan = "План мероприятий;2027\n".encode()
    done = http.post(
        link,
        data={"action": "done", "text": "Проект плана направлен секретарю 10 числа."},
        files=[("files", ("План 2027.csv", plan, "text/csv"))],
    )
    assert done.status_code == 200, done.text
    assert "передано секретарю" in done.text
    with session_scope(settings) as session:
        instruction = session.get(WgInstruction, instruction_id)
        assert instruction is not None and instruction.state == "done"
        (report,) = instructions.reports_of(session, instruction)
        assert report.kind == "done" and report.via == "link"
        assert report.files[0]["filename"] == "План 2027.csv"
        assert BlobStore(settings.blob_dir).get(report.files[0]["sha256"]) == plan
    again = http.post(link, data={"action": "done", "text": "ещё раз"})
    assert again.status_code == 409
    drain(settings)
    for officer in ("secretary", "chair"):
        (notice,) = mail_to(sink, ADDRESSES[officer][1], "Исполнено")
        assert "Проект плана направлен секретарю 10 числа." in text_of(notice)

    # The next meeting's agenda opens with the follow-up item listing the instruction's state.
    with session_scope(settings) as session:
        group = groups.get_group(session, "kc")
        second = meetings.create_meeting(
            session,
            settings,
            group,
            starts_at=working_days_ahead(settings, clock.now, 7),
            form="in_person",
            now=clock.now,
            actor="t",
        )
        meetings.add_item(session, second, title="О графике приёма", now=clock.now, actor="t")
        meetings.submit_agenda(session, settings, second, now=clock.now, actor="t")
        first, other = meetings.items_of(session, second)
        assert first.title == "Об исполнении ранее данных поручений" and other.title == "О графике приёма"
        assert "Подготовить проект плана мероприятий на 2027 год." in first.details
        assert f"{petrov_name}; срок до {due:%d.%m.%Y}; исполнено" in first.details
        assert "Проект плана направлен секретарю 10 числа." in first.details
        chair = session.get(WgMember, people.chair)
        assert chair is not None
        meetings.approve_agenda(session, settings, second, chair, now=clock.now, how="cli")
        meetings.send_agenda(session, settings, second, now=clock.now, actor="t")
        second_id = second.id
    drain(settings)
    agenda = [m for m in mail_to(sink, ADDRESSES["m2"][1], "Повестка: Заседание") if "№ 2" in str(m["Subject"])]
    assert agenda, "the second agenda did not reach a member"
    agenda_text = text_of(agenda[0])
    assert "1. Об исполнении ранее данных поручений" in agenda_text
    assert "исполнено" in agenda_text and "Подготовить проект плана" in agenda_text
    with session_scope(settings) as session:
        # A third meeting does not list it again: it was reported at the second.
        assert meetings.get_meeting(session, second_id).number == 2
        third = meetings.create_meeting(
            session,
            settings,
            groups.get_group(session, "kc"),
            starts_at=working_days_ahead(settings, clock.now, 30),
            form="in_person",
            now=clock.now,
            actor="t",
        )
        assert instructions.followup_lines(session, settings, third, clock.now) == []


def test_more_time_reminders_overdue_and_the_console_list(settings: Settings, sink: Sink) -> None:
    clock = Clock(utcnow())
    http = client(settings, clock)
    people = make_group(settings, clock.now)
    meeting_id, item_id = held_meeting(settings, clock, people)
    add_staff(settings, "analyst@dizo.test", Role.operator, name="Аналитик Анна")
    with session_scope(settings) as session:
        meeting = meetings.get_meeting(session, meeting_id)
        item = session.get(WgAgendaItem, item_id)
        assert item is not None
        analyst = session.scalar(select(StaffUser).where(StaffUser.email == "analyst@dizo.test"))
        with pytest.raises(WorkgroupError, match="одного исполнителя"):
            instructions.give(
                session, settings, meeting, item, text="x", expected_result="y", due_wd=3, now=clock.now, actor="t"
            )
        with pytest.raises(WorkgroupError, match="позже дня заседания"):
            instructions.give(
                session,
                settings,
                meeting,
                item,
                staff=analyst,
                text="x",
                expected_result="y",
                due=service.meeting_day(settings, meeting),
                now=clock.now,
                actor="t",
            )
        given = instructions.give(
            session,
            settings,
            meeting,
            item,
            staff=analyst,
            text="Собрать отзывы заявителей за квартал.",
            expected_result="Сводка отзывов.",
            due_wd=3,
            now=clock.now,
            actor="t",
        )
        instruction_id, due = given.id, given.due
    sign(settings, clock, meeting_id)
    drain(settings)
    link = report_link(settings, sink, "analyst@dizo.test")

    # Asking for more time: a reason and a later date; the chair decides in the console.
    bad = http.post(link, data={"action": "extension", "text": "Нужны данные", "proposed_due": due.isoformat()})
    assert bad.status_code == 400 and "позже действующего" in bad.text
    later = due + dt.timedelta(days=14)
    asked = http.post(link, data={"action": "extension", "text": "Ждём данные МФЦ", "proposed_due": later.isoformat()})
    assert asked.status_code == 200 and "направлена" in asked.text
    drain(settings)
    assert "Ждём данные МФЦ" in text_of(mail_to(sink, ADDRESSES["chair"][1], "Просьба о продлении срока")[0])

    chair_email = ADDRESSES["chair"][1]
    add_staff(settings, chair_email, Role.operator)
    chair = client(settings, clock)
    csrf = login(chair, chair_email)
    listing = chair.get("/staff/wg/instructions?state=extension_requested")
    assert listing.status_code == 200 and "Собрать отзывы заявителей" in listing.text
    assert (
        chair.post(f"/staff/wg/instructions/{instruction_id}/extension", data={"decision": "approve"}).status_code
        == 403
    )
    decided = chair.post(
        f"/staff/wg/instructions/{instruction_id}/extension", data={"decision": "approve", "csrf_token": csrf}
    )
    assert decided.status_code == 303
    with session_scope(settings) as session:
        instruction = session.get(WgInstruction, instruction_id)
        assert instruction is not None
        assert (instruction.state, instruction.due, instruction.original_due) == ("assigned", later, due)
    drain(settings)
    assert f"продлён до {ru_date(later)}" in " ".join(
        text_of(m) for m in mail_to(sink, "analyst@dizo.test", "Срок поручения продлён")
    )
    # An outsider (not of the group) sees no instruction and may decide nothing.
    add_staff(settings, "outsider@dizo.test", Role.operator)
    outsider = client(settings, clock)
    outsider_csrf = login(outsider, "outsider@dizo.test")
    assert "Собрать отзывы" not in outsider.get("/staff/wg/instructions").text
    refused = outsider.post(
        f"/staff/wg/instructions/{instruction_id}/cancel", data={"reason": "x", "csrf_token": outsider_csrf}
    )
    assert refused.status_code == 403

    # Reminders: one before the term, once after it (with a copy to the secretary); a second pass sends nothing.
    calendar = default_calendar(settings)
    clock.now = service.local_start(settings, calendar.add_working_days(later, -1), dt.time(9, 0))
    with session_scope(settings) as session:
        assert instructions.remind(session, settings, now=clock.now) == 1
        assert instructions.remind(session, settings, now=clock.now) == 0
    clock.now = service.local_start(settings, later + dt.timedelta(days=1), dt.time(9, 0))
    with session_scope(settings) as session:
        assert periodic.tick(session, settings, now=clock.now).instruction_reminders == 2
        assert instructions.remind(session, settings, now=clock.now) == 0
    drain(settings)
    assert mail_to(sink, "analyst@dizo.test", "Напоминание о сроке поручения")
    assert mail_to(sink, "analyst@dizo.test", "Срок поручения истёк")
    assert "Отчёт об исполнении не поступал" in text_of(
        mail_to(sink, ADDRESSES["secretary"][1], "Срок поручения истёк")[0]
    )

    # The console's filters: overdue shows it, done does not; the assignee filter matches part of the name.
    overdue = chair.get("/staff/wg/instructions?overdue=1")
    assert "Собрать отзывы" in overdue.text and "просрочено" in overdue.text
    assert "Собрать отзывы" not in chair.get("/staff/wg/instructions?state=done").text
    assert "Собрать отзывы" in chair.get("/staff/wg/instructions?assignee=аналитик").text
    assert "Собрать отзывы" not in chair.get("/staff/wg/instructions?assignee=петров").text
    assert "Собрать отзывы" not in chair.get(f"/staff/wg/instructions?meeting={meeting_id + 100}").text
