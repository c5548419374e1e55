"""Bad input and the rules that refuse: replies from non-members, votes twice, stale and tampered links, a meeting
moved after the agenda went out, the federal audio rule, monthly meetings, missed deadlines."""

from __future__ import annotations

import datetime as dt

import icalendar
import pytest
from sqlalchemy import func, select

from mailservice.cli import main
from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.inforequests.models import Request
from mailservice.intake.models import Outcome
from mailservice.intake.pipeline import Source, process_raw
from mailservice.workdays import default_calendar
from mailservice.workgroup import groups, meetings, opinions, periodic, service, signing, voting
from mailservice.workgroup.models import WgInboxItem, WgLogEntry, WgMember, WgVote
from mailservice.workgroup.service import WorkgroupError
from mailservice.workgroup.tally import Choice
from tests.servers import Sink
from tests.test_wg_helpers import (
    ADDRESSES,
    Clock,
    People,
    attachments,
    client,
    drain,
    links,
    mail_to,
    make_group,
    reply,
    working_days_ahead,
)


def _meeting(
    settings: Settings, people: People, now: dt.datetime, *, days: int = 7, form: str = "in_person", send: bool = True
) -> int:
    """A meeting ``days`` working days ahead with two questions, approved and (``send``) sent."""
    with session_scope(settings) as session:
        group = groups.get_group(session, str(people.group_id))
        start = working_days_ahead(settings, now, days)
        meeting = meetings.create_meeting(session, settings, group, starts_at=start, form=form, now=now, actor="t")
        meetings.add_item(session, meeting, title="Первый вопрос", proposal="Решение 1", now=now, actor="t")
        meetings.add_item(session, meeting, title="Второй вопрос", proposal="Решение 2", now=now, actor="t")
        meetings.submit_agenda(session, settings, meeting, now=now, actor="t")
        chair = session.get(WgMember, people.chair)
        assert chair is not None
        meetings.approve_agenda(session, settings, meeting, chair, now=now, how="t")
        if send and form != "absentee":
            meetings.send_agenda(session, settings, meeting, now=now, actor="t")
        return meeting.id


def _members(settings: Settings) -> dict[int, WgMember]:
    with session_scope(settings) as session:
        return {m.id: m for m in session.scalars(select(WgMember))}


def test_reply_from_a_non_member_is_held_never_lost(settings: Settings, sink: Sink) -> None:
    now = utcnow()
    people = make_group(settings, now)
    meeting_id = _meeting(settings, people, now)
    drain(settings)
    agenda = mail_to(sink, ADDRESSES["m1"][1], "Повестка")[0]
    # Someone outside the group (say, the member's colleague, or a forger) answers the agenda.
    stranger = reply(agenda, sender="stranger@example.ru", name="Посторонний", body="1. против\n2. против")
    result = process_raw(settings, stranger, Source("file"))
    assert result.outcome is Outcome.routed and "non-member" in result.reason
    with session_scope(settings) as session:
        assert session.scalar(select(func.count(Request.id))) == 0  # not a citizen's request either
        held = session.scalars(select(WgInboxItem)).one()
        assert (held.member_id, held.status, held.meeting_id) == (None, "held", meeting_id)
        assert "не входит в состав" in held.note and "против" in held.text
        with pytest.raises(WorkgroupError, match="не является членом"):
            opinions.confirm_reply(session, settings, held, now=now, actor="t")
        assert held.status == "held"  # still there for the secretary
        # The secretary knows it is m1 writing from another address and attributes it.
        member = session.get(WgMember, people.m1)
        assert member is not None
        done = opinions.confirm_reply(
            session, settings, held, now=now, actor="t", kind="written_opinion", member=member
        )
        assert "приобщено" in done
        assert opinions.opinions_of(session, meetings.get_meeting(session, meeting_id))[0].member_id == people.m1
        with pytest.raises(WorkgroupError, match="уже разобрано"):
            opinions.reject_reply(session, held, note="", now=now, actor="t")


def test_a_vote_recorded_twice(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    now = utcnow()
    people = make_group(settings, now)
    meeting_id = _meeting(settings, people, now, days=1)
    with session_scope(settings) as session:
        meeting = meetings.get_meeting(session, meeting_id)
        member = session.get(WgMember, people.m1)
        assert member is not None
        voting.record_attendance(session, meeting, member, "in_person", now=now, actor="t")
        item = meetings.item_by_number(session, meeting, 1)
        voting.record_vote(session, settings, meeting, item, member, Choice.for_, now=now, actor="t")
        with pytest.raises(WorkgroupError, match="уже записан"):
            voting.record_vote(session, settings, meeting, item, member, Choice.against, now=now, actor="t")
    # The same through the CLI: one line, exit 1, nothing changed.
    args = ["wg", "vote", str(meeting_id), "--item", "1", "--member", ADDRESSES["m1"][1], "--choice", "against"]
    assert main(args) == 1
    assert "уже записан" in capsys.readouterr().err
    with session_scope(settings) as session:
        assert [v.choice for v in session.scalars(select(WgVote))] == ["for"]
    # A deliberate correction keeps the old vote in the log.
    assert main([*args, "--replace"]) == 0
    with session_scope(settings) as session:
        assert [v.choice for v in session.scalars(select(WgVote))] == ["against"]
        corrected = session.scalars(select(WgLogEntry).where(WgLogEntry.action == "vote_corrected")).one()
        assert (corrected.details["old"], corrected.details["new"]) == ("for", "against")


def _invitation(message: object) -> icalendar.Event:
    files = attachments(message)  # type: ignore[arg-type]
    ics = next(data for name, (_ctype, data) in files.items() if name.endswith(".ics"))
    calendar = icalendar.Calendar.from_ical(ics)
    event = next(iter(calendar.walk("VEVENT")))
    assert isinstance(event, icalendar.Event)
    event["X-TEST-METHOD"] = str(calendar["METHOD"])
    return event


def test_meeting_moved_after_the_agenda_was_sent(settings: Settings, sink: Sink) -> None:
    now = utcnow()
    people = make_group(settings, now)
    meeting_id = _meeting(settings, people, now, days=8)
    drain(settings)
    first = _invitation(mail_to(sink, ADDRESSES["m2"][1], "Повестка")[0])
    with session_scope(settings) as session:
        meeting = meetings.get_meeting(session, meeting_id)
        before = {d.key: d.due for d in meetings.deadlines_of(session, meeting)}
        later = working_days_ahead(settings, now, 10, hour=15)
        meetings.move_meeting(session, settings, meeting, starts_at=later, place="каб. 202", now=now, actor="t")
        after = {d.key: d for d in meetings.deadlines_of(session, meeting)}
        calendar = default_calendar(settings)
        new_day = service.meeting_day(settings, meeting)
        assert after["agenda_send_by"].due == calendar.add_working_days(new_day, -3) != before["agenda_send_by"]
        assert after["minutes_by"].due == calendar.add_working_days(new_day, 5)
        assert after["agenda_send_by"].status == "kept"  # sent earlier than the new term
    drain(settings)
    # Everyone who had the invitation gets the update: same UID, next SEQUENCE, new time in the local zone.
    for key in ("chair", "secretary", "m1", "m2", "m3"):
        assert len(mail_to(sink, ADDRESSES[key][1], "Изменение")) == 1, key
    update = _invitation(mail_to(sink, ADDRESSES["m2"][1], "Изменение")[0])
    assert str(update["UID"]) == str(first["UID"])
    assert (first.decoded("SEQUENCE"), update.decoded("SEQUENCE")) == (0, 1)
    assert update["X-TEST-METHOD"] == "REQUEST"
    assert update.decoded("DTSTART") == later.astimezone(settings.tz) and str(update["LOCATION"]) == "каб. 202"

    # Moved to tomorrow: the agenda went out later than "3 working days before" would now allow: missed, shown.
    with session_scope(settings) as session:
        meeting = meetings.get_meeting(session, meeting_id)
        meetings.move_meeting(
            session, settings, meeting, starts_at=working_days_ahead(settings, now, 1), now=now, actor="t"
        )
        assert {d.key: d.status for d in meetings.deadlines_of(session, meeting)}["agenda_send_by"] == "missed"
        meetings.cancel_meeting(session, settings, meeting, reason="нет кворума", now=now, actor="t")
    drain(settings)
    cancel = _invitation(mail_to(sink, ADDRESSES["m2"][1], "Отмена")[0])
    assert (str(cancel["UID"]), cancel.decoded("SEQUENCE"), cancel["X-TEST-METHOD"]) == (str(first["UID"]), 3, "CANCEL")
    assert str(cancel["STATUS"]) == "CANCELLED"


def test_stale_and_tampered_links(settings: Settings, sink: Sink) -> None:
    clock = Clock(utcnow())
    http = client(settings, clock)
    people = make_group(settings, clock.now)
    with session_scope(settings) as session:
        group = groups.get_group(session, "kc")
        meeting = meetings.create_meeting(
            session,
            settings,
            group,
            starts_at=working_days_ahead(settings, clock.now, 1),
            form="in_person",
            now=clock.now,
            actor="t",
        )
        meeting_id = meeting.id
        meetings.add_item(session, meeting, title="Вопрос", now=clock.now, actor="t")
        meetings.submit_agenda(session, settings, meeting, now=clock.now, actor="t")
    drain(settings)
    approve = links(mail_to(sink, ADDRESSES["chair"][1], "Повестка на утверждение")[0], "approve")[0]
    assert http.get(approve[:-4] + "xxxx").status_code == 400
    assert http.get("/wg/approve/not-a-token").status_code == 400
    with session_scope(settings) as session:  # the agenda changes after the link went out
        meetings.add_item(
            session, meetings.get_meeting(session, meeting_id), title="Ещё вопрос", now=clock.now, actor="t"
        )
    stale = http.post(approve)
    assert stale.status_code == 410 and "изменена" in stale.text
    with session_scope(settings) as session:
        assert meetings.get_meeting(session, meeting_id).agenda_approved_at is None
        # A link of one purpose never passes for another (a salt per purpose).
        meetings.submit_agenda(session, settings, meetings.get_meeting(session, meeting_id), now=clock.now, actor="t")
    drain(settings)
    fresh = links(mail_to(sink, ADDRESSES["chair"][1], "Повестка на утверждение")[-1], "approve")[0]
    assert http.get(fresh.replace("/approve/", "/sign/")).status_code == 400
    assert http.post(fresh).status_code == 200

    # Minutes: a signing link for version 1 stops working when version 2 is drafted.
    with session_scope(settings) as session:
        meeting = meetings.get_meeting(session, meeting_id)
        meetings.send_agenda(session, settings, meeting, now=clock.now, actor="t")
        chair = session.get(WgMember, people.chair)
        assert chair is not None
        voting.record_attendance(session, meeting, chair, "in_person", now=clock.now, actor="t")
        clock.now = meeting.starts_at + dt.timedelta(hours=1)
        voting.finish_meeting(session, settings, meeting, now=clock.now, actor="t")
        signing.draft_minutes(session, settings, meeting, now=clock.now, actor="t")
        signing.request_signatures(session, settings, meeting, now=clock.now, actor="t")
    drain(settings)
    old_sign = links(mail_to(sink, ADDRESSES["chair"][1], "Протокол на подписание")[0], "sign")[0]
    with session_scope(settings) as session:
        meeting = meetings.get_meeting(session, meeting_id)
        item = meetings.item_by_number(session, meeting, 1)
        meetings.record_item_outcome(
            session, meeting, item, heard="Исправлено", decision=None, now=clock.now, actor="t"
        )
        assert signing.draft_minutes(session, settings, meeting, now=clock.now, actor="t").version == 2
    refused = http.post(old_sign)
    assert refused.status_code == 410 and "заменён" in refused.text
    with session_scope(settings) as session:
        meeting = meetings.get_meeting(session, meeting_id)
        assert meeting.status == "minutes_draft" and meeting.signed_on is None


def test_email_ballot_after_the_close_is_kept_but_not_counted(settings: Settings, sink: Sink) -> None:
    now = utcnow()
    people = make_group(settings, now)
    closes = now + dt.timedelta(days=2)
    with session_scope(settings) as session:
        group = groups.get_group(session, "kc")
        poll = meetings.create_meeting(session, settings, group, starts_at=closes, form="absentee", now=now, actor="t")
        poll_id = poll.id
        meetings.add_item(session, poll, title="Вопрос опроса", now=now, actor="t")
        meetings.submit_agenda(session, settings, poll, now=now, actor="t")
        chair = session.get(WgMember, people.chair)
        assert chair is not None
        meetings.approve_agenda(session, settings, poll, chair, now=now, how="t")
        voting.open_poll(session, settings, poll, now=now, actor="t")
    drain(settings)
    ballot = mail_to(sink, ADDRESSES["m3"][1], "Бюллетень")[0]
    late = closes + dt.timedelta(hours=1)
    with session_scope(settings) as session:
        periodic.tick(session, settings, now=late)
    answer = reply(ballot, sender=ADDRESSES["m3"][1], name=ADDRESSES["m3"][0], body="1. за")
    assert process_raw(settings, answer, Source("file"), now=late).outcome is Outcome.routed
    # A ballot for m3 answered from m1's address is held with a warning, never counted as m3's or m1's.
    crossed = reply(ballot, sender=ADDRESSES["m1"][1], name=ADDRESSES["m1"][0], body="1. против")
    process_raw(settings, crossed, Source("file"), now=late)
    with session_scope(settings) as session:
        held = opinions.held_items(session)
        assert [h.kind for h in held] == ["ballot", "ballot"]
        assert "другого члена" in held[1].note
        with pytest.raises(WorkgroupError, match=r"после окончания|не идёт"):
            opinions.confirm_reply(session, settings, held[0], now=late, actor="t")
        assert held[0].status == "held"
        assert voting.tallies(session, meetings.get_meeting(session, poll_id))[1] == 0


def test_federal_remote_meeting_needs_its_audio(settings: Settings) -> None:
    now = utcnow()
    people = make_group(settings, now, profile="federal")
    meeting_id = _meeting(settings, people, now, days=1, form="remote")
    members = _members(settings)
    with session_scope(settings) as session:
        meeting = meetings.get_meeting(session, meeting_id)
        for key in ("chair", "secretary", "m1"):
            voting.record_attendance(session, meeting, members[getattr(people, key)], "remote", now=now, actor="t")
        item = meetings.item_by_number(session, meeting, 1)
        voting.record_vote(session, settings, meeting, item, members[people.m1], Choice.for_, now=now, actor="t")
        assert voting.votes_on(session, item)[0].method == "remote"
        later = meeting.starts_at + dt.timedelta(hours=2)
        with pytest.raises(WorkgroupError, match="без аудиозаписи"):
            voting.finish_meeting(session, settings, meeting, now=later, actor="t")
        assert meeting.status == "agenda_sent"
        voting.attach_audio(
            session,
            settings,
            meeting,
            filename="zasedanie.mp3",
            content_type="audio/mpeg",
            data=b"ID3 audio",
            now=later,
            actor="t",
        )
        voting.finish_meeting(session, settings, meeting, now=later, actor="t")
        assert meeting.status == "held"
        minutes = signing.draft_minutes(session, settings, meeting, now=later, actor="t")
        assert "zasedanie.mp3" in minutes.html and "устного согласия" in minutes.html  # seed 002 p. 12, 14
    # Astrakhan has no such rule: a remote meeting finishes without audio.
    other = make_group(settings, now, profile="astrakhan", slug="ast")
    other_id = _meeting(settings, other, now, days=1, form="remote")
    with session_scope(settings) as session:
        meeting = meetings.get_meeting(session, other_id)
        chair = session.get(WgMember, other.chair)
        assert chair is not None
        voting.record_attendance(session, meeting, chair, "remote", now=now, actor="t")
        voting.finish_meeting(session, settings, meeting, now=meeting.starts_at + dt.timedelta(hours=1), actor="t")
        assert meeting.status == "held"


def test_forms_the_regulation_does_not_allow(settings: Settings) -> None:
    now = utcnow()
    make_group(settings, now, profile="federal")
    with session_scope(settings) as session:
        group = groups.get_group(session, "kc")
        with pytest.raises(WorkgroupError, match="не предусматривает"):
            meetings.create_meeting(
                session, settings, group, starts_at=now + dt.timedelta(days=5), form="absentee", now=now, actor="t"
            )


def test_monthly_meetings_warning(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    created = dt.datetime(2026, 11, 10, 5, 0, tzinfo=dt.UTC)
    make_group(settings, created, profile="novosibirsk")
    make_group(settings, created, profile="astrakhan", slug="ast")  # meets as needed: never warned
    with session_scope(settings) as session:
        group = groups.get_group(session, "kc")
        warnings = periodic.monthly_warnings(session, settings, group, now=created)
        assert len(warnings) == 2
        assert "на ноябрь 2026 г. не запланировано" in warnings[0]
        assert "на декабрь 2026 г. не запланировано" in warnings[1]
        assert all("не реже раза в месяц" in w for w in warnings)
        assert periodic.monthly_warnings(session, settings, groups.get_group(session, "ast"), now=created) == []
        start = service.local_start(settings, dt.date(2026, 11, 20), dt.time(10))
        meetings.create_meeting(session, settings, group, starts_at=start, form="in_person", now=created, actor="t")
        warnings = periodic.monthly_warnings(session, settings, group, now=created)
        assert len(warnings) == 1 and "декабрь 2026 г. не запланировано" in warnings[0]
        # In January: December passed without a meeting, January and February have none planned.
        january = dt.datetime(2027, 1, 12, 5, 0, tzinfo=dt.UTC)
        warnings = periodic.monthly_warnings(session, settings, group, now=january)
        assert len(warnings) == 3
        assert "декабрь 2026 г. не проведено" in warnings[0] and "январь 2027 г. не запланировано" in warnings[1]
        # A cancelled meeting does not count.
        later = meetings.create_meeting(
            session,
            settings,
            group,
            starts_at=start + dt.timedelta(days=30),
            form="in_person",
            now=created,
            actor="t",
        )
        assert len(periodic.monthly_warnings(session, settings, group, now=created)) == 0
        meetings.cancel_meeting(session, settings, later, reason="", now=created, actor="t")
        assert len(periodic.monthly_warnings(session, settings, group, now=created)) == 1
    assert main(["wg", "tick"]) == 0
    assert "не реже раза в месяц" in capsys.readouterr().err


def test_missed_deadlines_are_recorded_reminded_and_shown(
    settings: Settings, sink: Sink, capsys: pytest.CaptureFixture[str]
) -> None:
    now = utcnow()
    people = make_group(settings, now)
    with session_scope(settings) as session:
        group = groups.get_group(session, str(people.group_id))
        meeting = meetings.create_meeting(
            session,
            settings,
            group,
            starts_at=working_days_ahead(settings, now, 8),
            form="in_person",
            now=now,
            actor="t",
        )
        meeting_id = meeting.id
        due = {d.key: d.due for d in meetings.deadlines_of(session, meeting)}
    calendar = default_calendar(settings)
    # The day before the agenda is due with the chair: a reminder to the secretary and the chair, once.
    eve = service.local_start(settings, calendar.add_working_days(due["agenda_to_chair_by"], -1), dt.time(9))
    for _ in range(2):
        with session_scope(settings) as session:
            periodic.tick(session, settings, now=eve)
    drain(settings)
    assert len(mail_to(sink, ADDRESSES["secretary"][1], "Напоминание о сроке")) == 1
    assert len(mail_to(sink, ADDRESSES["chair"][1], "Напоминание о сроке")) == 1
    assert not mail_to(sink, ADDRESSES["m1"][1], "Напоминание")
    # Past the term with nothing done: missed, recorded once, reported once, and shown.
    after = service.local_start(settings, calendar.add_working_days(due["agenda_to_chair_by"], 1), dt.time(9))
    for _ in range(2):
        with session_scope(settings) as session:
            report = periodic.tick(session, settings, now=after)
    drain(settings)
    assert len(mail_to(sink, ADDRESSES["secretary"][1], "Срок пропущен")) == 1
    with session_scope(settings) as session:
        rows = {d.key: d for d in meetings.deadlines_of(session, meetings.get_meeting(session, meeting_id))}
        assert rows["agenda_to_chair_by"].status == "missed" and rows["agenda_to_chair_by"].missed_at is not None
        assert report.missed == 0  # the second pass found it already recorded
        # Doing it late keeps it missed (never hidden), with the day it was done.
        meetings.add_item(session, meetings.get_meeting(session, meeting_id), title="Вопрос", now=after, actor="t")
        meetings.submit_agenda(session, settings, meetings.get_meeting(session, meeting_id), now=after, actor="t")
        row = {d.key: d for d in meetings.deadlines_of(session, meetings.get_meeting(session, meeting_id))}
        assert row["agenda_to_chair_by"].status == "missed" and row["agenda_to_chair_by"].done_on is not None
    assert main(["wg", "meeting", "show", str(meeting_id)]) == 0
    assert "ПРОПУЩЕН" in capsys.readouterr().out
    assert main(["wg", "meeting", "list"]) == 0
    assert "пропущено сроков: 1" in capsys.readouterr().out


def test_astrakhan_signatures_and_late_written_opinion(settings: Settings, sink: Sink) -> None:
    clock = Clock(utcnow())
    people = make_group(settings, clock.now, profile="astrakhan")
    meeting_id = _meeting(settings, people, clock.now, days=3)
    drain(settings)
    members = _members(settings)
    agenda = mail_to(sink, ADDRESSES["m3"][1], "Повестка")[0]
    with session_scope(settings) as session:
        meeting = meetings.get_meeting(session, meeting_id)
        opinions_due = meetings.written_opinions_by(session, settings, meeting)
        assert opinions_due == service.meeting_day(settings, meeting) - dt.timedelta(days=1)
    # The written opinion arrives on the meeting day: later than "1 day before"; attached, marked late.
    on_the_day = meeting.starts_at - dt.timedelta(hours=1)
    raw = reply(agenda, sender=ADDRESSES["m3"][1], name=ADDRESSES["m3"][0], body="Моё мнение: поддерживаю.")
    process_raw(settings, raw, Source("file"), now=on_the_day)
    with session_scope(settings) as session:
        meeting = meetings.get_meeting(session, meeting_id)
        opinions.confirm_reply(session, settings, opinions.held_items(session)[0], now=on_the_day, actor="t")
        assert opinions.opinions_of(session, meeting)[0].late is True
        for key in ("chair", "secretary", "m1"):
            voting.record_attendance(
                session, meeting, members[getattr(people, key)], "in_person", now=clock.now, actor="t"
            )
        voting.finish_meeting(session, settings, meeting, now=meeting.starts_at, actor="t")
        signing.draft_minutes(session, settings, meeting, now=meeting.starts_at, actor="t")
        signatures = signing.request_signatures(session, settings, meeting, now=meeting.starts_at, actor="t")
        # Seed 001 p. 3.4: chair, secretary and the members who took part sign.
        assert sorted(s.member_id for s in signatures) == sorted([people.chair, people.secretary, people.m1])
        for signature in signatures[:2]:
            signing.sign_minutes(session, settings, signature, now=meeting.starts_at, method="cli")
        assert meeting.status == "minutes_signing"
        signing.sign_minutes(session, settings, signatures[2], now=meeting.starts_at, method="cli")
        assert meeting.status == "minutes_distributed"
        copies = {d.key: d for d in meetings.deadlines_of(session, meeting)}["copies_by"]
        signed_day = service.local_today(settings, meeting.starts_at)
        assert copies.due == default_calendar(settings).add_working_days(signed_day, 5)
        assert copies.status == "kept"


def test_agenda_proposal_by_reply(settings: Settings, sink: Sink) -> None:
    now = utcnow()
    people = make_group(settings, now)
    meeting_id = _meeting(settings, people, now)
    drain(settings)
    agenda = mail_to(sink, ADDRESSES["m2"][1], "Повестка")[0]
    body = "Предлагаю включить в повестку вопрос о графике приёма граждан.\nОбоснование: жалобы на очереди."
    process_raw(settings, reply(agenda, sender=ADDRESSES["m2"][1], name=ADDRESSES["m2"][0], body=body), Source("file"))
    with session_scope(settings) as session:
        meeting = meetings.get_meeting(session, meeting_id)
        held = opinions.held_items(session, meeting)
        assert [h.kind for h in held] == ["agenda_proposal"]
        opinions.confirm_reply(session, settings, held[0], now=now, actor="t")
        proposed = meetings.items_of(session, meeting, status="proposed")
        assert [(i.title, i.proposed_by_id) for i in proposed] == [
            ("Предлагаю включить в повестку вопрос о графике приёма граждан.", people.m2)
        ]
        assert len(meetings.items_of(session, meeting)) == 2 and meeting.agenda_approved_at is not None
        # Including it changes the agenda: the chair approves it again and everyone gets the update.
        meetings.include_item(session, meeting, proposed[0], now=now, actor="t")
        assert meeting.agenda_approved_at is None and meeting.status == "agenda_submitted"
        with pytest.raises(WorkgroupError, match=r"невозможно|не утверждена"):
            meetings.send_agenda(session, settings, meeting, now=now, actor="t")
        chair = session.get(WgMember, people.chair)
        assert chair is not None
        meetings.approve_agenda(session, settings, meeting, chair, now=now, how="t")
        meetings.send_agenda(session, settings, meeting, now=now, actor="t")
    drain(settings)
    update = mail_to(sink, ADDRESSES["m1"][1], "Изменение")
    assert len(update) == 1 and "о графике приёма" in update[0].get_body(("plain",)).get_content()
