"""The process register with a database: import/export round trip, versions, statuses, change requests approved
by e-mail through the SMTP sink, the live figures of group 4 and the public part."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import sys
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import func, select

from mailservice.cli import main
from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.feedback.models import FeedbackResponse
from mailservice.inforequests.models import Client, Request
from mailservice.outbox import OutboxMessage
from mailservice.processes import figures, people, publication, requests, service, spreadsheet
from mailservice.processes.models import Approval, ChangeRequest, RegisterVersion, StatusChange
from mailservice.processes.register import Status
from mailservice.tokens import Purpose, sign
from mailservice.web.staff.auth import Role
from tests.conftest import make_env, reset_caches
from tests.console_support import PASSWORD, add_staff, client_for, drain, parsed, text_of
from tests.servers import Sink
from tests.test_processes_register import GOOD, HEADINGS, sheet

OFFICER = "officer@example.ru"
OWNER = "owner@example.ru"
NSK = dt.timezone(dt.timedelta(hours=7))


# The owner cells of GOOD, linked to the owner's account by the officer.
OWNER_CELLS = ("Иванова А. А., начальник отдела", "Петров П. П.", "Сидоров С. С.")


def people_of_the_register(settings: Settings) -> None:
    """The officer's account (role process_officer) and the owner's (an operator) linked to GOOD's owner cells."""
    add_staff(settings, OFFICER, Role.process_officer)
    add_staff(settings, OWNER, Role.operator)
    with session_scope(settings) as session:
        for owner in OWNER_CELLS:
            people.link_owner(session, owner=owner, staff_email=OWNER, actor=OFFICER, now=utcnow())


@pytest.fixture
def reg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, sink: Sink) -> Iterator[Settings]:
    """Settings on both backends with the officer's and the owner's accounts, mail going to the sink."""
    settings = make_env(monkeypatch, tmp_path, db_url, smtp_port=str(sink.port), smtp_host="127.0.0.1")
    people_of_the_register(settings)
    yield settings
    reset_caches()


@pytest.fixture
def lite(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, sink: Sink) -> Iterator[Settings]:
    """The same on SQLite only."""
    settings = make_env(monkeypatch, tmp_path, db_url, smtp_port=str(sink.port), smtp_host="127.0.0.1")
    people_of_the_register(settings)
    yield settings
    reset_caches()


def cli(capsys: pytest.CaptureFixture[str], *args: str, password: str = PASSWORD) -> tuple[int, str, str]:
    """Run the CLI; a command that names a staff account reads its password from standard input."""
    stdin = sys.stdin
    sys.stdin = io.StringIO(password + "\n")
    try:
        code = main(list(args))
    finally:
        sys.stdin = stdin
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def start_register(settings: Settings, tmp_path: Path) -> None:
    """Import the good register and approve it, as the officer."""
    path = sheet(tmp_path / "start.xlsx", GOOD)
    with session_scope(settings) as session:
        outcome = service.import_register(
            session, settings, spreadsheet.read_file(path), actor=OFFICER, now=utcnow(), source_name=path.name
        )
        assert outcome.version is not None and outcome.problems == []
        service.approve_version(session, settings, actor=OFFICER, now=utcnow())


def approval_links(message: EmailMessage) -> dict[str, str]:
    """The approve and object paths of an approval e-mail."""
    text = text_of(message)
    paths = re.findall(r"https?://[^/\s]+(/processes/approval/\S+)", text)
    assert len(paths) == 2, text
    return {"approve": paths[0], "object": paths[1]}


def mails(sink: Sink, needle: str = "") -> list[EmailMessage]:
    return [m for m in (parsed(raw) for _f, _to, raw in sink.messages()) if needle in str(m["Subject"])]


# Import, export, versions ---------------------------------------------------------------------------------------


def test_round_trip_and_versions(reg: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = sheet(tmp_path / "register.xlsx", GOOD, title_rows=["Реестр процессов"])
    code, out, err = cli(capsys, "processes", "import", str(source), "--staff", OFFICER)
    assert code == 0, err
    assert "версия № 1" in out
    assert cli(capsys, "processes", "approve", "--staff", OFFICER)[0] == 0
    first_xlsx, first_csv = tmp_path / "v1.xlsx", tmp_path / "v1.csv"
    assert cli(capsys, "processes", "export", "--format", "xlsx", "--output", str(first_xlsx))[0] == 0
    assert cli(capsys, "processes", "export", "--format", "csv", "--output", str(first_csv))[0] == 0

    ws = openpyxl.load_workbook(first_xlsx).active
    assert ws is not None and not ws.merged_cells.ranges
    assert [c.value for c in ws[1]] == HEADINGS
    assert ws.max_row == 1 + len(GOOD)
    rows = list(csv.reader(io.StringIO(first_csv.read_bytes().decode("utf-8-sig"))))
    assert rows[0] == HEADINGS and rows[1:] == GOOD  # the cells as the department wrote them

    # The exported file imported again is the same register.
    assert cli(capsys, "processes", "import", str(first_xlsx), "--staff", OFFICER)[0] == 0
    second_csv = tmp_path / "v2.csv"
    assert cli(capsys, "processes", "export", "--format", "csv", "--output", str(second_csv), "--version", "2")[0] == 0
    assert second_csv.read_bytes() == first_csv.read_bytes()
    with session_scope(reg) as session:
        v1, v2 = (service.get_version(session, n) for n in (1, 2))
        assert service.version_rows(v1) == service.version_rows(v2)
        assert v1.approved_by == OFFICER and v2.approved_at is None  # an import awaits approval
        # No status changed between the versions: history holds the initial entries only.
        assert session.scalar(select(func.count(StatusChange.id))) == len(GOOD)
    code, out, _ = cli(capsys, "processes", "versions", "--json")
    assert [(v["number"], v["source"], v["rows"]) for v in json.loads(out)] == [(1, "import", 4), (2, "import", 4)]
    # Old versions stay exportable.
    old = tmp_path / "old.xlsx"
    assert cli(capsys, "processes", "export", "--format", "xlsx", "--output", str(old), "--version", "1")[0] == 0
    code, _, err = cli(capsys, "processes", "export", "--format", "pdf", "--output", str(old))
    assert code == 2 and "--format" in err


def test_validate_reports_exactly_the_problems(
    lite: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [list(r) for r in GOOD]
    rows[1][6] = ""  # row 3: owner missing
    rows[2][7] = "на паузе"  # row 4: unknown status
    rows[0][12] = "4.5 (последующий); 9.9 (последующий)"  # row 2: 9.9 dangling
    path = sheet(tmp_path / "bad.xlsx", rows, merge=["C2:C3"])  # the service name merged over rows 2-3
    code, out, _ = cli(capsys, "processes", "validate", str(path), "--json")
    assert code == 1
    report = json.loads(out)
    assert report["rows"] == 4
    assert [(p["row"], p["column"], p["severity"]) for p in report["problems"]] == [
        (2, "Название услуги, функции, сервиса", "warning"),
        (2, "Связь с другими процессами", "error"),
        (3, "Ответственный за процесс", "error"),
        (4, "Статус процесса", "error"),
    ]
    assert "C2:C3" in report["problems"][0]["problem"] and "9.9" in report["problems"][1]["problem"]
    assert "на паузе" in report["problems"][3]["problem"]
    code, _, err = cli(capsys, "processes", "import", str(path), "--staff", OFFICER)
    assert code == 1 and "не импортирован" in err
    with session_scope(lite) as session:
        assert session.scalar(select(func.count(RegisterVersion.id))) == 0
    # Merged cells alone: read by filling the value into every cell, imported with the warning.
    merged_only = sheet(tmp_path / "merged.xlsx", GOOD, merge=["C2:C3"])
    code, _, err = cli(capsys, "processes", "import", str(merged_only), "--staff", OFFICER)
    assert code == 0 and "объединённые ячейки" in err
    with session_scope(lite) as session:
        rows_in = service.version_rows(service.get_version(session))
        assert [r.service_name for r in rows_in[:2]] == [GOOD[0][2], GOOD[0][2]]
    code, out, _ = cli(capsys, "processes", "validate", str(sheet(tmp_path / "ok.xlsx", GOOD)), "--json")
    assert code == 0 and json.loads(out) == {"rows": 4, "problems": []}


def test_start_from_the_catalogue(lite: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "start.xlsx"
    assert cli(capsys, "processes", "template", "--output", str(path), "--group", "4")[0] == 0
    code, out, _ = cli(capsys, "processes", "validate", str(path), "--json")
    report = json.loads(out)
    assert code == 1 and report["rows"] == 7
    # Only the department's own cells are missing: the service and the owner of each process.
    assert {(p["column"], p["problem"]) for p in report["problems"]} == {
        ("Название услуги, функции, сервиса", "не заполнена обязательная графа"),
        ("Ответственный за процесс", "не заполнена обязательная графа"),
    }
    assert len(report["problems"]) == 14
    code, out, _ = cli(capsys, "processes", "catalogue", "--json")
    catalogue = json.loads(out)
    assert [len(g["processes"]) for g in catalogue["groups"]] == [10, 7, 10, 7, 2, 26]


# Officer and statuses -------------------------------------------------------------------------------------------


def test_only_the_officer_changes_the_register(
    lite: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = sheet(tmp_path / "r.xlsx", GOOD)
    code, _, err = cli(capsys, "processes", "import", str(path), "--staff", OWNER)
    assert code == 1 and "только ответственный" in err
    assert cli(capsys, "processes", "import", str(path), "--staff", "OFFICER@Example.RU".lower())[0] == 0
    code, _, err = cli(
        capsys, "processes", "status", "4.5", "--to", "идет исследование", "--reason", "x", "--staff", OFFICER
    )
    assert code == 1 and "не утверждена" in err  # changes start from an approved version
    assert cli(capsys, "processes", "approve", "--staff", OWNER)[0] == 1
    assert cli(capsys, "processes", "approve", "--staff", OFFICER)[0] == 0
    assert cli(capsys, "processes", "approve", "--staff", OFFICER)[0] == 1  # already approved
    args = ("processes", "status", "4.5", "--reason", "Начато исследование", "--staff")
    assert cli(capsys, *args, OWNER, "--to", "идет исследование")[0] == 1
    code, _, err = cli(capsys, *args, OFFICER, "--to", "проходит реинжиниринг")
    assert code == 1 and "по порядку" in err
    code, _, err = cli(capsys, *args, OFFICER, "--to", "на паузе")
    assert code == 2 and "--to" in err
    code, out, _ = cli(capsys, *args, OFFICER, "--to", "идет исследование")
    assert code == 0 and "версия № 2" in out
    code, out, _ = cli(capsys, "processes", "show", "4.5", "--json")
    shown = json.loads(out)
    assert shown["row"]["status"] == "идет исследование"
    assert [(h["from"], h["to"], h["actor"], h["reason"]) for h in shown["history"]] == [
        (None, "queued_research", OFFICER, "Импорт файла r.xlsx"),
        ("queued_research", "researching", OFFICER, "Начато исследование"),
    ]
    with session_scope(lite) as session:
        assert service.get_version(session, 2).approved_by == OFFICER
    # The role decides, not the address: an officer whose account is disabled or whose role changed is refused.
    with session_scope(lite) as session:
        user = people.account(session, OFFICER)
        assert user is not None
        user.role = Role.operator.value
    with session_scope(lite) as session, pytest.raises(service.RegisterError, match="process_officer"):
        service.require_officer(session, OFFICER)
    # A wrong password is refused before anything is looked at.
    code, _, err = cli(capsys, "processes", "approve", "--staff", OFFICER, password="wrong password")
    assert code == 1 and "Неверный адрес учётной записи или пароль" in err


# Change requests by e-mail ---------------------------------------------------------------------------------------


def test_change_request_end_to_end(
    reg: Settings, sink: Sink, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start_register(reg, tmp_path)
    code, out, err = cli(
        capsys, "processes", "change-request", "status", "4.5", "--to", "идет исследование",
        "--staff", OWNER, "--grounds", "Жалобы на сроки ответа",
        "--approver", "Отдел кадров=hr@example.ru", "--approver", "legal@example.ru",
    )  # fmt: skip
    assert code == 0, err
    number = int(re.search(r"№ (\d+)", out).group(1))  # type: ignore[union-attr]
    drain(reg)
    asked = mails(sink, "просим согласовать")
    assert sorted(m["To"].addresses[0].addr_spec for m in asked) == ["hr@example.ru", "legal@example.ru"]
    links = {m["To"].addresses[0].addr_spec: approval_links(m) for m in asked}
    assert "Жалобы на сроки ответа" in text_of(asked[0]) and "идет исследование" in text_of(asked[0])
    http = client_for(reg)

    page = http.get(links["hr@example.ru"]["approve"])
    assert page.status_code == 200 and "Согласовать</button>" in page.text and "4.5" in page.text
    with session_scope(reg) as session:  # the GET (a scanner) decided nothing
        assert session.scalar(select(func.count(Approval.id)).where(Approval.decision.is_not(None))) == 0
    code, _, err = cli(capsys, "processes", "change-request", "apply", str(number), "--staff", OFFICER)
    assert code == 1 and "ещё не согласован" in err

    assert http.post(links["hr@example.ru"]["approve"], data={"comment": "Не возражаем"}).status_code == 200
    replay = http.post(links["hr@example.ru"]["approve"])
    assert replay.status_code == 400 and "уже принято" in replay.text
    other = http.post(links["hr@example.ru"]["object"])  # the other link of the same unit: also used up
    assert other.status_code == 400
    with session_scope(reg) as session:
        request = requests.get_request(session, number)
        assert request.state == "pending"
        assert [(a.email, a.decision, a.comment) for a in request.approvals] == [
            ("hr@example.ru", "approve", "Не возражаем"),
            ("legal@example.ru", None, ""),
        ]
    assert http.post(links["legal@example.ru"]["approve"]).status_code == 200
    drain(reg)
    [ready] = mails(sink, "согласован, ждёт решения")
    assert ready["To"].addresses[0].addr_spec == OFFICER
    assert f"change-request apply {number}" in text_of(ready)

    code, _, err = cli(capsys, "processes", "change-request", "apply", str(number), "--staff", OWNER)
    assert code == 1 and "только ответственный" in err
    code, out, err = cli(capsys, "processes", "change-request", "apply", str(number), "--staff", OFFICER)
    assert code == 0 and "версия реестра № 2" in out, err
    with session_scope(reg) as session:
        rows = service.version_rows(service.get_version(session, 2))
        assert next(r for r in rows if r.process_id == "4.5").status is Status.researching
        history = service.status_history(session, "4.5")
        assert (history[-1].actor, history[-1].from_status, history[-1].to_status) == (
            OFFICER, "queued_research", "researching")  # fmt: skip
        assert "Жалобы на сроки ответа" in history[-1].reason
        assert requests.get_request(session, number).applied_version_id == service.get_version(session, 2).id
    drain(reg)
    [told] = mails(sink, "внесён в реестр")
    assert told["To"].addresses[0].addr_spec == OWNER and "версию реестра № 2" in text_of(told)
    assert http.post(links["legal@example.ru"]["approve"]).status_code == 400  # used, and the request is closed
    code, _, err = cli(capsys, "processes", "change-request", "apply", str(number), "--staff", OFFICER)
    assert code == 1 and "уже рассмотрен" in err


def test_objection_and_rejection(
    lite: Settings, sink: Sink, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start_register(lite, tmp_path)
    code, out, err = cli(
        capsys, "processes", "change-request", "edit", "5.2", "--set", "owner=Кузнецова К. К.",
        "--staff", OWNER, "--grounds", "Смена ответственного",
        "--approver", "a@example.ru", "--approver", "b@example.ru",
    )  # fmt: skip
    assert code == 0, err
    number = int(re.search(r"№ (\d+)", out).group(1))  # type: ignore[union-attr]
    drain(lite)
    links = {m["To"].addresses[0].addr_spec: approval_links(m) for m in mails(sink, "просим")}
    assert "«Сидоров С. С.» → «Кузнецова К. К.»" in text_of(mails(sink, "просим")[0])
    http = client_for(lite)
    objection = http.get(links["a@example.ru"]["object"])
    assert objection.status_code == 200 and "Возразить</button>" in objection.text
    assert http.post(links["a@example.ru"]["object"], data={"comment": "Кузнецова в отпуске"}).status_code == 200
    assert http.post(links["b@example.ru"]["approve"]).status_code == 200
    with session_scope(lite) as session:
        assert requests.get_request(session, number).state == "objected"
    code, _, err = cli(capsys, "processes", "change-request", "apply", str(number), "--staff", OFFICER)
    assert code == 1 and "возражения" in err
    code, _, err = cli(capsys, "processes", "change-request", "reject", str(number), "--staff", OFFICER, "--reason", "")
    assert code == 1
    code, out, _ = cli(
        capsys,
        "processes",
        "change-request",
        "reject",
        str(number),
        "--staff",
        OFFICER,
        "--reason",
        "Возражение отдела",
    )
    assert code == 0
    code, out, _ = cli(capsys, "processes", "change-request", "show", str(number), "--json")
    shown = json.loads(out)
    assert shown["state"] == "rejected" and shown["approvals"][0]["comment"] == "Кузнецова в отпуске"
    drain(lite)
    [told] = mails(sink, "отклонён")
    assert "Причина отклонения: Возражение отдела" in text_of(told)
    [officer_note] = mails(sink, "есть возражения")  # told once, when the first objection came
    assert "Кузнецова в отпуске" in text_of(officer_note)
    with session_scope(lite) as session:
        assert session.scalar(select(func.count(RegisterVersion.id))) == 1  # nothing applied
    # Requests that break the rules are refused at once, before anyone is asked.
    code, _, err = cli(
        capsys, "processes", "change-request", "remove", "4.5", "--staff", OWNER, "--grounds", "x",
        "--approver", "a@example.ru",
    )  # fmt: skip
    assert code == 1 and "ссылаются" in err
    code, _, err = cli(
        capsys, "processes", "change-request", "add", "--set", "process_id=4.6", "--set", "service_name=Приём",
        "--set", "process_name=Личный прием граждан", "--set", "owner=Иванова А. А., начальник отдела",
        "--set", "status=в очереди на исследование",
        "--staff", OWNER, "--grounds", "Ведём личный приём", "--approver", "a@example.ru",
    )  # fmt: skip
    assert code == 0, err


def test_tampered_and_forged_links_change_nothing(lite: Settings, tmp_path: Path) -> None:
    start_register(lite, tmp_path)
    with session_scope(lite) as session:
        request = requests.submit_change_request(
            session, lite, kind=requests.RequestKind.status, process_id="4.1",
            proposal={"status": "queued_reengineering"},
            grounds="Исследование завершено", submitted_by=OWNER, approvers=[requests.Approver("a@example.ru")],
            now=utcnow(),
        )  # fmt: skip
        approval = request.approvals[0]
        good = requests.approval_token(lite, approval, "approve")
        forged_nonce = sign(lite, Purpose.process_approval, {"a": approval.id, "n": "0" * 32, "d": "approve"})
        wrong_purpose = sign(lite, Purpose.feedback, {"a": approval.id, "n": approval.nonce, "d": "approve"})
        bad_decision = sign(lite, Purpose.process_approval, {"a": approval.id, "n": approval.nonce, "d": "maybe"})
    flipped = good[:-2] + ("A" if good[-2] != "A" else "B") + good[-1]
    http = client_for(lite)
    for token in (flipped, forged_nonce, wrong_purpose, bad_decision, "x", good[: len(good) // 2]):
        for method in ("GET", "POST"):
            response = http.request(method, f"/processes/approval/{token}")
            assert response.status_code == 400 and "недействительна" in response.text
            assert response.headers["cache-control"] == "no-store"
    with session_scope(lite) as session:
        assert session.scalars(select(Approval)).one().decision is None
        assert session.scalars(select(ChangeRequest)).one().state == "pending"
        # The submission queued one e-mail per approver, in the same transaction.
        assert session.scalar(select(func.count(OutboxMessage.id)).where(OutboxMessage.kind == "process_approval")) == 1


# Live figures of group 4 -----------------------------------------------------------------------------------------


def at(day: str, hour: int = 10, minute: int = 0, tz: dt.tzinfo = NSK) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(hour=hour, minute=minute, tzinfo=tz)


D = dt.date.fromisoformat
# (received_at, registered_on, answered_at, due_date); worked out by hand below.
REQUESTS = [
    (at("2026-03-02"), D("2026-03-02"), at("2026-03-12", 15), D("2026-04-01")),  # A: March, 10 days
    (at("2026-03-31", 20, tz=dt.UTC), D("2026-04-01"), at("2026-04-21"), D("2026-05-01")),  # B: 01.04 local, 20 days
    (at("2026-03-10"), D("2026-03-10"), at("2026-04-10", 9), D("2026-04-09")),  # C: 31 days, late
    (at("2026-03-15"), D("2026-03-16"), at("2026-04-15", 16, 30, dt.UTC), D("2026-04-15")),  # D: 23:30 local, on time
    (at("2026-04-02"), D("2026-04-02"), None, D("2026-05-02")),  # E: not answered yet
    (at("2026-03-20"), None, None, None),  # F: anonymous, never registered
    (at("2026-04-01"), D("2026-04-01"), at("2026-04-30", 18, tz=dt.UTC), D("2026-05-01")),  # G: 01.05 local, 30 days
]
RATINGS = [(at("2026-03-12"), 5), (at("2026-03-31", 18, tz=dt.UTC), 2), (at("2026-04-20"), 4), (at("2026-04-25"), 4)]
EXPECTED = [
    # month, received, answered, median days, late, late share, feedback count, feedback average
    ("2026-03", 4, 1, 10.0, 0, 0.0, 1, 5.0),  # A, C, D, F received; A answered
    ("2026-04", 3, 3, 30.0, 1, 0.3333, 3, 3.33),  # B, E, G received; B 20, D 30, C 31 (late) answered
    ("2026-05", 0, 1, 30.0, 0, 0.0, 0, None),  # G answered on its due date
]


def _tuples(result: list[figures.MonthFigures]) -> list[tuple[object, ...]]:
    return [
        (m.month, m.received, m.answered, m.median_days, m.answered_late, m.late_share, m.feedback_count,
         m.feedback_average)
        for m in result
    ]  # fmt: skip


def test_figures_pure() -> None:
    facts = [figures.RequestFacts(*r) for r in REQUESTS]
    assert _tuples(figures.compute(facts, RATINGS, NSK)) == EXPECTED


# Registered late: the days count from the last lawful day of registration, as the due date does (RULES.md; 8-FZ
# art. 18, 59-FZ art. 8 p. 2: 3 days after receipt for a letter, the day itself for a call).
LATE = [
    # a letter received 06.04, registered 13.04 (lawful by 09.04), answered 24.04: 15 days, not 11
    (at("2026-04-06"), D("2026-04-13"), at("2026-04-24"), D("2026-05-09"), "post"),
    # a call on 06.04 entered on 08.04, answered 18.04: 12 days, not 10
    (at("2026-04-06"), D("2026-04-08"), at("2026-04-18"), D("2026-05-06"), "phone"),
]


def test_figures_count_from_the_terms_start_for_a_request_registered_late(reg: Settings) -> None:
    expected = [("2026-04", 2, 2, 13.5, 0, 0.0, 0, None)]  # median of 15 and 12
    assert _tuples(figures.compute([figures.RequestFacts(*r) for r in LATE], [], NSK)) == expected
    with session_scope(reg) as session:
        client = Client(name="Иванов И. И.")
        session.add(client)
        session.flush()
        for received_at, registered_on, answered_at, due_date, channel in LATE:
            session.add(
                Request(
                    client_id=client.id, channel=channel, status="answered", received_at=received_at,
                    registered_on=registered_on, answered_at=answered_at, due_date=due_date,
                )
            )  # fmt: skip
    with session_scope(reg) as session:
        assert _tuples(figures.group4_figures(session, reg)) == expected


def test_figures_from_the_request_register(reg: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert reg.timezone == "Asia/Novosibirsk"
    with session_scope(reg) as session:
        client = Client(name="Иванов И. И.")
        session.add(client)
        session.flush()
        for received_at, registered_on, answered_at, due_date in REQUESTS:
            session.add(
                Request(
                    client_id=client.id, channel="email", status="answered" if answered_at else "registered",
                    received_at=received_at, registered_on=registered_on, answered_at=answered_at, due_date=due_date,
                )
            )  # fmt: skip
        for created_at, rating in RATINGS:
            session.add(FeedbackResponse(created_at=created_at, source="survey", channel="email", rating=rating))
        # The anonymous site form's ratings are not part of the figures (issue 14).
        session.add(FeedbackResponse(created_at=RATINGS[0][0], source="site", channel="web", rating=1))
    with session_scope(reg) as session:
        assert _tuples(figures.group4_figures(session, reg)) == EXPECTED
    start_register(reg, tmp_path)
    code, out, _ = cli(capsys, "processes", "show", "4.1", "--json")
    assert code == 0
    assert [(m["month"], m["received"], m["median_days"]) for m in json.loads(out)["figures"]] == [
        (e[0], e[1], e[3]) for e in EXPECTED
    ]
    code, out, _ = cli(capsys, "processes", "show", "5.2", "--json")
    assert json.loads(out)["figures"] is None  # group 5: no request figures
    code, out, _ = cli(capsys, "processes", "show", "4.1")
    assert "2026-04: 3; 3; 30; 33.3%; 3.33 (3)" in out


# Publication -------------------------------------------------------------------------------------------------------


def test_public_part_and_open_data(lite: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with session_scope(lite) as session:
        assert publication.public_register(session, lite).rows == []
    start_register(lite, tmp_path)
    with session_scope(lite) as session:
        register = publication.public_register(session, lite)
    assert register.version == 1
    assert [(r.process_id, r.status, r.digital_access) for r in register.rows] == [
        ("4.1", "идет исследование", "ЕПГУ; сайт департамента"),
        ("5.2", "в очереди на реинжиниринг", "сайт департамента"),
    ]
    files = publication.open_data_files(
        register, {"inn": "5406000000", "creator": "ДИЗО НСО", "license": "CC BY 4.0"},
        today=dt.date(2026, 12, 1), base_url="https://example.ru/opendata/",
    )  # fmt: skip
    data_name = "data-20261201-structure-20261201.csv"
    assert set(files) == {data_name, "structure-20261201.csv", "meta.csv"}
    data = list(csv.reader(io.StringIO(files[data_name].decode("utf-8"))))
    assert data[0] == ["process_id", "service_name", "process_name", "process_group", "status", "digital_access"]
    assert [row[0] for row in data[1:]] == ["4.1", "5.2"]
    meta = dict(csv.reader(io.StringIO(files["meta.csv"].decode("utf-8"))))
    assert meta["identifier"] == "5406000000-reestr-processov" and meta["license"] == "CC BY 4.0"
    assert "Петров" not in files[data_name].decode("utf-8")  # owners are not published
    page = publication.markdown_page(register)
    assert "| 4.1 |" in page and "версия № 1" in page
    out_dir = tmp_path / "od"
    assert cli(capsys, "processes", "opendata", "--output", str(out_dir))[0] == 0
    assert (out_dir / "meta.csv").is_file()


def test_a_reply_by_mail_is_passed_on_not_counted(lite: Settings, sink: Sink, tmp_path: Path) -> None:
    from mailservice.inforequests.models import Request as CitizenRequest
    from mailservice.intake.pipeline import Outcome, Source, process_raw
    from tests.mailfactory import citizen_mail

    start_register(lite, tmp_path)
    with session_scope(lite) as session:
        request = requests.submit_change_request(
            session, lite, kind=requests.RequestKind.remove, process_id="5.2", proposal={},
            grounds="Функция передана подведомственному учреждению", submitted_by=OWNER,
            approvers=[requests.Approver("a@example.ru", "Отдел А")], now=utcnow(),
        )  # fmt: skip
        number = request.id
        asked_id = session.scalars(select(OutboxMessage.message_id).where(OutboxMessage.ref_id == number)).one()
    reply = citizen_mail(
        sender="a@example.ru", name="Отдел А", subject="Re: Реестр процессов", body="Согласовано, возражений нет.",
        in_reply_to=asked_id, references=[asked_id],
    )  # fmt: skip
    result = process_raw(lite, reply, Source("smtp", envelope_from="a@example.ru"), now=utcnow())
    assert result.outcome is Outcome.routed and f"№ {number}" in result.reason
    with session_scope(lite) as session:
        assert session.scalar(select(func.count(CitizenRequest.id))) == 0  # not a citizen's request
        assert requests.get_request(session, number).approvals[0].decision is None  # and not a decision
    drain(lite)
    [note] = mails(sink, "ответ по почте")
    assert note["To"].addresses[0].addr_spec == OFFICER and "Согласовано, возражений нет." in text_of(note)


def test_links_close_with_the_request(lite: Settings, tmp_path: Path) -> None:
    start_register(lite, tmp_path)
    with session_scope(lite) as session:
        request = requests.submit_change_request(
            session, lite, kind=requests.RequestKind.remove, process_id="5.2", proposal={}, grounds="x",
            submitted_by=OWNER, approvers=[requests.Approver("a@example.ru")], now=utcnow(),
        )  # fmt: skip
        token = requests.approval_token(lite, request.approvals[0], "approve")
        requests.reject_change_request(
            session, lite, number=request.id, actor=OFFICER, reason="Передумали", now=utcnow()
        )
    response = client_for(lite).post(f"/processes/approval/{token}")
    assert response.status_code == 400 and "уже рассмотрен" in response.text
    with session_scope(lite) as session:
        assert session.scalars(select(Approval)).one().decision is None


def test_two_first_imports_at_once_make_versions_one_and_two(reg: Settings, tmp_path: Path) -> None:
    # Before the first import there is no version row to lock: the register lock must still serialise them.
    path = sheet(tmp_path / "start.xlsx", GOOD)
    read = spreadsheet.read_file(path)
    barrier = threading.Barrier(2)
    numbers: list[int] = []
    errors: list[BaseException] = []

    def one_import() -> None:
        try:
            with session_scope(reg) as session:
                barrier.wait(timeout=30)
                outcome = service.import_register(
                    session, reg, read, actor=OFFICER, now=utcnow(), source_name=path.name
                )
                assert outcome.version is not None
                time.sleep(0.2)  # hold the transaction open while the other one tries
                numbers.append(outcome.version.number)
        except BaseException as exc:  # reported below: a thread's exception would otherwise vanish
            errors.append(exc)

    threads = [threading.Thread(target=one_import) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(numbers) == [1, 2]
    with session_scope(reg) as session:
        assert sorted(session.scalars(select(RegisterVersion.number))) == [1, 2]
