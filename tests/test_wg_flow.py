"""End to end against Dovecot and the SMTP sink: a meeting from creation to distributed minutes, and a written poll
with one ballot answered by link and another by e-mail."""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Iterator
from pathlib import Path

import icalendar
import pytest
from docx import Document
from imap_tools import MailBoxUnencrypted
from sqlalchemy import select

from mailservice import config
from mailservice.blobs import BlobStore
from mailservice.cli import main
from mailservice.db import session_scope, utcnow
from mailservice.inforequests.models import Request
from mailservice.intake.models import IntakeEntry, Outcome
from mailservice.mail.imap import poll_once
from mailservice.workdays import default_calendar
from mailservice.workgroup import groups, meetings, opinions, periodic, service, signing, voting
from mailservice.workgroup.minutes import docx_text
from mailservice.workgroup.models import WgInboxItem, WgMeeting, WgMember, WgVote
from mailservice.workgroup.service import WorkgroupError
from mailservice.workgroup.tally import Choice
from tests.conftest import make_env, reset_caches
from tests.servers import Dovecot, Sink
from tests.test_wg_helpers import (
    ADDRESSES,
    Clock,
    attachments,
    client,
    drain,
    links,
    mail_to,
    make_group,
    reply,
    text_of,
    working_days_ahead,
)

pytestmark = pytest.mark.dovecot


@pytest.fixture
def wg_settings(
    imap: Dovecot, sink: Sink, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str
) -> Iterator[config.Settings]:
    """Settings with IMAP intake from Dovecot and outgoing mail to the sink (both databases)."""
    env = {k.removeprefix("MAILSERVICE_").lower(): v for k, v in imap.env().items()}
    yield make_env(monkeypatch, tmp_path, db_url, smtp_port=str(sink.port), smtp_host="127.0.0.1", **env)
    reset_caches()


def deliver(server: Dovecot, settings: config.Settings, *messages: bytes) -> None:
    """APPEND replies to the intake mailbox and let the poller take them."""
    with MailBoxUnencrypted("127.0.0.1", server.port).login(server.user, server.password) as box:
        for raw in messages:
            box.append(raw, "INBOX")
    result = poll_once(settings)
    assert result.fetched == len(messages)
    assert result.outcomes == {Outcome.routed: len(messages)}, result.outcomes


def test_meeting_from_creation_to_distributed_minutes(
    imap: Dovecot, wg_settings: config.Settings, sink: Sink, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = wg_settings
    clock = Clock(utcnow())
    http = client(settings, clock)
    people = make_group(settings, clock.now, verified=False)
    drain(settings)
    # Every new member was asked once to confirm their address; a GET confirms nothing, the button does.
    verify = links(mail_to(sink, ADDRESSES["chair"][1], "Подтвердите адрес")[0], "verify")[0]
    assert "Подтвердить" in http.get(verify).text
    with session_scope(settings) as session:
        assert session.get(WgMember, people.chair).verified_at is None  # type: ignore[union-attr]
    assert "Адрес подтверждён" in http.post(verify).text
    with session_scope(settings) as session:
        assert session.get(WgMember, people.chair).verified_at is not None  # type: ignore[union-attr]

    # The secretary plans a meeting seven working days ahead: every term is computed on the calendar.
    start = working_days_ahead(settings, clock.now, 7)
    material = b"%PDF-1.4 plan of works"
    with session_scope(settings) as session:
        group = groups.get_group(session, "kc")
        meeting = meetings.create_meeting(
            session, settings, group, starts_at=start, form="in_person", place="каб. 101", now=clock.now, actor="test"
        )
        meeting_id = meeting.id
        first = meetings.add_item(
            session,
            meeting,
            title="О плане работ на 2027 год",
            speaker="Сидорова С. С.",
            proposal="Утвердить план работ.",
            now=clock.now,
            actor="test",
        )
        meetings.add_material(
            session,
            settings,
            meeting,
            filename="План работ.pdf",
            content_type="application/pdf",
            data=material,
            item=first,
            now=clock.now,
            actor="test",
        )
        meetings.add_item(
            session, meeting, title="О графике приёма граждан", proposal="Изменить график.", now=clock.now, actor="test"
        )
        meetings.invite(session, meeting, session.get(WgMember, people.guest), now=clock.now, actor="test")  # type: ignore[arg-type]
        deadlines = {d.key: d for d in meetings.deadlines_of(session, meeting)}
        day = service.meeting_day(settings, meeting)
        calendar = default_calendar(settings)
        assert deadlines["agenda_to_chair_by"].due == calendar.add_working_days(day, -5)
        assert deadlines["agenda_send_by"].due == calendar.add_working_days(day, -3)
        assert deadlines["minutes_by"].due == calendar.add_working_days(day, 5)
        assert "copies_by" not in deadlines  # counted from the signing day
        meetings.submit_agenda(session, settings, meeting, now=clock.now, actor="test")
    drain(settings)

    # The chair approves the agenda with one click in the e-mail (which carries the materials).
    approval = mail_to(sink, ADDRESSES["chair"][1], "Повестка на утверждение")[0]
    assert "План работ.pdf" in attachments(approval)
    approve = links(approval, "approve")[0]
    page = http.get(approve)
    assert page.status_code == 200 and "О плане работ на 2027 год" in page.text
    with session_scope(settings) as session:
        assert session.get(WgMeeting, meeting_id).agenda_approved_at is None  # type: ignore[union-attr]
    assert http.post(approve).status_code == 200
    assert http.post(approve).status_code == 409  # replayed: already approved, nothing changes

    with session_scope(settings) as session:
        meeting = meetings.get_meeting(session, meeting_id)
        assert meetings.send_agenda(session, settings, meeting, now=clock.now, actor="test") == 6
    drain(settings)

    # Members and the invitee get the agenda, the materials and an invitation in the department's time zone.
    for key in ("chair", "secretary", "m1", "m2", "m3", "guest"):
        assert len(mail_to(sink, ADDRESSES[key][1], "Повестка: Заседание")) == 1, key
    agenda = mail_to(sink, ADDRESSES["m3"][1], "Повестка: Заседание")[0]
    files = attachments(agenda)
    assert files["План работ.pdf"][1] == material
    content_type, ics = files["invite.ics"]
    assert "text/calendar" in content_type and "method=REQUEST" in content_type.replace('"', "")
    calendar_obj = icalendar.Calendar.from_ical(ics)
    assert calendar_obj["METHOD"] == "REQUEST"
    event = next(iter(calendar_obj.walk("VEVENT")))
    local_start = event.decoded("DTSTART")
    assert local_start == start.astimezone(settings.tz) and local_start.hour == 10
    assert str(local_start.tzinfo) == settings.timezone
    assert len(event.get("ATTENDEE")) == 6

    # An absent member answers the agenda with a written opinion; it is held until the secretary confirms it.
    opinion = reply(
        agenda,
        sender=ADDRESSES["m3"][1],
        name=ADDRESSES["m3"][0],
        body="Не смогу присутствовать на заседании.\nМоё мнение: план работ поддерживаю.",
    )
    deliver(imap, settings, opinion)
    with session_scope(settings) as session:
        held = session.scalars(select(WgInboxItem)).all()
        assert [(h.kind, h.member_id, h.status) for h in held] == [("written_opinion", people.m3, "held")]
        assert session.scalar(select(Request)) is None  # a member's reply never becomes a citizen's request
        held_id = held[0].id
    assert main(["wg", "inbox", "confirm", str(held_id)]) == 0
    assert "приобщено" in capsys.readouterr().out

    # The meeting: who took part, and each vote with who, how and when.
    clock.now = start + dt.timedelta(hours=1)
    with session_scope(settings) as session:
        meeting = meetings.get_meeting(session, meeting_id)
        members = {m.id: m for m in session.scalars(select(WgMember))}
        for key, mode in (
            ("chair", "in_person"),
            ("secretary", "in_person"),
            ("m1", "in_person"),
            ("m2", "in_person"),
            ("guest", "in_person"),
        ):
            voting.record_attendance(session, meeting, members[getattr(people, key)], mode, now=clock.now, actor="test")
        item1, item2 = meetings.items_of(session, meeting)
        votes = {
            item1: {"chair": Choice.for_, "secretary": Choice.for_, "m1": Choice.for_, "m2": Choice.against},
            item2: {"chair": Choice.for_, "secretary": Choice.against, "m1": Choice.against, "m2": Choice.for_},
        }
        for item, choices in votes.items():
            for key, choice in choices.items():
                voting.record_vote(
                    session, settings, meeting, item, members[getattr(people, key)], choice, now=clock.now, actor="test"
                )
        with pytest.raises(WorkgroupError, match="письменное мнение"):
            voting.record_vote(
                session, settings, meeting, item1, members[people.m3], Choice.for_, now=clock.now, actor="test"
            )
        meetings.record_item_outcome(
            session, meeting, item1, heard="Доклад о плане работ.", decision=None, now=clock.now, actor="test"
        )
        clock.now = start + dt.timedelta(hours=2)
        voting.finish_meeting(session, settings, meeting, now=clock.now, actor="test")
        total, taking_part, results = voting.tallies(session, meeting)
        assert (total, taking_part) == (5, 4)  # the invitee and the absent member's opinion do not count
        assert [(r.result.quorum, r.result.adopted, r.result.rule) for r in results] == [
            (True, True, "majority"),
            (True, True, "presiding_vote"),  # 2 to 2: the chair presided and voted for
        ]
        vote = session.scalar(select(WgVote).where(WgVote.item_id == item1.id, WgVote.member_id == people.m2))
        assert vote is not None and (vote.method, vote.at) == ("in_person", start + dt.timedelta(hours=1))
        # Seed 000 p. 9: meetings are held in person; remote participation is refused for this profile.
        with pytest.raises(WorkgroupError, match="дистанционного"):
            voting.record_attendance(session, meeting, members[people.m2], "remote", now=clock.now, actor="test")

    # A member who disagrees sends a dissent by replying to the agenda; it goes into the minutes.
    dissent = reply(
        mail_to(sink, ADDRESSES["m1"][1], "Повестка: Заседание")[0],
        sender=ADDRESSES["m1"][1],
        name=ADDRESSES["m1"][0],
        body="Особое мнение по вопросу 2: не согласен с изменением графика.",
    )
    deliver(imap, settings, dissent)
    with session_scope(settings) as session:
        held = opinions.held_items(session)
        assert [(h.kind, h.member_id, h.payload.get("item_number")) for h in held] == [("dissent", people.m1, 2)]
        opinions.confirm_reply(session, settings, held[0], now=clock.now, actor="test")

    # Minutes: drafted the next working day, signed by the presiding member by link, copies sent at once.
    clock.now = working_days_ahead(settings, start, 1, hour=12)
    with session_scope(settings) as session:
        meeting = meetings.get_meeting(session, meeting_id)
        draft = signing.draft_minutes(session, settings, meeting, now=clock.now, actor="test")
        assert draft.version == 1
        assert signing.draft_minutes(session, settings, meeting, now=clock.now, actor="test").id == draft.id
        signing.request_signatures(session, settings, meeting, now=clock.now, actor="test")
    drain(settings)
    sign_mail = mail_to(sink, ADDRESSES["chair"][1], "Протокол на подписание")
    assert len(sign_mail) == 1 and not mail_to(sink, ADDRESSES["m1"][1], "Протокол на подписание")
    sign = links(sign_mail[0], "sign")[0]
    shown = http.get(sign)
    assert shown.status_code == 200 and "Особое мнение" in shown.text and "Подписать" in shown.text
    assert http.post(sign).status_code == 200
    assert http.post(sign).status_code == 409
    drain(settings)

    with session_scope(settings) as session:
        meeting = meetings.get_meeting(session, meeting_id)
        assert meeting.status == "minutes_distributed"
        assert {d.key: d.status for d in meetings.deadlines_of(session, meeting)} == dict.fromkeys(
            ["agenda_to_chair_by", "agenda_send_by", "minutes_by", "copies_by"], "kept"
        )
        signed = signing.latest_minutes(session, meeting)
        assert signed is not None and signed.status == "signed"
        stored = BlobStore(settings.blob_dir).get(signed.docx_sha256)
        # Signed minutes are final: no new version, no change of votes.
        with pytest.raises(WorkgroupError, match="Подготовка протокола"):
            signing.draft_minutes(session, settings, meeting, now=clock.now, actor="test")
        with pytest.raises(WorkgroupError, match="подписан"):
            voting.record_vote(
                session,
                settings,
                meeting,
                item1,
                members[people.m1],
                Choice.against,
                now=clock.now,
                actor="test",
                replace=True,
            )

    for key in ("chair", "secretary", "m1", "m2", "m3", "guest"):
        copies = mail_to(sink, ADDRESSES[key][1], "Протокол: Заседание")
        assert len(copies) == 1, key
    docx = attachments(mail_to(sink, ADDRESSES["guest"][1], "Протокол: Заседание")[0])
    name = next(n for n in docx if n.endswith(".docx"))
    assert docx[name][1] == stored
    document = Document(io.BytesIO(stored))  # opens with python-docx
    text = docx_text(stored)
    for expected in (
        "О плане работ на 2027 год",
        "РЕШИЛИ: Утвердить план работ.",
        "РЕШИЛИ: Изменить график.",
        "«за» — 3, «против» — 1, «воздержались» — 0",
        "«за» — 2, «против» — 2, «воздержались» — 0",
        "решение принято (большинство голосов)",
        "решение принято (при равенстве голосов решающим является голос председательствующего)",
        "не согласен с изменением графика",
        "план работ поддерживаю",
        "Приложение № 1",
        "Смирнов Олег Игоревич",
        "Орлова Мария Андреевна",  # the invitee who came
    ):
        assert expected in text, expected
    assert document.tables and "подписано" in docx_text(stored)
    assert "Изменить график." in docx["protokol-1.html"][1].decode("utf-8")

    # The console shows every term kept to the secretary.
    assert main(["wg", "meeting", "show", str(meeting_id)]) == 0
    out = capsys.readouterr().out
    assert out.count("соблюдён") == 4 and "ПРОПУЩЕН" not in out


def test_written_poll_by_link_and_by_email(imap: Dovecot, wg_settings: config.Settings, sink: Sink) -> None:
    settings = wg_settings
    clock = Clock(utcnow())
    http = client(settings, clock)
    people = make_group(settings, clock.now, profile="saratov")
    closes = clock.now + dt.timedelta(days=3)
    with session_scope(settings) as session:
        group = groups.get_group(session, "kc")
        poll = meetings.create_meeting(
            session, settings, group, starts_at=closes, form="absentee", now=clock.now, actor="test"
        )
        poll_id = poll.id
        meetings.add_item(session, poll, title="Об утверждении регламента", now=clock.now, actor="test")
        meetings.add_item(session, poll, title="О составе экспертной группы", now=clock.now, actor="test")
        meetings.submit_agenda(session, settings, poll, now=clock.now, actor="test")
        chair = session.get(WgMember, people.chair)
        assert chair is not None
        meetings.approve_agenda(session, settings, poll, chair, now=clock.now, how="test")
        assert voting.open_poll(session, settings, poll, now=clock.now, actor="test") == 5
    drain(settings)

    # The chair and one member vote by link: a GET shows the question, the POST counts once.
    def vote(key: str, number: int, choice: str) -> int:
        ballot = mail_to(sink, ADDRESSES[key][1], "Бюллетень")[0]
        path = links(ballot, "ballot")[number - 1]
        assert http.get(path).status_code == 200
        return http.post(path, data={"choice": choice}).status_code

    assert vote("chair", 1, "for") == 200
    assert vote("m1", 1, "for") == 200
    assert vote("m1", 2, "against") == 200
    assert vote("m1", 1, "against") == 409  # replayed: the first vote stands
    m1_ballot = mail_to(sink, ADDRESSES["m1"][1], "Бюллетень")[0]
    tampered = links(m1_ballot, "ballot")[0][:-3] + "AAA"
    assert http.post(tampered, data={"choice": "for"}).status_code == 400

    # Another member answers the ballot by e-mail; it counts once the secretary confirms it.
    ballot_mail = mail_to(sink, ADDRESSES["m2"][1], "Бюллетень")[0]
    assert "1. за" in text_of(ballot_mail)
    deliver(
        imap,
        settings,
        reply(
            ballot_mail,
            sender=ADDRESSES["m2"][1],
            name=ADDRESSES["m2"][0],
            body="1. за\n2. за\n\nС уважением, А. П. Кузнецова",
        ),
    )
    with session_scope(settings) as session:
        held = opinions.held_items(session)
        assert [(h.kind, h.member_id, h.payload["numbers"]) for h in held] == [
            ("ballot", people.m2, {"1": "for", "2": "for"})
        ]
        assert voting.tallies(session, meetings.get_meeting(session, poll_id))[1] == 2  # not counted yet
        opinions.confirm_reply(session, settings, held[0], now=clock.now, actor="test")

    # The poll closes at its deadline (the periodic pass); a link used afterwards is refused.
    clock.now = closes + dt.timedelta(minutes=1)
    with session_scope(settings) as session:
        assert periodic.tick(session, settings, now=clock.now).polls_closed == 1
    late = links(mail_to(sink, ADDRESSES["m3"][1], "Бюллетень")[0], "ballot")[0]
    assert http.get(late).status_code == 410
    closed = http.post(late, data={"choice": "for"})
    assert closed.status_code == 410 and "Голосование завершено" in closed.text
    with session_scope(settings) as session:
        poll = meetings.get_meeting(session, poll_id)
        assert poll.status == "held"
        members, returned, results = voting.tallies(session, poll)
        assert (members, returned) == (5, 3)  # chair, m1, m2: 3 × 2 ≥ 5
        assert [(r.votes.for_, r.votes.against, r.result.adopted, r.result.rule) for r in results] == [
            (3, 0, True, "majority"),
            (1, 1, False, "presiding_vote"),  # a tie, and the chair's ballot has no vote on it
        ]
        methods = sorted((v.member_id, v.method) for v in session.scalars(select(WgVote)))
        assert methods == sorted(
            [
                (people.chair, "ballot_link"),
                (people.m1, "ballot_link"),
                (people.m1, "ballot_link"),
                (people.m2, "email"),
                (people.m2, "email"),
            ]
        )
        minutes = signing.draft_minutes(session, settings, poll, now=clock.now, actor="test")
        text = docx_text(BlobStore(settings.blob_dir).get(minutes.docx_sha256))
        assert "заочного голосования" in text and re.search(r"Петров Пётр Петрович \| за", text)
        entries = session.scalars(select(IntakeEntry)).all()
        assert [e.outcome for e in entries] == [Outcome.routed]
