"""Pure parts of the working group: the deadlines CLI on the production calendar, profile policies, reply
recognition, the iCalendar invitation and the minutes documents."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
from zoneinfo import ZoneInfo

import icalendar
import pytest
from docx import Document

from mailservice.cli import main
from mailservice.workgroup import minutes as minutes_doc
from mailservice.workgroup.ics import Invitation, build_ics
from mailservice.workgroup.policy import (
    deadline_status,
    group_rules,
    months_without_meetings,
    parse_setting,
)
from mailservice.workgroup.replies import parse_ballot, recognise
from mailservice.workgroup.tally import Choice, Votes, tally

D = dt.date


# The deadlines CLI, table-driven from RULES.md ---------------------------------------------------------------

DEADLINES = [
    # RULES.md's own example: meeting Wed 16.12.2026 -> 5 wd before Wed 09.12, 3 before Fri 11.12, minutes Wed 23.12.
    (
        "novosibirsk",
        "2026-12-16",
        "2026-12-23",
        {
            "agenda_to_chair_by": "2026-12-09",
            "agenda_send_by": "2026-12-11",
            "written_opinions_by": None,
            "minutes_by": "2026-12-23",
            "copies_by": "2026-12-28",
        },
    ),
    # New Year: 31.12.2025 and 01-08.01.2026 and 09.01.2026 are days off.
    (
        "novosibirsk",
        "2026-01-14",
        None,
        {
            "agenda_to_chair_by": "2025-12-26",
            "agenda_send_by": "2025-12-30",
            "written_opinions_by": None,
            "minutes_by": "2026-01-21",
            "copies_by": None,
        },
    ),
    # May holidays 2026: 01.05 (Fri) and 11.05 (Mon, for Sat 09.05) are off.
    (
        "novosibirsk",
        "2026-05-13",
        "2026-05-08",
        {
            "agenda_to_chair_by": "2026-05-05",
            "agenda_send_by": "2026-05-07",
            "written_opinions_by": None,
            "minutes_by": "2026-05-20",
            "copies_by": "2026-05-14",
        },
    ),
    (
        "novosibirsk",
        "2026-04-29",
        None,
        {
            "agenda_to_chair_by": "2026-04-22",
            "agenda_send_by": "2026-04-24",
            "written_opinions_by": None,
            "minutes_by": "2026-05-07",
            "copies_by": None,
        },
    ),
    # A transferred working day: Saturday 01.11.2025 worked, 03-04.11.2025 were off.
    (
        "novosibirsk",
        "2025-11-05",
        None,
        {
            "agenda_to_chair_by": "2025-10-28",
            "agenda_send_by": "2025-10-30",
            "written_opinions_by": None,
            "minutes_by": "2025-11-12",
            "copies_by": None,
        },
    ),
    # Astrakhan: the written opinion 1 calendar day before (even a holiday); copies 5 working days after signing.
    (
        "astrakhan",
        "2026-05-12",
        "2026-04-30",
        {
            "agenda_to_chair_by": None,
            "agenda_send_by": None,
            "written_opinions_by": "2026-05-11",
            "minutes_by": None,
            "copies_by": "2026-05-08",
        },
    ),
    # Federal and Saratov: no terms (the chair approves, minutes go out electronically).
    (
        "federal",
        "2026-05-12",
        "2026-04-30",
        dict.fromkeys(["agenda_to_chair_by", "agenda_send_by", "written_opinions_by", "minutes_by", "copies_by"]),
    ),
    (
        "saratov",
        "2026-12-16",
        None,
        dict.fromkeys(["agenda_to_chair_by", "agenda_send_by", "written_opinions_by", "minutes_by", "copies_by"]),
    ),
]


@pytest.mark.parametrize(("profile", "meeting", "signed", "expected"), DEADLINES)
def test_deadlines_cli(
    capsys: pytest.CaptureFixture[str], profile: str, meeting: str, signed: str | None, expected: dict[str, str | None]
) -> None:
    args = ["wg", "deadlines", "--profile", profile, "--meeting", meeting, "--json"]
    assert main([*args, "--signed", signed] if signed else args) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == ["agenda_to_chair_by", "agenda_send_by", "written_opinions_by", "minutes_by", "copies_by"]
    assert out == expected


def test_deadlines_cli_refuses_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["wg", "deadlines", "--profile", "moscow", "--meeting", "2026-12-16", "--json"]) == 2
    assert main(["wg", "deadlines", "--profile", "federal", "--meeting", "16.12.2026", "--json"]) == 2
    err = capsys.readouterr().err
    assert err.count("Ошибка") == 2 and "Traceback" not in err


# Profiles --------------------------------------------------------------------------------------------------------


def test_profile_policies() -> None:
    assert group_rules("federal").policy.audio_required == ("in_person", "remote")
    assert group_rules("novosibirsk").policy.monthly and group_rules("federal").policy.monthly
    assert not group_rules("astrakhan").policy.monthly and not group_rules("saratov").policy.monthly
    assert group_rules("astrakhan").policy.signers == "all"
    assert group_rules("novosibirsk").policy.signers == "presiding"
    assert "absentee" in group_rules("saratov").policy.forms and "absentee" not in group_rules("federal").policy.forms
    custom = group_rules("novosibirsk", {"agenda_send_wd": 4, "monthly": False, "forms": ["in_person", "remote"]})
    assert custom.terms.agenda_send_wd == 4 and custom.policy.monthly is False
    assert custom.policy.forms == ("in_person", "remote")
    with pytest.raises(ValueError, match="quorum_typo"):
        group_rules("federal", {"quorum_typo": 1})
    with pytest.raises(ValueError, match="формы участия выбираются из"):
        group_rules("federal", {"forms": ["video"]})


def test_parse_setting() -> None:
    assert parse_setting("copies_wd", "2") == 2
    assert parse_setting("copies_wd", "none") is None
    assert parse_setting("monthly", "нет") is False
    assert parse_setting("forms", "in_person, remote") == ["in_person", "remote"]
    with pytest.raises(ValueError, match="copies_wd"):
        parse_setting("copies_wd", "three")
    with pytest.raises(ValueError, match="нет такой настройки рабочей группы: 'colour'"):
        parse_setting("colour", "red")


def test_months_without_meetings() -> None:
    meetings = [D(2026, 9, 30), D(2026, 11, 2)]
    assert months_without_meetings(meetings, D(2026, 9, 15), D(2027, 1, 1)) == [(2026, 10), (2026, 12), (2027, 1)]
    assert months_without_meetings([], D(2026, 12, 1), D(2026, 12, 31)) == [(2026, 12)]


def test_deadline_status() -> None:
    due = D(2026, 12, 11)
    assert deadline_status(due, D(2026, 12, 11), D(2026, 12, 20)) == "kept"
    assert deadline_status(due, D(2026, 12, 14), D(2026, 12, 20)) == "missed"
    assert deadline_status(due, None, D(2026, 12, 11)) == "pending"
    assert deadline_status(due, None, D(2026, 12, 12)) == "missed"


# Replies ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1. за\n2. против\n3. воздержался", {1: Choice.for_, 2: Choice.against, 3: Choice.abstain}),
        ("Вопрос 1: За\nпо вопросу № 2 — воздерживаюсь", {1: Choice.for_, 2: Choice.abstain}),
        ("1) «за»\n2 - против", {1: Choice.for_, 2: Choice.against}),
        ("1. за\n1. против", {}),  # contradicting answers are left to the secretary
        ("1. Заявляю, что согласен", {}),  # "за" inside a word is not a vote
        ("Благодарю за материалы", {}),
    ],
)
def test_parse_ballot(text: str, expected: dict[int, Choice]) -> None:
    assert parse_ballot(text) == expected


def test_recognise() -> None:
    assert recognise("Re: Бюллетень", "1. за\n2. против", ballot_expected=True).kind == "ballot"
    # At a meeting numbered answers are an absent member's written opinion, never votes.
    assert recognise("Re: Повестка", "1. за\n2. против", ballot_expected=False).kind == "written_opinion"
    special = recognise(
        "Re: Протокол", "Прошу внести в протокол моё особое мнение по вопросу 2.", ballot_expected=False
    )
    assert (special.kind, special.item_number) == ("dissent", 2)
    dissent = recognise(
        "Re: Протокол", "Не согласен с решением по вопросу № 2: сроки нереальны.", ballot_expected=False
    )
    assert (dissent.kind, dissent.item_number) == ("dissent", 2)
    assert (
        recognise("Re: Повестка", "Предлагаю включить в повестку вопрос о графике приёма.", ballot_expected=False).kind
        == "agenda_proposal"
    )
    assert (
        recognise(
            "Re: Повестка", "Не смогу присутствовать. Моё мнение: поддерживаю проект.", ballot_expected=False
        ).kind
        == "written_opinion"
    )
    assert recognise("Re: Повестка", "Спасибо, получил.", ballot_expected=False).kind == "other"


# iCalendar -------------------------------------------------------------------------------------------------------


def _invitation(sequence: int) -> Invitation:
    return Invitation(
        uid="wg-abc@dizo.test",
        sequence=sequence,
        starts_at=dt.datetime(2026, 12, 16, 3, 0, tzinfo=dt.UTC),  # 10:00 in Novosibirsk (UTC+7)
        duration=dt.timedelta(minutes=90),
        summary="Заседание № 1",
        description="Повестка:\n1. Вопрос",
        location="каб. 101",
        organizer_email="info@dizo.test",
        organizer_name="Секретарь",
        attendees=[("Иванов И. И.", "ivanov@dizo.test"), ("Петрова П. П.", "petrova@dizo.test")],
        stamp=dt.datetime(2026, 11, 25, 5, 0, tzinfo=dt.UTC),
    )


def test_ics_request_and_cancel() -> None:
    tz = ZoneInfo("Asia/Novosibirsk")
    request = icalendar.Calendar.from_ical(build_ics(_invitation(0), tz))
    assert request["METHOD"] == "REQUEST"
    event = next(iter(request.walk("VEVENT")))
    start = event.decoded("DTSTART")
    assert start == dt.datetime(2026, 12, 16, 10, 0, tzinfo=tz) and str(start.tzinfo) == "Asia/Novosibirsk"
    assert event.decoded("DTEND") - start == dt.timedelta(minutes=90)
    assert str(event["UID"]) == "wg-abc@dizo.test" and event.decoded("SEQUENCE") == 0
    assert "TZID:Asia/Novosibirsk" in build_ics(_invitation(0), tz).decode()
    attendees = event.get("ATTENDEE")
    assert sorted(str(a) for a in attendees) == ["mailto:ivanov@dizo.test", "mailto:petrova@dizo.test"]
    cancel = icalendar.Calendar.from_ical(build_ics(_invitation(2), tz, cancel=True))
    cancelled = next(iter(cancel.walk("VEVENT")))
    assert cancel["METHOD"] == "CANCEL" and str(cancelled["STATUS"]) == "CANCELLED"
    assert str(cancelled["UID"]) == "wg-abc@dizo.test" and cancelled.decoded("SEQUENCE") == 2


def test_ics_refuses_naive_time() -> None:
    naive = _invitation(0)
    object.__setattr__(naive, "starts_at", dt.datetime(2026, 12, 16, 10, 0))
    with pytest.raises(ValueError, match="aware"):
        build_ics(naive, ZoneInfo("Asia/Novosibirsk"))


# Minutes ---------------------------------------------------------------------------------------------------------


def _data(**changes: object) -> minutes_doc.MinutesData:
    item = minutes_doc.ItemRecord(
        number=1,
        title="О плане работ",
        speaker="Иванов И. И.",
        heard="Доклад о плане.\n- строка, похожая на список\n| и на таблицу",
        decision="Утвердить план работ.",
        votes=Votes(3, 1, 0),
        result=tally(5, 4, Votes(3, 1, 0), Choice.for_),
        dissents=[minutes_doc.Opinion("Петров П. П.", "Против: сроки нереальны.", "20.12.2026 10:00", 1)],
    )
    data = minutes_doc.MinutesData(
        department="Департамент",
        group_title="Рабочая группа по клиентоцентричности",
        number=3,
        date="16 декабря 2026 г.",
        time="10:00",
        place="каб. 101",
        form="очная",
        is_poll=False,
        presiding="Иванов И. И.",
        secretary="Сидорова С. С.",
        members_total=5,
        taking_part=4,
        quorum=True,
        present=[minutes_doc.Person("Иванов И. И.", "заместитель руководителя", "председатель", "очно")],
        absent=[minutes_doc.Person("Кузнецов К. К.")],
        invitees=[],
        items=[item],
        written_opinions=[minutes_doc.Opinion("Кузнецов К. К.", "Поддерживаю проект.", "15.12.2026 09:00")],
        conciliation=False,
        signers=[minutes_doc.Signer("Председательствующий", "Иванов И. И.")],
    )
    return dataclasses.replace(data, **changes)  # type: ignore[arg-type]


def test_minutes_docx_and_html() -> None:
    data = _data()
    text = minutes_doc.docx_text(minutes_doc.render_docx(data))
    for expected in (
        "ПРОТОКОЛ № 3",
        "РЕШИЛИ: Утвердить план работ.",
        "«за» — 3, «против» — 1, «воздержались» — 0",
        "решение принято",
        "Особое мнение (Петров П. П.",
        "Приложение № 1 к протоколу № 3",
        "Поддерживаю проект.",
        "- строка, похожая на список",  # a person's text stays text, not a list or a table
        "| и на таблицу",
    ):
        assert expected in text, expected
    assert len(Document(io.BytesIO(minutes_doc.render_docx(data))).tables) == 1  # the signatures only
    html = minutes_doc.render_html(_data(items=[], written_opinions=[minutes_doc.Opinion("X", "<script>", "")]))
    assert "&lt;script&gt;" in html and "<script>" not in html


def test_content_hash_ignores_signatures_only() -> None:
    base = _data()
    signed = _data(
        signers=[minutes_doc.Signer("Председательствующий", "Иванов И. И.", "23.12.2026 12:00")], draft=False
    )
    assert minutes_doc.content_hash(base) == minutes_doc.content_hash(signed)
    assert minutes_doc.content_hash(base) != minutes_doc.content_hash(_data(place="каб. 202"))
