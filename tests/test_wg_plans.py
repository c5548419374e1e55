"""Plans, the road map, the progress report to the head (DOCX opened with python-docx, the PDF of the same document
read with pypdfium2), the protocol of disagreements, and expert groups reporting to the group (issue 18; seed 000
p. 3, seed 002 p. 10). Both databases."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pypdfium2
import pytest
from docx import Document
from sqlalchemy import select

from mailservice.blobs import BlobStore
from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.web.staff.auth import Role
from mailservice.web.staff.models import AuditEntry
from mailservice.workgroup import groups, instructions, meetings, plans, reports, service, signing, voting
from mailservice.workgroup.models import WgAgendaItem, WgGroup, WgMember, WgReport
from mailservice.workgroup.service import WorkgroupError
from mailservice.workgroup.tally import Choice
from tests.console_support import add_staff, login
from tests.servers import Sink
from tests.test_wg_helpers import (
    ADDRESSES,
    Clock,
    attachments,
    client,
    drain,
    mail_to,
    make_group,
    text_of,
    working_days_ahead,
)
from tests.test_wg_instructions import held_meeting, sign


def docx_lines(data: bytes) -> tuple[list[str], list[list[str]]]:
    """Paragraph texts and table rows of a DOCX, read back with python-docx."""
    document = Document(io.BytesIO(data))
    rows = [[c.text for c in row.cells] for table in document.tables for row in table.rows]
    return [p.text for p in document.paragraphs], rows


def letters(text: str) -> str:
    """Text without white space: a narrow table column of a PDF breaks a long word where the page did."""
    return "".join(text.split())


def pdf_letters(data: bytes) -> str:
    """The text of a PDF read with pdfium (a reader independent of the writer), without white space."""
    document = pypdfium2.PdfDocument(data)
    try:
        return letters(" ".join(page.get_textpage().get_text_range() for page in document))
    finally:
        document.close()


def assert_same_text(docx: bytes, pdf: bytes) -> None:
    """Every paragraph and every table cell of the DOCX reads in the PDF too (one document, two renderings)."""
    paragraphs, rows = docx_lines(docx)
    text = pdf_letters(pdf)
    for piece in [*paragraphs, *(value for row in rows for value in row)]:
        assert letters(piece) in text, piece


def expert_meeting(settings: Settings, clock: Clock, group_id: int) -> None:
    """A meeting of the expert group from agenda to signed minutes (its chair presides)."""
    with session_scope(settings) as session:
        group = session.get(WgGroup, group_id)
        assert group is not None
        people = {}
        for role, (name, address) in {
            "chair": ("Белова Ольга Викторовна", "belova@wg.example.ru"),
            "secretary": ("Гусев Антон Ильич", "gusev@wg.example.ru"),
            "member": ("Жукова Ирина Петровна", "zhukova@wg.example.ru"),
        }.items():
            people[role] = groups.add_member(
                session, settings, group, name=name, email=address, role=role, verified=True, now=clock.now, actor="t"
            )
        start = working_days_ahead(settings, clock.now, 7)
        meeting = meetings.create_meeting(
            session, settings, group, starts_at=start, form="in_person", now=clock.now, actor="t"
        )
        item = meetings.add_item(session, meeting, title="О методике оценки", now=clock.now, actor="t")
        meetings.submit_agenda(session, settings, meeting, now=clock.now, actor="t")
        meetings.approve_agenda(session, settings, meeting, people["chair"], now=clock.now, how="cli")
        meetings.send_agenda(session, settings, meeting, now=clock.now, actor="t")
        for person in people.values():
            voting.record_attendance(session, meeting, person, "in_person", now=start, actor="t")
            voting.record_vote(session, settings, meeting, item, person, Choice.for_, now=start, actor="t")
        voting.finish_meeting(session, settings, meeting, now=start + dt.timedelta(hours=1), actor="t")
        signing.draft_minutes(session, settings, meeting, now=start, actor="t")
        (signature,) = signing.request_signatures(session, settings, meeting, now=start, actor="t")
        signing.sign_minutes(session, settings, signature, now=start + dt.timedelta(hours=2), method="cli")


def test_plan_road_map_report_to_the_head_and_sub_groups(settings: Settings, sink: Sink) -> None:
    clock = Clock(utcnow())
    people = make_group(settings, clock.now)
    plan_start = clock.now.astimezone(settings.tz).date()
    meeting_id, item_id = held_meeting(settings, clock, people, title="Об утверждении плана работ на 2027 год")
    with session_scope(settings) as session:
        group = groups.get_group(session, "kc")
        meeting = meetings.get_meeting(session, meeting_id)
        day = service.meeting_day(settings, meeting)
        decision_item = session.get(WgAgendaItem, item_id)
        assert decision_item is not None
        roadmap = plans.add_roadmap_item(
            session,
            group,
            code="3.1",
            title="Внедрить опрос удовлетворённости заявителей",
            act="приказ департамента от 28.09.2023 № 3047",
            due=day + dt.timedelta(days=90),
            now=clock.now,
            actor="t",
        )
        plan = plans.create_plan(
            session,
            group,
            title="План работ рабочей группы на 2027 год",
            period_start=plan_start,
            period_end=plan_start + dt.timedelta(days=365),
            now=clock.now,
            actor="t",
        )
        survey = plans.add_plan_item(
            session,
            plan,
            title="Разработать анкету обратной связи",
            owner="Отдел информационной политики",
            due=day + dt.timedelta(days=20),
            roadmap=roadmap,
            now=clock.now,
            actor="t",
        )
        training = plans.add_plan_item(
            session,
            plan,
            title="Провести обучение сотрудников",
            owner_member=session.get(WgMember, people.m2),
            due=day + dt.timedelta(days=10),
            now=clock.now,
            actor="t",
        )
        with pytest.raises(WorkgroupError, match="вне периода"):
            plans.add_plan_item(
                session, plan, title="x", owner="y", due=plan_start - dt.timedelta(days=1), now=clock.now, actor="t"
            )
        # A decision whose minutes are not signed yet does not approve a plan.
        with pytest.raises(WorkgroupError, match="не подписан"):
            plans.approve_plan(session, plan, decision_item, now=clock.now, actor="t")
        instructions.give(
            session,
            settings,
            meeting,
            decision_item,
            member=session.get(WgMember, people.m1),
            text="Согласовать анкету с правовым отделом.",
            expected_result="Анкета согласована.",
            due_wd=5,
            now=clock.now,
            actor="t",
        )
        plan_id, survey_id = plan.id, survey.id
        assert training.owner == ADDRESSES["m2"][0]
    sign(settings, clock, meeting_id)
    with session_scope(settings) as session:
        group = groups.get_group(session, "kc")
        plan = plans.get_plan(session, plan_id)
        decision_item = session.get(WgAgendaItem, item_id)
        survey_row = session.get(plans.WgPlanItem, survey_id)
        assert decision_item is not None and survey_row is not None
        decision = plans.approve_plan(session, plan, decision_item, now=clock.now, actor="t")
        assert decision.reference == "протокол № 1, вопрос № 1"
        with pytest.raises(WorkgroupError, match="новый план"):
            plans.add_plan_item(session, plan, title="x", owner="y", due=day, now=clock.now, actor="t")
        plans.update_plan_item(session, survey_row, state="done", note="Анкета готова", now=clock.now, actor="t")
        plans.update_roadmap_item(
            session,
            group,
            plans.roadmap_item(session, group, "3.1"),
            state="done",
            result="Опрос запущен на сайте",
            agreed_by=session.get(WgAgendaItem, item_id),
            now=clock.now,
            actor="t",
        )
        expert = reports.create_subgroup(
            session,
            group,
            slug="kc-expert",
            title="Экспертная группа по обратной связи",
            kind="expert_group",
            formed_by=session.get(WgAgendaItem, item_id),  # type: ignore[arg-type]
            now=clock.now,
            actor="t",
        )
        assert (expert.parent_id, expert.profile, expert.kind) == (group.id, group.profile, "expert_group")
        expert_id = expert.id
    expert_meeting(settings, clock, expert_id)
    drain(settings)
    # The expert group reports to the group: its signed minutes reach the group's chair and secretary.
    for officer in ("chair", "secretary"):
        copies = [
            m for m in mail_to(sink, ADDRESSES[officer][1], "Протокол") if "Экспертная группа" in str(m["Subject"])
        ]
        assert copies, f"the {officer} got no copy of the expert group's minutes"
        assert any(name.endswith(".docx") for name in attachments(copies[0]))

    # The progress report, forty days after the meeting: the training item is overdue, the survey done.
    clock.now = clock.now + dt.timedelta(days=40)
    with session_scope(settings) as session:
        group = groups.get_group(session, "kc")
        report = reports.progress_report(
            session,
            settings,
            group,
            start=plan_start,
            end=plan_start + dt.timedelta(days=60),
            now=clock.now,
            actor="t",
        )
        report_id = report.id
        store = BlobStore(settings.blob_dir)
        docx, pdf = store.get(report.docx_sha256), store.get(report.pdf_sha256)
    paragraphs, rows = docx_lines(docx)
    assert "ДОКЛАД" in paragraphs and "о ходе внедрения клиентоцентричности в департаменте" in paragraphs
    # The PDF is the same document: the title, a decision's row, a plan item's state read there too.
    assert_same_text(docx, pdf)
    assert letters("ДОКЛАД о ходе внедрения клиентоцентричности в департаменте") in pdf_letters(pdf)
    assert letters("Разработать анкету обратной связи") in pdf_letters(pdf)
    assert "Проведено заседаний (письменных опросов): 1." in paragraphs
    assert any(
        r[:3] == [f"№ 1 от {day:%d.%m.%Y}", "1", "Об утверждении плана работ на 2027 год"] and "решение принято" in r[4]
        for r in rows
    )
    assert any(
        p.startswith("План работ рабочей группы на 2027 год") and "протокол № 1, вопрос № 1" in p for p in paragraphs
    )
    assert "Выполнено пунктов: 1 из 2; просрочено: 1." in " ".join(paragraphs)
    assert ["1", "Разработать анкету обратной связи", "Отдел информационной политики"] == rows[
        next(i for i, r in enumerate(rows) if r[1] == "Разработать анкету обратной связи")
    ][:3]
    survey_cells = next(r for r in rows if r[1] == "Разработать анкету обратной связи")
    assert survey_cells[4:] == ["выполнено", "3.1", "Анкета готова"]
    training_row = next(r for r in rows if r[1] == "Провести обучение сотрудников")
    assert training_row[2] == ADDRESSES["m2"][0] and training_row[4] == "просрочено"
    assert ["3.1", "Внедрить опрос удовлетворённости заявителей"] == next(r for r in rows if r[0] == "3.1")[:2]
    assert next(r for r in rows if r[0] == "3.1")[3:] == [
        "выполнено",
        "Опрос запущен на сайте",
        "протокол № 1, вопрос № 1",
    ]
    assert any("Дано поручений на заседаниях периода: 1" in p for p in paragraphs)
    assert any(r[0] == "Согласовать анкету с правовым отделом." and r[3] == "просрочено" for r in rows)
    assert ["экспертная группа", "Экспертная группа по обратной связи", "1", "1"] in rows

    # Sent by the secretary from the console to the head of the department, with the DOCX and the PDF attached.
    secretary_email = ADDRESSES["secretary"][1]
    add_staff(settings, secretary_email, Role.operator)
    add_staff(settings, "outsider@dizo.test", Role.operator)
    http = client(settings, clock)
    csrf = login(http, secretary_email)
    with session_scope(settings) as session:
        group_id = groups.get_group(session, "kc").id
    page = http.get(f"/staff/wg/groups/{group_id}")
    assert page.status_code == 200 and "План работ рабочей группы на 2027 год" in page.text
    outsider = client(settings, clock)
    login(outsider, "outsider@dizo.test")
    assert outsider.get(f"/staff/wg/groups/{group_id}").status_code == 403
    assert outsider.get(f"/staff/wg/reports/{report_id}.docx").status_code == 403
    refused = http.post(f"/staff/wg/reports/{report_id}/send", data={"csrf_token": csrf})
    assert refused.status_code == 409 and "Не указан руководитель" in refused.text
    head = {"name": "Руководитель департамента Степанов С. С.", "email": "head@example.ru", "csrf_token": csrf}
    assert http.post(f"/staff/wg/groups/{group_id}/head", data=head).status_code == 303
    assert http.post(f"/staff/wg/reports/{report_id}/send", data={"csrf_token": csrf}).status_code == 303
    assert http.post(f"/staff/wg/reports/{report_id}/send", data={"csrf_token": csrf}).status_code == 409  # once
    drain(settings)
    (letter,) = mail_to(sink, "head@example.ru", "Доклад о ходе внедрения")
    files = attachments(letter)
    assert sorted(files) == [f"doklad-{report_id}.docx", f"doklad-{report_id}.pdf"]
    ctype, data = files[f"doklad-{report_id}.docx"]
    assert ctype.strip().startswith("application/vnd.openxmlformats") and data == docx
    pdf_type, pdf_data = files[f"doklad-{report_id}.pdf"]
    assert pdf_type.strip().startswith("application/pdf") and pdf_data == pdf
    assert "Документ приложен к письму в двух форматах: DOCX и PDF." in text_of(letter)
    download = http.get(f"/staff/wg/reports/{report_id}.docx")
    assert download.status_code == 200 and download.content == data
    pdf_download = http.get(f"/staff/wg/reports/{report_id}.pdf")
    assert pdf_download.status_code == 200 and pdf_download.content == pdf
    assert pdf_download.headers["content-type"] == "application/pdf"
    assert outsider.get(f"/staff/wg/reports/{report_id}.pdf").status_code == 403
    assert f"/staff/wg/reports/{report_id}.pdf" in http.get(f"/staff/wg/groups/{group_id}").text
    # README "What is logged": files downloaded (the two allowed downloads, not the refused ones).
    with session_scope(settings) as session:
        logged = session.scalars(select(AuditEntry).where(AuditEntry.action == "wg_report_download")).all()
        assert sorted((a.object_id, a.details["format"]) for a in logged) == [(report_id, "docx"), (report_id, "pdf")]
    with session_scope(settings) as session:
        sent = session.get(WgReport, report_id)
        assert sent is not None and sent.sent_to == "head@example.ru" and sent.sent_at is not None


def test_protocol_of_disagreements(settings: Settings, sink: Sink) -> None:
    clock = Clock(utcnow())
    people = make_group(settings, clock.now)
    meeting_id, _item_id = held_meeting(settings, clock, people, title="О порядке приёма обращений")
    secretary_email = ADDRESSES["secretary"][1]
    add_staff(settings, secretary_email, Role.operator)
    http = client(settings, clock)
    csrf = login(http, secretary_email)
    url = f"/staff/wg/meetings/{meeting_id}/disagreements"
    form = {
        "csrf_token": csrf,
        "item": "1",
        "subject": "Срок ответа на обращения, поступившие по почте",
        "party_1": "Отдел по работе с обращениями",
        "position_1": "Отвечать в течение 30 дней со дня регистрации.",
        "party_2": "Правовой отдел",
        "position_2": "Отвечать | в течение 15 дней.",
        "proposal": "Установить срок 15 дней приказом.",
    }
    # Before the meeting is held nothing is recorded.
    early = http.post(url, data=form)
    assert early.status_code == 409 and "проведённого заседания" in early.text
    with session_scope(settings) as session:
        voting.finish_meeting(session, settings, meetings.get_meeting(session, meeting_id), now=clock.now, actor="t")
    one_sided = http.post(url, data={**form, "party_2": "", "position_2": ""})
    assert one_sided.status_code == 409 and "не менее двух сторон" in one_sided.text
    assert http.post(url, data=form).status_code == 303
    with session_scope(settings) as session:
        (report,) = reports.reports_of(session, groups.get_group(session, "kc"))
        assert report.kind == "disagreements"
        store = BlobStore(settings.blob_dir)
        docx, pdf = store.get(report.docx_sha256), store.get(report.pdf_sha256)
    paragraphs, rows = docx_lines(docx)
    assert_same_text(docx, pdf)
    assert letters("ПРОТОКОЛ РАЗНОГЛАСИЙ") in pdf_letters(pdf)
    assert letters("Отвечать / в течение 15 дней.") in pdf_letters(pdf)
    assert "ПРОТОКОЛ РАЗНОГЛАСИЙ" in paragraphs
    assert "Вопрос повестки № 1: О порядке приёма обращений" in paragraphs
    assert "Срок ответа на обращения, поступившие по почте" in paragraphs
    assert ["1", "Отдел по работе с обращениями", "Отвечать в течение 30 дней со дня регистрации."] in rows
    assert ["2", "Правовой отдел", "Отвечать / в течение 15 дней."] in rows  # a "|" cannot split a cell
    assert any("для принятия руководящего решения" in p for p in paragraphs)
    assert ["Председательствующий", ADDRESSES["chair"][0], ""] in rows


def test_the_command_line(settings: Settings, sink: Sink, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from mailservice.cli import main

    clock = Clock(utcnow())
    people = make_group(settings, clock.now)
    meeting_id, _item_id = held_meeting(settings, clock, people)
    petrov = ADDRESSES["m1"][1]
    give = ["wg", "instruction", "give", str(meeting_id), "--item", "1", "--text", "Подготовить справку"]
    assert main([*give, "--result", "Справка", "--member", petrov, "--days", "5"]) == 0
    assert main([*give, "--result", "Справка", "--member", "nobody@example.ru", "--days", "5"]) == 1
    assert "нет участника" in capsys.readouterr().err
    assert main(["wg", "instruction", "list", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["assignee"], row["state"], row["sent"]) == (ADDRESSES["m1"][0], "assigned", False)
    assert main(["wg", "instruction", "list", "--state", "bogus"]) == 2
    output = tmp_path / "doklad.docx"
    today = clock.now.astimezone(settings.tz).date()
    period = ["--start", today.isoformat(), "--end", (today + dt.timedelta(days=30)).isoformat()]
    assert main(["wg", "report", "progress", "kc", *period, "--output", str(output)]) == 0
    paragraphs, rows = docx_lines(output.read_bytes())
    assert "ДОКЛАД" in paragraphs and any(r[0] == "Подготовить справку" for r in rows)
    pdf_output = tmp_path / "doklad.pdf"
    assert main(["wg", "report", "progress", "kc", *period, "--output", str(pdf_output)]) == 0
    assert pdf_output.read_bytes().startswith(b"%PDF-")
    assert letters("ДОКЛАД о ходе внедрения") in pdf_letters(pdf_output.read_bytes())
    assert letters("Подготовить справку") in pdf_letters(pdf_output.read_bytes())
    assert main(["wg", "report", "send", "1"]) == 1  # no head of the department yet
    assert "Не указан руководитель" in capsys.readouterr().err
