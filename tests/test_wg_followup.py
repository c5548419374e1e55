"""Issue 18's smaller working-group items, on both databases: the console's sheet of attendance and votes, the
acknowledgement of a held reply, and signed minutes that the database itself refuses to change."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError

from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.intake.pipeline import Source, process_raw
from mailservice.web.staff.auth import Role
from mailservice.workgroup import groups, meetings, opinions, signing, voting
from mailservice.workgroup.models import WgAgendaItem, WgLogEntry, WgMember, WgMinutes, WgSignature, WgVote
from mailservice.workgroup.tally import Choice
from tests.console_support import add_staff, login
from tests.servers import Sink
from tests.test_wg_helpers import (
    ADDRESSES,
    Clock,
    client,
    drain,
    mail_to,
    make_group,
    reply,
    text_of,
    working_days_ahead,
)
from tests.test_wg_instructions import held_meeting, sign


def test_attendance_and_votes_on_one_sheet(settings: Settings, sink: Sink) -> None:
    clock = Clock(utcnow())
    people = make_group(settings, clock.now)
    start = working_days_ahead(settings, clock.now, 7)
    with session_scope(settings) as session:
        meeting = meetings.create_meeting(
            session,
            settings,
            groups.get_group(session, "kc"),
            starts_at=start,
            form="in_person",
            now=clock.now,
            actor="t",
        )
        first = meetings.add_item(session, meeting, title="Первый вопрос", now=clock.now, actor="t")
        second = meetings.add_item(session, meeting, title="Второй вопрос", now=clock.now, actor="t")
        meetings.submit_agenda(session, settings, meeting, now=clock.now, actor="t")
        chair = session.get(WgMember, people.chair)
        assert chair is not None
        meetings.approve_agenda(session, settings, meeting, chair, now=clock.now, how="cli")
        meeting_id, first_id, second_id = meeting.id, first.id, second.id
    secretary_email = ADDRESSES["secretary"][1]
    add_staff(settings, secretary_email, Role.operator)
    add_staff(settings, ADDRESSES["m1"][1], Role.operator)
    clock.now = start
    http = client(settings, clock)
    csrf = login(http, secretary_email)
    sheet = http.get(f"/staff/wg/meetings/{meeting_id}/sheet")
    assert sheet.status_code == 200
    assert f'name="vote_{first_id}_{people.m1}"' in sheet.text
    assert f'name="vote_{first_id}_{people.guest}"' not in sheet.text  # an invitee has no vote
    form = {
        "csrf_token": csrf,
        f"mode_{people.chair}": "in_person",
        f"mode_{people.secretary}": "in_person",
        f"mode_{people.m1}": "in_person",
        f"mode_{people.m2}": "absent",
        f"mode_{people.guest}": "in_person",
        f"vote_{first_id}_{people.chair}": "for",
        f"vote_{first_id}_{people.secretary}": "for",
        f"vote_{first_id}_{people.m1}": "against",
        f"vote_{second_id}_{people.chair}": "abstain",
    }
    assert http.post(f"/staff/wg/meetings/{meeting_id}/sheet", data={**form, "csrf_token": "x"}).status_code == 403
    member = client(settings, clock)
    member_csrf = login(member, ADDRESSES["m1"][1])
    assert member.get(f"/staff/wg/meetings/{meeting_id}/sheet").status_code == 403  # a member is not the secretary
    assert (
        member.post(f"/staff/wg/meetings/{meeting_id}/sheet", data={**form, "csrf_token": member_csrf}).status_code
        == 403
    )
    saved = http.post(f"/staff/wg/meetings/{meeting_id}/sheet", data=form)
    assert saved.status_code == 303
    with session_scope(settings) as session:
        meeting = meetings.get_meeting(session, meeting_id)
        modes = {mid: row.mode for mid, row in voting.attendance_of(session, meeting).items()}
        assert modes == {
            people.chair: "in_person",
            people.secretary: "in_person",
            people.m1: "in_person",
            people.m2: "absent",
            people.guest: "in_person",
        }
        members, taking_part, results = voting.tallies(session, meeting)
        assert (members, taking_part) == (5, 3)
        assert [(r.votes.for_, r.votes.against, r.votes.abstain) for r in results] == [(2, 1, 0), (0, 0, 1)]

    # One bad cell refuses the whole sheet: the absent member's vote, with the correction beside it, changes nothing.
    bad = {**form, f"vote_{first_id}_{people.m1}": "for", f"vote_{second_id}_{people.m2}": "for"}
    refused = http.post(f"/staff/wg/meetings/{meeting_id}/sheet", data=bad)
    assert refused.status_code == 409 and "Вопрос № 2" in refused.text and ADDRESSES["m2"][0] in refused.text
    # A recorded vote cannot be erased by an empty cell.
    erased = http.post(f"/staff/wg/meetings/{meeting_id}/sheet", data={**form, f"vote_{first_id}_{people.m1}": ""})
    assert erased.status_code == 409 and "не удалить" in erased.text
    with session_scope(settings) as session:
        vote = session.scalar(select(WgVote).where(WgVote.item_id == first_id, WgVote.member_id == people.m1))
        assert vote is not None and vote.choice == Choice.against.value
        assert voting.votes_on(session, session.get(WgAgendaItem, second_id)) != []  # type: ignore[arg-type]
    # A correction through the sheet is logged like one made alone.
    corrected = http.post(
        f"/staff/wg/meetings/{meeting_id}/sheet", data={**form, f"vote_{first_id}_{people.m1}": "for"}
    )
    assert corrected.status_code == 303
    with session_scope(settings) as session:
        results = voting.tallies(session, meetings.get_meeting(session, meeting_id))[2]
        assert (results[0].votes.for_, results[0].votes.against) == (3, 0)
        log = session.scalars(select(WgLogEntry).where(WgLogEntry.action == "vote_corrected")).all()
        assert [(e.details["old"], e.details["new"]) for e in log] == [("against", "for")]


def test_a_member_whose_reply_is_held_is_told(settings: Settings, sink: Sink) -> None:
    clock = Clock(utcnow())
    make_group(settings, clock.now)
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
        meetings.add_item(session, meeting, title="О плане работ", now=clock.now, actor="t")
        meetings.submit_agenda(session, settings, meeting, now=clock.now, actor="t")
    drain(settings)
    request = mail_to(sink, ADDRESSES["chair"][1], "Повестка на утверждение")[0]
    name, address = ADDRESSES["chair"]
    member_reply = reply(request, sender=address, name=name, body="Предлагаю включить в повестку вопрос о графике.")
    stranger_reply = reply(request, sender="someone@example.ru", name="Кто-то", body="Не смогу быть на заседании.")
    process_raw(settings, member_reply, Source("file"))
    process_raw(settings, stranger_reply, Source("file"))
    drain(settings)
    (ack,) = mail_to(sink, address, "Получено")
    body = text_of(ack)
    assert "предложение в повестку" in body and "передано секретарю" in body
    assert ack["Auto-Submitted"] == "auto-replied"  # RFC 3834: their auto-responder must not answer it
    sent_id = str(ack["In-Reply-To"]).strip("<>")
    assert sent_id and sent_id in member_reply.decode("utf-8", "replace")
    assert mail_to(sink, "someone@example.ru") == []  # a From header can be forged: strangers get nothing
    with session_scope(settings) as session:
        assert len(opinions.held_items(session)) == 2


def test_signed_minutes_are_refused_by_the_database(settings: Settings, sink: Sink) -> None:
    clock = Clock(utcnow())
    people = make_group(settings, clock.now)
    meeting_id, _item_id = held_meeting(settings, clock, people)
    with session_scope(settings) as session:
        meeting = meetings.get_meeting(session, meeting_id)
        voting.finish_meeting(session, settings, meeting, now=clock.now, actor="t")
        draft = signing.draft_minutes(session, settings, meeting, now=clock.now, actor="t")
        draft_id = draft.id
    # A draft still changes (a new draft supersedes it).
    with session_scope(settings) as session:
        session.execute(update(WgMinutes).where(WgMinutes.id == draft_id).values(created_by="changed"))
    sign(settings, clock, meeting_id)
    with session_scope(settings) as session:
        signed = signing.latest_minutes(session, meetings.get_meeting(session, meeting_id))
        assert signed is not None and signed.status == "signed"
        signed_id = signed.id
        signature_id = signing.signatures_of(session, signed)[0].id
    statements = [
        update(WgMinutes).where(WgMinutes.id == signed_id).values(html="<p>подделка</p>"),
        update(WgMinutes).where(WgMinutes.id == signed_id).values(status="draft"),
        delete(WgMinutes).where(WgMinutes.id == signed_id),
        update(WgSignature).where(WgSignature.id == signature_id).values(signed_at=None),
        delete(WgSignature).where(WgSignature.id == signature_id),
    ]
    for statement in statements:
        with pytest.raises(DBAPIError, match="signed"):
            with session_scope(settings) as session:
                session.execute(statement)
    # Nor does raw SQL outside the application get through.
    with pytest.raises(DBAPIError, match="signed"):
        with session_scope(settings) as session:
            session.execute(text("UPDATE wg_minutes SET html = '' WHERE status = 'signed'"))
    with session_scope(settings) as session:
        row = session.get(WgMinutes, signed_id)
        assert row is not None and row.status == "signed" and "подделка" not in row.html
        assert session.get(WgSignature, signature_id).signed_at is not None  # type: ignore[union-attr]
