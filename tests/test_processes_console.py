"""The process register in the console (issue 18): officers by role, owners by account, a change of the form as a
change request, the difference between two versions, and the diff page in Chromium. Both databases where a database
is used; the diff and the form rules are pure."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import select

from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.processes import people, requests, service, spreadsheet
from mailservice.processes.catalogue import load_catalogue
from mailservice.processes.diff import diff_versions
from mailservice.processes.form import ColumnOp, FormError, change_form
from mailservice.processes.register import COLUMNS, row_values, validate
from mailservice.processes.requests import RequestKind
from mailservice.web.staff.auth import Role
from mailservice.web.staff.models import AuditEntry
from tests.browser import ARTIFACTS, chromium
from tests.console_support import add_staff, client_for, login
from tests.servers import Sink
from tests.test_processes import OFFICER, OWNER, people_of_the_register, start_register
from tests.test_processes_register import GOOD, raw

OTHER = "other@example.ru"  # an account linked to no owner cell


def rows_of(table: list[list[str]]) -> list[service.RowData]:
    return validate(raw(table), load_catalogue()).rows


# The form and the difference, pure ---------------------------------------------------------------------------------


def test_form_changes_follow_the_seed() -> None:
    added = change_form(COLUMNS, ColumnOp.add, title="Срок исполнения")
    assert [c.title for c in added][-1] == "Срок исполнения" and added[-1].code == "extra_1" and not added[-1].mandatory
    assert change_form(added, ColumnOp.add, title="Ещё графа")[-1].code == "extra_2"
    renamed = change_form(added, ColumnOp.rename, code="client", title="Получатель результата")
    client = next(c for c in renamed if c.code == "client")
    assert client.title == "Получатель результата" and "Клиент" in client.aliases  # old files still import
    owner = next(c for c in change_form(COLUMNS, ColumnOp.rename, code="owner", title="Владелец") if c.code == "owner")
    assert owner.mandatory and owner.heading == "Владелец*"
    assert "client" not in {c.code for c in change_form(COLUMNS, ColumnOp.remove, code="client")}
    for code in ("process_id", "service_name", "process_name", "owner", "status", "custom"):
        with pytest.raises(FormError, match="исключить нельзя"):
            change_form(COLUMNS, ColumnOp.remove, code=code)
    with pytest.raises(FormError, match="уже называется"):
        change_form(COLUMNS, ColumnOp.add, title="статус процесса*")  # loosely the same as a column's title
    with pytest.raises(FormError, match="уже называется"):
        change_form(renamed, ColumnOp.add, title="Клиент")  # a former title is kept as an alias
    with pytest.raises(FormError, match="нет графы"):
        change_form(COLUMNS, ColumnOp.rename, code="nope", title="x")


def test_diff_of_two_versions() -> None:
    before = rows_of(GOOD)
    changed = [list(r) for r in GOOD]
    changed[1][6] = "Кузнецова К. К."  # 4.5: owner
    changed[1][7] = "идет исследование"  # 4.5: status
    changed[2][1] = "Нужна справка о доходах"  # 5.2: life situation
    del changed[3]  # Д-1 removed
    changed.append(
        ["4.6", "", "Личный приём", "", "", "Личный прием граждан", "Иванова А. А.", "в очереди на исследование",
         "", "", "", "", "", "", "", ""]
    )  # fmt: skip
    after = rows_of(changed)
    form_b = change_form(change_form(COLUMNS, ColumnOp.add, title="Срок"), ColumnOp.rename, code="client", title="Кто")
    diff = diff_versions(before, COLUMNS, after, form_b)
    assert [r.process_id for r in diff.added] == ["4.6"] and [r.process_id for r in diff.removed] == ["Д-1"]
    assert [c.title for c in diff.columns_added] == ["Срок"] and diff.columns_removed == ()
    assert [(a.title, b.title) for a, b in diff.columns_renamed] == [("Клиент", "Кто")]
    cells = {(c.process_id, cell.code): (cell.old, cell.new) for c in diff.changed for cell in c.cells}
    assert cells == {
        ("4.5", "owner"): ("Петров П. П.", "Кузнецова К. К."),
        ("4.5", "status"): ("в очереди на исследование", "идет исследование"),
        ("5.2", "life_situation"): ("Нужна справка", "Нужна справка о доходах"),
    }
    assert diff.unchanged == 1 and not diff.empty
    assert diff_versions(before, COLUMNS, before, COLUMNS).empty
    # An excluded column shows its values as removed.
    removed = diff_versions(before, COLUMNS, before, change_form(COLUMNS, ColumnOp.remove, code="client"))
    assert [c.code for c in removed.columns_removed] == ["client"]
    assert {(c.process_id, cell.old, cell.new) for c in removed.changed for cell in c.cells} == {
        ("4.1", "гражданин", ""),
        ("4.5", "гражданин", ""),
        ("5.2", "организация", ""),
    }


# Owners and officers with a database -------------------------------------------------------------------------------


@pytest.fixture
def reg_settings(settings: Settings) -> Settings:
    """Both databases, with the officer's and the owner's accounts (tests.test_processes)."""
    people_of_the_register(settings)
    add_staff(settings, OTHER, Role.operator)
    return settings


def submit(settings: Settings, who: str, kind: RequestKind, process_id: str, proposal: dict[str, str]) -> int:
    with session_scope(settings) as session:
        request = requests.submit_change_request(
            session,
            settings,
            kind=kind,
            process_id=process_id,
            proposal=proposal,
            grounds="Основание",
            submitted_by=who,
            approvers=[requests.Approver("unit@example.ru", "Правовой отдел")],
            now=utcnow(),
        )
        return request.id


def agree_and_apply(settings: Settings, number: int) -> int:
    """The unit agrees through its link, the officer applies; returns the new version's number."""
    with session_scope(settings) as session:
        approval = requests.get_request(session, number).approvals[0]
        token = requests.approval_token(settings, approval, "approve")
    with session_scope(settings) as session:
        requests.record_decision(session, settings, token, comment="", ip="", now=utcnow())
    with session_scope(settings) as session:
        return requests.apply_change_request(session, settings, number=number, actor=OFFICER, now=utcnow()).number


def test_the_submitter_is_the_owner_s_account(reg_settings: Settings, tmp_path: Path) -> None:
    settings = reg_settings
    start_register(settings, tmp_path)
    edit = {"client_value": "быстрый ответ"}
    # 4.5's owner cell «Петров П. П.» is linked to OWNER: another account, even an officer's, is refused.
    for who in (OTHER, OFFICER, "nobody@example.ru"):
        with pytest.raises(service.RegisterError, match=r"владел|учётной запис"):
            submit(settings, who, RequestKind.change, "4.5", edit)
    number = submit(settings, OWNER, RequestKind.change, "4.5", edit)
    with session_scope(settings) as session:
        request = requests.get_request(session, number)
        owner = people.account(session, OWNER)
        assert owner is not None and (request.submitted_by, request.submitted_by_staff_id) == (OWNER, owner.id)
    # A new process: the owner cell it proposes must be the submitter's.
    new = {
        "process_id": "4.6",
        "service_name": "Личный приём",
        "process_name": "Личный прием граждан",
        "status": "в очереди на исследование",
    }
    with pytest.raises(service.RegisterError, match="Кузнецова"):
        submit(settings, OWNER, RequestKind.add, "", {**new, "owner": "Кузнецова К. К."})
    submit(settings, OWNER, RequestKind.add, "", {**new, "owner": "петров  п. п."})  # case and spaces do not matter
    # A disabled account is nobody's.
    with session_scope(settings) as session:
        user = people.account(session, OWNER)
        assert user is not None
        user.active = False
    with pytest.raises(service.RegisterError):
        submit(settings, OWNER, RequestKind.status, "4.5", {"status": "researching"})
    # Only the officer links owners; only an officer (by role) applies.
    with session_scope(settings) as session, pytest.raises(people.PeopleError, match="process_officer"):
        people.link_owner(session, owner="Кузнецова К. К.", staff_email=OTHER, actor=OTHER, now=utcnow())


def test_a_change_of_the_form_is_a_change_request(reg_settings: Settings, tmp_path: Path) -> None:
    settings = reg_settings
    start_register(settings, tmp_path)
    # Any owner (or an officer) may ask for a change of the form; an account owning nothing may not.
    with pytest.raises(service.RegisterError, match="изменении формы"):
        submit(settings, OTHER, RequestKind.columns, "", {"op": "add", "title": "Срок исполнения"})
    with pytest.raises(service.RegisterError, match="исключить нельзя"):
        submit(settings, OWNER, RequestKind.columns, "", {"op": "remove", "code": "owner"})
    added = agree_and_apply(
        settings, submit(settings, OWNER, RequestKind.columns, "", {"op": "add", "title": "Срок исполнения"})
    )
    assert added == 2
    filled = agree_and_apply(settings, submit(settings, OWNER, RequestKind.change, "4.5", {"extra_1": "30 дней"}))
    renamed = agree_and_apply(
        settings,
        submit(settings, OFFICER, RequestKind.columns, "", {"op": "rename", "code": "client", "title": "Получатель"}),
    )
    removed = agree_and_apply(
        settings, submit(settings, OWNER, RequestKind.columns, "", {"op": "remove", "code": "life_situation"})
    )
    assert (filled, renamed, removed) == (3, 4, 5)
    with session_scope(settings) as session:
        newest = service.get_version(session, 5)
        form = service.version_form(newest)
        titles = [c.heading for c in form]
        assert titles[-1] == "Срок исполнения" and "Получатель" in titles and "Жизненная ситуация" not in titles
        rows = {r.process_id: r for r in service.version_rows(newest)}
        assert dict(rows["4.5"].extra) == {"extra_1": "30 дней"}
        assert rows["5.2"].life_situation == ""  # excluded: emptied in the new version ...
        assert {r.process_id: r for r in service.version_rows(service.get_version(session, 4))}[
            "5.2"
        ].life_situation == "Нужна справка"  # ... and kept in the earlier one
        table = [row_values(r, form) for r in service.version_rows(newest)]
    # The export follows the version's form, and the file reads back with it.
    data = spreadsheet.write_xlsx(table, form)
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    assert sheet is not None
    header = [c.value for c in next(sheet.iter_rows(max_row=1))]
    assert header == titles
    read = spreadsheet.read_xlsx(io.BytesIO(data), form)
    assert [p for p in read.problems if p.severity == "error"] == []
    validated = validate(read.rows, load_catalogue(), form)
    assert validated.errors == [] and {r.process_id: dict(r.extra) for r in validated.rows}["4.5"] == {
        "extra_1": "30 дней"
    }


# The console ---------------------------------------------------------------------------------------------------------


def versions_with_a_difference(settings: Settings, tmp_path: Path) -> None:
    """Version 1 (GOOD); 2: cells of 4.5 changed; 3: 5.2 removed; 4: 4.6 added; 5: a new column."""
    start_register(settings, tmp_path)
    edit = {"client_value": "ответ без повторного визита", "output_result": "ответ в личном кабинете"}
    agree_and_apply(settings, submit(settings, OWNER, RequestKind.change, "4.5", edit))
    agree_and_apply(settings, submit(settings, OWNER, RequestKind.remove, "5.2", {}))
    new = {
        "process_id": "4.6",
        "service_name": "Личный приём граждан",
        "process_name": "Личный прием граждан",
        "owner": "Петров П. П.",
        "status": "в очереди на исследование",
    }
    agree_and_apply(settings, submit(settings, OWNER, RequestKind.add, "", new))
    agree_and_apply(settings, submit(settings, OWNER, RequestKind.columns, "", {"op": "add", "title": "Срок"}))


def test_console_pages_roles_csrf_and_audit(reg_settings: Settings, tmp_path: Path, sink: Sink) -> None:
    settings = reg_settings
    versions_with_a_difference(settings, tmp_path)
    add_staff(settings, "publisher@example.ru", Role.publisher)
    anonymous = client_for(settings)
    assert anonymous.get("/staff/processes").status_code == 303
    viewer = client_for(settings)
    login(viewer, "publisher@example.ru")
    listing = viewer.get("/staff/processes")
    assert listing.status_code == 200 and "№ 5" in listing.text
    diff = viewer.get("/staff/processes/diff?a=1&b=3")
    assert diff.status_code == 200
    assert "<del>5.2</del>" in diff.text and "<ins>ответ без повторного визита</ins>" in diff.text
    assert viewer.get("/staff/processes/diff?a=1&b=99").status_code == 404
    assert viewer.get("/staff/processes/owners").status_code == 403  # the officer's page
    version = viewer.get("/staff/processes/versions/5")
    assert version.status_code == 200 and '<th scope="col">Срок</th>' in version.text

    # The owner submits from the console; the page refuses another process with the reason.
    owner = client_for(settings)
    csrf = login(owner, OWNER)
    form = {
        "csrf_token": csrf,
        "kind": "status",
        "process_id": "4.1",
        "status": "queued_reengineering",
        "grounds": "Исследование завершено",
        "approvers": "Правовой отдел=unit@example.ru",
    }
    made = owner.post("/staff/processes/requests", data=form)
    assert made.status_code == 303, made.text
    number = int(re.search(r"/requests/(\d+)", made.headers["location"]).group(1))  # type: ignore[union-attr]
    other = client_for(settings)
    other_csrf = login(other, OTHER)
    refused = other.post("/staff/processes/requests", data={**form, "csrf_token": other_csrf})
    assert refused.status_code == 409 and "не связана" in refused.text
    assert owner.post("/staff/processes/requests", data={**form, "csrf_token": "x"}).status_code == 403

    # Only the officer applies; an owner's POST is refused by role, a missing token by CSRF.
    assert owner.post(f"/staff/processes/requests/{number}/apply", data={"csrf_token": csrf}).status_code == 403
    officer = client_for(settings)
    officer_csrf = login(officer, OFFICER)
    early = officer.post(f"/staff/processes/requests/{number}/apply", data={"csrf_token": officer_csrf})
    assert early.status_code == 409 and "ещё не согласован" in early.text
    with session_scope(settings) as session:
        token = requests.approval_token(settings, requests.get_request(session, number).approvals[0], "approve")
    with session_scope(settings) as session:
        requests.record_decision(session, settings, token, comment="", ip="", now=utcnow())
    shown = officer.get(f"/staff/processes/requests/{number}")
    assert "Внести в реестр" in shown.text and "согласован, ждёт решения" in shown.text
    assert officer.post(f"/staff/processes/requests/{number}/apply", data={}).status_code == 403
    applied = officer.post(f"/staff/processes/requests/{number}/apply", data={"csrf_token": officer_csrf})
    assert applied.status_code == 303
    with session_scope(settings) as session:
        assert service.latest_version(session).number == 6  # type: ignore[union-attr]
        entries = session.scalars(select(AuditEntry).where(AuditEntry.action.like("process_%"))).all()
        assert [(e.action, e.actor) for e in entries] == [
            ("process_request_submit", OWNER),
            ("process_request_apply", OFFICER),
        ]
    assert "внесён в реестр" in officer.get("/staff/processes/requests?state=applied").text

    # The officer links an owner cell to an account on the owners page.
    linked = officer.post(
        "/staff/processes/owners", data={"owner": "Кузнецова К. К.", "account": OTHER, "csrf_token": officer_csrf}
    )
    assert linked.status_code == 303
    with session_scope(settings) as session:
        assert people.owner_account(session, "КУЗНЕЦОВА К. К.").email == OTHER  # type: ignore[union-attr]


def test_diff_page_in_chromium(browser_settings: Settings, tmp_path: Path, live_url: str) -> None:
    """The console's register page showing a two-version difference, screenshot kept in tests/artifacts/."""
    settings = browser_settings
    people_of_the_register(settings)
    versions_with_a_difference(settings, tmp_path)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "processes-diff.png"
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{live_url}/staff/login?next=/staff/processes")
        page.fill("input[name=email]", OWNER)
        page.fill("input[name=password]", "correct horse battery staple")
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(r".*/staff/processes$"), timeout=15000)
        page.select_option("select[name=a]", "1")
        page.select_option("select[name=b]", "5")
        page.click("text=Показать разницу")
        page.wait_for_url(re.compile(r".*/staff/processes/diff\?a=1&b=5"), timeout=15000)
        assert page.locator("h1").inner_text() == "Реестр процессов: версия № 1 → версия № 5"
        assert page.locator("tr.added ins").first.inner_text() == "4.6"
        assert page.locator("del", has_text="ответ").first.inner_text() == "ответ"  # the old cell, struck out
        removed = page.locator("tr.removed del").first
        assert removed.inner_text() == "5.2"
        # Removed rows and old values are struck through and red; new values green.
        assert page.locator("tr.removed td.cell").first.evaluate("e => getComputedStyle(e).textDecorationLine") == (
            "line-through"
        )
        inserted = page.locator("ins", has_text="ответ без повторного визита")
        assert inserted.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(212, 244, 215)"
        assert page.locator("li", has_text="Добавлена графа").inner_text() == "Добавлена графа Срок"
        page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


def test_command_line_takes_the_actor_from_an_account(
    reg_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.test_processes import cli

    settings = reg_settings
    start_register(settings, tmp_path)
    column = ["processes", "change-request", "column", "--op", "add", "--title", "Срок исполнения"]
    tail = ["--grounds", "Контроль сроков", "--approver", "Правовой отдел=unit@example.ru"]
    code, _, err = cli(capsys, *column, "--staff", OTHER, *tail)
    assert code == 1 and "изменении формы" in err  # an account owning no process
    code, _, err = cli(capsys, *column, "--staff", OWNER, *tail, password="not the password")
    assert code == 1 and "Неверный адрес учётной записи или пароль" in err
    code, out, err = cli(capsys, *column, "--staff", OWNER, *tail)
    assert code == 0, err
    number = int(re.search(r"№ (\d+)", out).group(1))  # type: ignore[union-attr]
    with session_scope(settings) as session:
        assert requests.get_request(session, number).proposal == {"op": "add", "code": "", "title": "Срок исполнения"}
    # The officer links an owner cell; an owner may not.
    link = ["processes", "owner", "link", "Кузнецова К. К.", "--account", OTHER]
    code, _, err = cli(capsys, *link, "--staff", OWNER)
    assert code == 1 and "process_officer" in err
    assert cli(capsys, *link, "--staff", OFFICER)[0] == 0
    code, out, _ = cli(capsys, "processes", "owner", "list")
    assert f"Кузнецова К. К.\t{OTHER}" in out
    agree_and_apply(settings, number)
    code, out, _ = cli(capsys, "processes", "form", "--json")
    assert json.loads(out)[-1] == {"code": "extra_1", "title": "Срок исполнения", "mandatory": False}
    output = tmp_path / "export.csv"
    assert cli(capsys, "processes", "export", "--format", "csv", "--output", str(output))[0] == 0
    assert output.read_bytes().decode("utf-8-sig").splitlines()[0].endswith(",Срок исполнения")
