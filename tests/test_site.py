"""The disclosure site: schema, `site check` on broken fixtures, statistics from a real database, the build with
and without a database, no external references, open data, QR codes, scaffolding and atomic publishing."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import png
import pytest
import qrcode
import qrcode.constants
from bs4 import BeautifulSoup
from sqlalchemy import select

from mailservice.cli import main
from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.inforequests import service
from mailservice.inforequests.lifecycle import Channel, Status
from mailservice.publishing.build import BuildError, build_site, publish_site
from mailservice.publishing.checks import check_pages, check_site, resolve_link, split_front_matter
from mailservice.publishing.generated import feedback_url, md_text
from mailservice.publishing.notify import draft_campaigns, start_campaigns
from mailservice.publishing.qr import qr_png, qr_svg
from mailservice.publishing.scaffold import create_document, slugify
from mailservice.publishing.schema import PLACEHOLDER, SchemaError, load_schema, parse_schema
from mailservice.publishing.stats import RequestRow, SiteData, load_site_data, quarter_statistics
from tests.conftest import make_env, reset_caches

SITE = Path(__file__).resolve().parents[1] / "mailservice" / "site"
TODAY = dt.date(2026, 11, 25)
BUILT_AT = dt.datetime(2026, 11, 25, 5, 0, tzinfo=dt.UTC)
EMPTY = SiteData(generated_at=BUILT_AT)


# Fixtures ------------------------------------------------------------------------------------------------------

_FILLED = {
    "adopted": "2026-01-15",
    "number": '"12-н"',
    "responsible": "отдел организационной и кадровой работы",
}


def fill_placeholders(text: str) -> str:
    """What staff do before publishing: every placeholder replaced by a real value of the right type."""
    for field, value in _FILLED.items():
        text = re.sub(rf"^({field}:\s*){PLACEHOLDER}\s*$", rf"\g<1>{value}", text, flags=re.MULTILINE)
    return text.replace(PLACEHOLDER, "заполнено")


def complete_site(root: Path) -> Path:
    """A copy of the real site with every placeholder filled and one document in each empty section."""
    site = root / "site"
    shutil.copytree(SITE, site, ignore=shutil.ignore_patterns("__pycache__"))
    schema = load_schema(site)
    extra: dict[str, dict[str, object]] = {
        "activity": {"kind": "отчёт"},
        "personnel": {"kind": "вакансия", "valid_until": dt.date(2027, 1, 31)},
        "services": {"electronic": True},
    }
    for key, values in extra.items():
        section = schema.by_key(key)
        assert section is not None
        create_document(
            site / "docs", section, f"Тестовый документ раздела {section.title}", today=TODAY, values=values
        )
    for path in [*site.rglob("*.md"), site / "mkdocs.yml"]:
        path.write_text(fill_placeholders(path.read_text(encoding="utf-8")), encoding="utf-8")
    return site


@pytest.fixture
def good_site(tmp_path: Path) -> Path:
    site = complete_site(tmp_path)
    assert check_site(site, today=TODAY) == []
    return site


def messages(site: Path) -> list[str]:
    return [str(p) for p in check_site(site, today=TODAY)]


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


# Schema ---------------------------------------------------------------------------------------------------------


def test_real_schema_lists_every_section_the_rules_require() -> None:
    schema = load_schema(SITE)
    keys = [s.key for s in schema.sections]
    assert keys == [
        "general", "activity", "legal_acts", "personnel", "services", "requests",
        "statistics", "subscription", "feedback", "workgroup", "processes",
    ]  # fmt: skip
    assert all(s.required for s in schema.sections)
    legal = schema.by_key("legal_acts")
    assert legal is not None and legal.fields["number"].is_required({"kind": "принят"})
    assert not legal.fields["number"].is_required({"kind": "проект"})
    assert {m.key for m in schema.mailing_lists} >= {"news"}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, "нет списка sections"),
        ({"sections": [{"key": "a", "dir": "a"}]}, "нужны key, dir и title"),
        ({"sections": [{"key": "a", "dir": "a", "title": "A"}, {"key": "a", "dir": "b", "title": "B"}]}, "уникальны"),
        ({"sections": [{"key": "a", "dir": "a", "title": "A", "fields": {"x": {"type": "colour"}}}]}, "укажите type"),
        ({"sections": [{"key": "a", "dir": "a", "title": "A", "mailing_list": "nope"}]}, "не описана"),
    ],
)
def test_malformed_schema_is_refused_with_where(data: object, expected: str) -> None:
    with pytest.raises(SchemaError, match=expected):
        parse_schema(data)


# site check --------------------------------------------------------------------------------------------------------


def test_shipped_site_fails_check_only_on_what_staff_must_fill_in() -> None:
    problems = messages(SITE)
    # Unknown facts are marked, never invented: the street address, hours, e-mail, INN.
    assert "docs/kak-zaprosit-informatsiyu/index.md: строка 15: в тексте остался маркер ЗАПОЛНИТЬ" in problems
    assert "mkdocs.yml: не заполнено поле extra.opendata.inn" in problems
    assert "docs/pravovye-akty/poryadok-vzaimodeystviya-s-klientom.md: не заполнено поле number" in problems
    assert any("«Кадровое обеспечение» пуст" in p for p in problems)
    rest = [p for p in problems if PLACEHOLDER not in p and "не заполнено" not in p and "пуст" not in p]
    assert rest == []


def test_complete_site_passes_check(good_site: Path) -> None:
    assert check_site(good_site, today=TODAY) == []


def test_empty_required_section_is_named(good_site: Path) -> None:
    for page in (good_site / "docs" / "kadry").glob("*.md"):
        if page.name != "index.md":
            page.unlink()
    shutil.rmtree(good_site / "docs" / "reestr-protsessov")
    text = (good_site / "docs" / "podpiska" / "index.md").read_text(encoding="utf-8")
    meta_end = text.index("---", 3) + 4
    (good_site / "docs" / "podpiska" / "index.md").write_text(text[:meta_end], encoding="utf-8")
    problems = messages(good_site)
    assert "docs/kadry/: обязательный раздел «Кадровое обеспечение» пуст: в нём нет ни одного документа" in problems
    assert (
        "docs/reestr-protsessov/: обязательный раздел «Реестр процессов» отсутствует: нет страницы "
        "reestr-protsessov/index.md" in problems
    )
    assert (
        "docs/podpiska/: обязательный раздел «Подписка на рассылку» пуст: у страницы podpiska/index.md нет текста"
        in problems
    )
    # The home page's link to the removed section is broken too, and named.
    assert any(
        p.startswith("docs/index.md: строка ") and "reestr-protsessov/index.md ведёт на несуществующий" in p
        for p in problems
    )
    assert len(problems) == 4


def test_bad_front_matter_is_named_field_by_field(good_site: Path) -> None:
    act = good_site / "docs" / "pravovye-akty" / "prikaz-2018-11-06-4601.md"
    edit(act, "adopted: 2018-11-06", "adopted: 06.11.2018")
    edit(act, "kind: принят", "kind: утверждён")
    edit(act, "responsible: отдел организационной и кадровой работы\n", "")
    edit(act, "category: legal_acts", "category: personnel")
    edit(act, "number:", "nomer: 1\nnumber:")
    page = good_site / "docs" / "pravovye-akty" / "postanovlenie-2009-12-29-490-pa.md"
    edit(page, "review_by: 2027-11-25", "review_by: 2026-11-24")
    broken = good_site / "docs" / "rabochaya-gruppa" / "polozhenie-o-rabochey-gruppe.md"
    edit(broken, "title: Положение", "title: [Положение")
    problems = messages(good_site)
    where = "docs/pravovye-akty/prikaz-2018-11-06-4601.md: "
    assert where + "поле adopted (Дата принятия) должно быть датой в виде ГГГГ-ММ-ДД, а не '06.11.2018'" in problems
    assert where + "поле kind (Статус акта): недопустимое значение 'утверждён'; допустимо: проект, принят" in problems
    assert where + "нет обязательного поля responsible (Ответственное подразделение)" in problems
    assert (
        where + "поле category должно быть 'legal_acts' для страниц папки pravovye-akty/ (сейчас 'personnel')"
        in problems
    )
    assert (
        "docs/pravovye-akty/postanovlenie-2009-12-29-490-pa.md: пропущена дата пересмотра (review_by: 24.11.2026): "
        "обновите страницу и дату или снимите её с публикации" in problems
    )
    assert any(p.startswith("docs/rabochaya-gruppa/polozhenie-o-rabochey-gruppe.md: ошибка YAML") for p in problems)
    # The workgroup lost its only document to the YAML error: the empty section is named too.
    assert any("«Рабочая группа по клиентоцентричности» пуст" in p for p in problems)
    assert len(problems) == 8


def test_conditional_fields_and_review_date(good_site: Path) -> None:
    vacancy = next(p for p in (good_site / "docs" / "kadry").glob("*.md") if p.name != "index.md")
    edit(vacancy, "valid_until: 2027-01-31\n", "")
    act = good_site / "docs" / "pravovye-akty" / "prikaz-2018-11-06-4601.md"
    edit(act, 'number: "4601"\n', "")
    draft = good_site / "docs" / "pravovye-akty" / "postanovlenie-2009-12-29-490-pa.md"
    edit(draft, "kind: принят", "kind: проект")
    edit(draft, "number: 490-па\n", "")  # a draft has no number yet: fine
    problems = messages(good_site)
    rel = vacancy.relative_to(good_site).as_posix()
    assert f"{rel}: нет обязательного поля valid_until (Действует до)" in problems
    assert "docs/pravovye-akty/prikaz-2018-11-06-4601.md: нет обязательного поля number (Номер)" in problems
    assert len(problems) == 2
    # An expired vacancy must come down.
    edit(vacancy, "kind: вакансия", "kind: вакансия\nvalid_until: 2026-10-01")
    assert any("срок действия истёк (valid_until: 01.10.2026)" in p for p in messages(good_site))


def test_broken_links_attachments_and_images_are_named(good_site: Path) -> None:
    page = good_site / "docs" / "obshchaya-informatsiya" / "index.md"
    body = page.read_text(encoding="utf-8")
    body += (
        "\n[Отчёт](../deyatelnost/net-takogo.md) и [статистика](../statistika/index.md#itogi)\n"
        "[внешняя](https://example.ru/x) [почта](mailto:info@example.ru) [якорь](#kontakty)\n"
        "![](schema.png)\n"
        '<img src="../stylesheets/extra.css">\n'
        "```\n[в коде](nowhere.md)\n```\n"
        "[ссылка]: ../kadry/\n"
    )
    page.write_text(body, encoding="utf-8")
    act = good_site / "docs" / "pravovye-akty" / "prikaz-2018-11-06-4601.md"
    edit(
        act,
        "review_by: 2027-11-25",
        "review_by: 2027-11-25\nattachments:\n  - file: files/prikaz.pdf\n    title: Приказ",
    )
    problems = messages(good_site)
    where = "docs/obshchaya-informatsiya/index.md: "
    lines = len(body.splitlines())
    assert (
        where + f"строка {lines - 7}: ссылка ../deyatelnost/net-takogo.md ведёт на несуществующий файл "
        "(deyatelnost/net-takogo.md)" in problems
    )
    assert where + f"строка {lines - 5}: изображение schema.png без альтернативного текста" in problems
    assert (
        where
        + f"строка {lines - 5}: ссылка schema.png ведёт на несуществующий файл (obshchaya-informatsiya/schema.png)"
        in problems
    )
    assert where + f"строка {lines - 4}: изображение без альтернативного текста (атрибут alt)" in problems
    assert (
        "docs/pravovye-akty/prikaz-2018-11-06-4601.md: приложение files/prikaz.pdf не найдено "
        "(pravovye-akty/files/prikaz.pdf)" in problems
    )
    assert len(problems) == 5  # the generated statistics page, external links, anchors and code are fine


def test_page_outside_sections_and_placeholder_in_body(good_site: Path) -> None:
    (good_site / "docs" / "stray.md").write_text("---\ntitle: Заблудившаяся\n---\nТекст\n", encoding="utf-8")
    edit(good_site / "docs" / "kadry" / "index.md", "имеющихся вакансиях", "вакансиях (ЗАПОЛНИТЬ)")
    problems = messages(good_site)
    assert "docs/stray.md: страница вне разделов сайта: перенесите её в папку раздела" in problems
    assert any(p.startswith("docs/kadry/index.md: строка ") and "маркер ЗАПОЛНИТЬ" in p for p in problems)
    assert len(problems) == 2


def test_check_command_lists_problems_and_exits_1(good_site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["site", "check", "--site", str(good_site), "--today", "2026-11-25"]) == 0
    assert "Проверка пройдена" in capsys.readouterr().out
    edit(good_site / "docs" / "pravovye-akty" / "prikaz-2018-11-06-4601.md", "adopted: 2018-11-06", "adopted: вчера")
    assert main(["site", "check", "--site", str(good_site), "--today", "2026-11-25"]) == 1
    captured = capsys.readouterr()
    assert "prikaz-2018-11-06-4601.md: поле adopted (Дата принятия) должно быть датой" in captured.out
    assert "найдено проблем: 1" in captured.err


def test_link_resolution_rules() -> None:
    assert resolve_link("a/b.md", "../c/d.md#x") == "c/d.md"
    assert resolve_link("a/b.md", "/c/") == "c/index.md"
    assert resolve_link("a/b.md", "files/%D0%B0.pdf") == "a/files/а.pdf"
    assert resolve_link("a/b.md", "https://x.ru/y") is None
    assert resolve_link("a/b.md", "#only") is None
    assert resolve_link("index.md", "../../etc/passwd") == "../../etc/passwd"
    schema = load_schema(SITE)
    problems = check_pages(
        {"index.md": "---\ntitle: Главная\n---\n[x](../../etc/passwd)\n"}, set(), schema, today=TODAY
    )
    assert any("ведёт на несуществующий файл" in p.message for p in problems)


def test_front_matter_split() -> None:
    meta, body = split_front_matter("---\ntitle: Т\npublished: 2026-01-02\n---\nТекст\n")
    assert meta == {"title": "Т", "published": dt.date(2026, 1, 2)} and body == "Текст\n"
    assert split_front_matter("Без заголовка\n") == ({}, "Без заголовка\n")


# site new ----------------------------------------------------------------------------------------------------------


def test_new_document_with_attachment(good_site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "Приказ о плане.pdf"
    source.write_bytes(b"%PDF-1.7 test")
    code = main(
        [
            "site", "new", "--site", str(good_site), "--category", "legal_acts",
            "--title", "О плане приватизации на 2027 год", "--attach", str(source),
            "--set", "kind=проект", "--set", "act_type=приказ департамента", "--set", "discussion_until=2026-12-10",
        ]
    )  # fmt: skip
    assert code == 0
    created = [p for p in (good_site / "docs" / "pravovye-akty").glob("*-o-plane-privatizatsii-na-2027-god.md")]
    assert len(created) == 1
    meta, _ = split_front_matter(created[0].read_text(encoding="utf-8"))
    assert meta["kind"] == "проект" and meta["discussion_until"] == dt.date(2026, 12, 10)
    assert meta["responsible"] == PLACEHOLDER
    attachment = good_site / "docs" / "pravovye-akty" / meta["attachments"][0]["file"]
    assert attachment.read_bytes() == b"%PDF-1.7 test"
    problems = messages(good_site)
    rel = created[0].relative_to(good_site).as_posix()
    assert f"{rel}: не заполнено поле responsible" in problems
    created[0].write_text(fill_placeholders(created[0].read_text(encoding="utf-8")), encoding="utf-8")
    assert messages(good_site) == []
    assert main(["site", "new", "--site", str(good_site), "--category", "statistics", "--title", "x"]) == 2
    assert main(["site", "new", "--site", str(good_site), "--category", "activity", "--title", "x",
                 "--attach", str(tmp_path / "virus.exe")]) == 1  # fmt: skip


def test_slugify() -> None:
    assert slugify("Приказ № 12 о плане") == "prikaz-12-o-plane"
    assert slugify("Объявление: вакансия «Ведущий специалист»") == "obyavlenie-vakansiya-vedushchiy-spetsialist"
    assert slugify("!!!") == "dokument"


# Statistics from the register -------------------------------------------------------------------------------------


def row(received: dt.date, **values: object) -> RequestRow:
    base: dict[str, object] = {
        "registered": True, "type": "info_request", "channel": "email", "status": "registered",
        "answered_on": None, "due_date": received + dt.timedelta(days=30), "refusal_ground": None,
        "extended": False, "forwarded": False,
    }  # fmt: skip
    base.update(values)
    return RequestRow(received_on=received, **base)  # type: ignore[arg-type]


def test_quarter_statistics_counts_outcomes() -> None:
    jan, apr = dt.date(2026, 1, 10), dt.date(2026, 4, 1)
    stats = quarter_statistics(
        [
            row(jan, answered_on=dt.date(2026, 2, 9), status="answered"),  # the last day: on time
            row(jan, answered_on=dt.date(2026, 2, 10), status="closed"),  # a day late
            row(jan, refusal_ground="8fz-20-1-3", answered_on=dt.date(2026, 1, 20), status="refused"),
            row(jan, extended=True, due_date=dt.date(2026, 2, 20), status="extended"),
            row(jan, registered=False, status="closed", due_date=None),  # anonymous: kept, not considered
            row(apr, channel="phone", type="appeal", forwarded=True, status="forwarded"),
        ]
    )
    q2, q1 = stats
    assert (q2.quarter.title, q1.quarter.title) == ("II квартал 2026 г.", "I квартал 2026 г.")
    assert (q1.received, q1.registered, q1.answered, q1.answered_on_time, q1.answered_late) == (5, 4, 2, 1, 1)
    assert (q1.refused, q1.extended, q1.in_progress, q1.by_ground["8fz-20-1-3"]) == (1, 1, 1, 1)
    assert (q2.received, q2.forwarded, q2.in_progress, q2.by_channel["phone"], q2.by_type["appeal"]) == (1, 1, 1, 1, 1)


def _at(day: str, hour: int = 10) -> dt.datetime:
    # Hours in Novosibirsk (UTC+7).
    return dt.datetime.fromisoformat(f"{day}T{hour:02d}:00:00+07:00").astimezone(dt.UTC)


def seed_requests(settings: Settings) -> None:
    """Requests in Q1 and Q2 2026 through the register's own service (names, subjects: personal data)."""
    plan: list[tuple[str, Channel, str, list[tuple[str, Status, dict[str, Any]]]]] = [
        ("2026-02-02", Channel.email, "info_request", [("2026-03-01", Status.answered, {})]),
        ("2026-02-02", Channel.email, "info_request", [("2026-03-20", Status.answered, {})]),
        (
            "2026-02-03",
            Channel.post,
            "info_request",
            [("2026-02-05", Status.extended, {"extension_days": 10}), ("2026-03-10", Status.answered, {})],
        ),
        ("2026-02-04", Channel.web, "info_request", [("2026-02-10", Status.refused, {"ground": "8fz-20-1-3"})]),
        ("2026-03-30", Channel.email, "info_request", []),
        ("2026-04-10", Channel.phone, "appeal", []),
    ]
    for i, (day, channel, rtype, changes) in enumerate(plan):
        with session_scope(settings) as session:
            now = _at(day)
            email = f"zayavitel{i}@example.ru"
            client = service.find_or_create_client(session, now=now, name=f"Секретов Заявитель {i}", email=email)
            request = service.create_request(
                session, settings, now=now, client=client, channel=channel,
                subject=f"Личная тема {i}", text="Текст запроса с персональными данными",
                labels=service.Labels(type=rtype), reply_email=email,
            )  # fmt: skip
            for when, status, extra in changes:
                service.change_status(
                    session, settings, request, status, now=_at(when), actor="тест",
                    comment="Причина указана", **extra,
                )  # fmt: skip


def test_statistics_from_the_register_on_both_backends(settings: Settings, tmp_path: Path) -> None:
    seed_requests(settings)
    data = load_site_data(settings, now=BUILT_AT)
    assert data.has_requests and data.has_mailings and not data.mailings
    q2, q1 = data.quarters
    assert (q1.received, q1.registered, q1.answered_on_time, q1.answered_late, q1.extended, q1.refused) == (
        5,
        5,
        2,
        1,
        1,
        1,
    )
    assert (q1.in_progress, q1.by_channel["email"], q1.by_channel["post"], q1.by_ground["8fz-20-1-3"]) == (1, 3, 1, 1)
    assert (q2.received, q2.by_type["appeal"], q2.by_channel["phone"]) == (1, 1, 1)

    out = tmp_path / "built"
    build_site(SITE, out, data=data)
    page = (out / "statistika" / "index.html").read_text(encoding="utf-8")
    soup = BeautifulSoup(page, "html.parser")
    summary = soup.find("table")
    assert summary is not None
    cells = {r.find_all("td")[0].get_text(strip=True): [c.get_text(strip=True) for c in r.find_all("td")[1:]]
             for r in summary.find_all("tr") if r.find_all("td")}  # fmt: skip
    assert cells["I квартал 2026 г."] == ["5", "2", "1", "1", "1"]
    assert cells["II квартал 2026 г."] == ["1", "0", "0", "0", "1"]
    assert cells["Всего"] == ["6", "2", "1", "1", "2"]
    heading = next((h for h in soup.find_all("h2") if h.get_text().startswith("I квартал 2026")), None)
    assert heading is not None
    table = heading.find_next("table")
    assert table is not None
    indicators = {r.find_all("td")[0].get_text(strip=True): r.find_all("td")[1].get_text(strip=True)
                  for r in table.find_all("tr") if r.find_all("td")}  # fmt: skip
    assert indicators["Зарегистрировано"] == "5" and indicators["Срок рассмотрения продлён"] == "1"
    assert indicators["Перенаправлено по компетенции"] == "0"
    assert "Запрашиваемая информация не относится к деятельности департамента" in page
    assert "Обращение гражданина" in page and "почта" in page
    # No personal data leaves the register.
    for built in out.rglob("*"):
        if built.is_file() and built.suffix in {".html", ".csv", ".json", ".js"}:
            text = built.read_text(encoding="utf-8")
            assert "Секретов" not in text and "zayavitel" not in text and "Личная тема" not in text, built

    data_csv = next((out / "statistika" / "opendata").glob("data-20261125-structure-*.csv"))
    rows = list(csv.DictReader(io.StringIO(data_csv.read_text(encoding="utf-8"))))
    received = {(r["year"], r["quarter"]): r["value"] for r in rows if r["indicator_code"] == "received"}
    assert received == {("2026", "1"): "5", ("2026", "2"): "1"}
    assert {"year", "quarter", "indicator_code", "indicator", "value"} == set(rows[0])
    meta = dict(csv.reader(io.StringIO((out / "statistika" / "opendata" / "meta.csv").read_text(encoding="utf-8"))))
    assert meta["modified"] == "20261125" and "CC BY 4.0" in meta["license"] and meta["format"] == "csv"
    assert meta[f"data-20261125-structure-{data_csv.name.split('-')[-1][:-4]}"].endswith(data_csv.name)


# Build --------------------------------------------------------------------------------------------------------------


def test_build_without_database_says_no_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    make_env(monkeypatch, tmp_path, "")
    monkeypatch.delenv("MAILSERVICE_DATABASE_URL")
    reset_caches()
    out = tmp_path / "fresh"
    try:
        assert main(["site", "build", "--output", str(out)]) == 0
    finally:
        reset_caches()
    assert not (tmp_path / "data" / "mailservice.sqlite3").exists()  # no database created on the way
    for page in ("statistika/index.html", "statistika/rassylki.html"):
        text = BeautifulSoup((out / page).read_text(encoding="utf-8"), "html.parser").get_text()
        assert "Нет данных" in text, page
    assert (out / "search" / "search_index.js").is_file()  # the offline search index
    # Building again into the same folder is fine; into a foreign non-empty folder it is refused.
    assert main(["site", "build", "--output", str(out)]) == 0
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("важный файл", encoding="utf-8")
    assert main(["site", "build", "--output", str(foreign)]) == 1
    assert (foreign / "keep.txt").exists()


def test_build_refuses_when_configured_database_is_unreachable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_env(monkeypatch, tmp_path, "postgresql://nobody@127.0.0.1:9/none")
    try:
        assert main(["site", "build", "--output", str(tmp_path / "out")]) == 1
    finally:
        reset_caches()
    assert "не удалось прочитать базу данных" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


RESOURCE_ATTRS = {"script": "src", "link": "href", "img": "src", "iframe": "src", "source": "src",
                  "video": "src", "audio": "src", "embed": "src", "object": "data", "form": "action"}  # fmt: skip
# Material's bundle loads these only when a page needs them (a Mermaid diagram; a browser without
# ResizeObserver); the site has no diagrams and every supported browser has ResizeObserver. A new CDN URL in an
# upgraded bundle fails this test.
KNOWN_CONDITIONAL_LOADERS = {
    "https://unpkg.com/mermaid@11/dist/mermaid.min.js",
    "https://unpkg.com/resize-observer-polyfill",
}
OWN_JS = {p.name for p in (SITE / "overrides" / "assets" / "javascripts").glob("*.js")}
_URL_RE = re.compile(r"""https?://[^\s"'`)\\<>]+""")


def external_references(out: Path, allowed_hosts: set[str]) -> list[str]:
    """Every reference in the built site that would make a browser fetch something from another host."""
    found: list[str] = []
    for page in out.rglob("*.html"):
        soup = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
        for tag, attr in RESOURCE_ATTRS.items():
            for element in soup.find_all(tag):
                value = element.get(attr)
                if (
                    tag == "link"
                    and "stylesheet" not in (element.get("rel") or [])
                    and "preconnect" not in (element.get("rel") or [])
                ):
                    continue
                if isinstance(value, str) and urlparse(value).scheme in {"http", "https"}:
                    if urlparse(value).hostname not in allowed_hosts:
                        found.append(f"{page.relative_to(out)}: <{tag} {attr}={value}>")
        for style in soup.find_all("style"):
            found += [f"{page.relative_to(out)}: style {u}" for u in _URL_RE.findall(style.get_text())]
    for sheet in out.rglob("*.css"):
        for match in re.finditer(
            r"""(?:url\(|@import\s+)["']?(https?://[^"')\s]+)""", sheet.read_text(encoding="utf-8")
        ):
            found.append(f"{sheet.relative_to(out)}: {match.group(1)}")
    for script in out.rglob("*.js"):
        if script.parent.name == "search":
            continue  # the search index is page text, not code
        urls = set(_URL_RE.findall(script.read_text(encoding="utf-8")))
        loaders = {
            u
            for u in urls
            if re.search(r"unpkg|jsdelivr|cdnjs|googleapis|gstatic|google-analytics|googletagmanager", u)
        }
        own = "assets" not in script.parts or script.name in OWN_JS
        if own:
            loaders |= {u for u in urls if not u.startswith("http://www.w3.org/")}
        elif script.name.startswith("bundle."):
            loaders -= KNOWN_CONDITIONAL_LOADERS
        found += [f"{script.relative_to(out)}: {u}" for u in sorted(loaders)]
    return found


def test_built_site_references_no_other_host(tmp_path: Path) -> None:
    out = tmp_path / "built"
    build_site(SITE, out, data=EMPTY)
    forms = [
        form["action"]
        for page in out.rglob("*.html")
        for form in BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser").find_all("form")
        if form.get("action")
    ]
    assert "http://127.0.0.1:8000/subscribe" in forms and "http://127.0.0.1:8000/feedback" in forms
    assert external_references(out, {"127.0.0.1"}) == []
    home = (out / "index.html").read_text(encoding="utf-8")
    assert "fonts.googleapis" not in home and "assets/javascripts/iframe-worker-shim.js" in home
    assert (out / "assets" / "javascripts" / "iframe-worker-shim.js").is_file()


def test_scan_catches_an_external_script(tmp_path: Path) -> None:
    out = tmp_path / "built"
    build_site(SITE, out, data=EMPTY)
    page = out / "index.html"
    injected = '<script src="https://cdn.example.com/a.js"></script></head>'
    page.write_text(page.read_text(encoding="utf-8").replace("</head>", injected), encoding="utf-8")
    (out / "stylesheets" / "extra.css").write_text("@import 'https://fonts.example.com/x.css';", encoding="utf-8")
    found = external_references(out, {"127.0.0.1"})
    assert "index.html: <script src=https://cdn.example.com/a.js>" in found
    assert "stylesheets/extra.css: https://fonts.example.com/x.css" in found


def test_document_page_shows_passport_attachments_and_section_list(good_site: Path, tmp_path: Path) -> None:
    act = good_site / "docs" / "pravovye-akty" / "prikaz-2018-11-06-4601.md"
    (act.parent / "files").mkdir()
    (act.parent / "files" / "prikaz.pdf").write_bytes(b"%PDF" + b"x" * 3000)
    edit(
        act,
        "review_by: 2027-11-25",
        "review_by: 2027-11-25\nattachments:\n  - file: files/prikaz.pdf\n    title: Текст приказа",
    )
    out = tmp_path / "built"
    build_site(good_site, out, data=EMPTY)
    soup = BeautifulSoup(
        (out / "pravovye-akty" / "prikaz-2018-11-06-4601.html").read_text(encoding="utf-8"), "html.parser"
    )
    names, values = soup.select(".ms-passport dt"), soup.select(".ms-passport dd")
    passport = {n.get_text(strip=True): v.get_text(strip=True) for n, v in zip(names, values, strict=True)}
    assert passport["Номер"] == "4601" and passport["Дата принятия"] == "06.11.2018"
    link = soup.select_one(".ms-attachments a")
    assert link is not None and link["href"] == "files/prikaz.pdf" and link.get_text() == "Текст приказа"
    listing = soup.select_one(".ms-attachments")
    assert listing is not None and "PDF, 3 КБ" in listing.get_text()
    assert (out / "pravovye-akty" / "files" / "prikaz.pdf").is_file()
    index = BeautifulSoup((out / "pravovye-akty" / "index.html").read_text(encoding="utf-8"), "html.parser")
    listed = [a.get_text(strip=True) for a in index.select(".ms-documents a")]
    assert (
        len(listed) == 3
        and "Об утверждении Порядка рассмотрения запроса о предоставлении информации о деятельности департамента"
        in listed
    )
    nav = [a.get_text(strip=True) for a in index.select(".md-nav--primary .md-nav__link")]
    assert "Правовые акты" in nav and not any("Об утверждении" in n for n in nav)  # documents stay out of the nav


# QR codes --------------------------------------------------------------------------------------------------------


def _png_modules(data: bytes, border: int = 4, box: int = 10) -> list[list[bool]]:
    width, _height, rows, _info = png.Reader(bytes=data).read()
    pixels = [list(r) for r in rows]
    size = width // box - 2 * border
    return [[pixels[(border + y) * box][(border + x) * box] == 0 for x in range(size)] for y in range(size)]


def test_qr_codes_encode_the_feedback_page(tmp_path: Path) -> None:
    schema = load_schema(SITE)
    url = feedback_url(schema, "https://dizo.example.ru/sayt/")
    assert url == "https://dizo.example.ru/sayt/obratnaya-svyaz/index.html"
    expected = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0)
    expected.add_data(url)
    assert _png_modules(qr_png(url)) == expected.get_matrix()
    other = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0)
    other.add_data(url + "x")
    assert _png_modules(qr_png(url)) != other.get_matrix()
    svg = qr_svg(url).decode()
    assert svg.startswith("<?xml") and "<path" in svg
    with pytest.raises(ValueError, match="полный адрес"):
        qr_png("obratnaya-svyaz/index.html")
    out = tmp_path / "qr"
    assert main(["site", "qr", "--output", str(out), "--url", url]) == 0
    assert _png_modules((out / "qr-obratnaya-svyaz.png").read_bytes()) == expected.get_matrix()


def test_md_text_makes_database_text_inert() -> None:
    assert (
        md_text("<script>alert(1)</script> | [x](y) *z*")
        == "&lt;script&gt;alert\\(1\\)&lt;/script&gt; \\| \\[x\\]\\(y\\) \\*z\\*"
    )


# Publish ----------------------------------------------------------------------------------------------------------


def test_publish_switches_atomically_and_reports_new_documents(good_site: Path, tmp_path: Path) -> None:
    schema = load_schema(good_site)
    target = tmp_path / "www" / "site"
    target.parent.mkdir()
    first = publish_site(good_site, target, data=EMPTY, schema=schema, docs_dir=good_site / "docs")
    assert target.is_symlink() and target.resolve() == first.release.resolve()
    assert first.new_documents == ()  # the first release tells no one about everything
    assert (target / "index.html").is_file()

    section = schema.by_key("legal_acts")
    assert section is not None
    created = create_document(good_site / "docs", section, "О новом порядке", today=TODAY,
                              values={"kind": "проект", "act_type": "приказ", "responsible": "отдел"})  # fmt: skip
    second = publish_site(good_site, target, data=EMPTY, schema=schema, docs_dir=good_site / "docs", keep=1)
    assert target.resolve() == second.release.resolve()
    assert [d.title for d in second.new_documents] == ["О новом порядке"]
    assert second.new_documents[0].path == created.page.relative_to(good_site / "docs").as_posix()
    assert second.removed_releases == (first.release,) and not first.release.exists()

    # A broken build never replaces the published site.
    edit(good_site / "mkdocs.yml", "theme:\n  name: material", "theme:\n  name: no-such-theme")
    with pytest.raises(BuildError):
        publish_site(good_site, target, data=EMPTY, schema=schema, docs_dir=good_site / "docs")
    assert target.resolve() == second.release.resolve() and (target / "index.html").is_file()
    assert len(list((tmp_path / "www" / "site.releases").iterdir())) == 1

    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(BuildError, match="не является символической ссылкой"):
        publish_site(good_site, plain, data=EMPTY, schema=schema, docs_dir=good_site / "docs")


def test_publish_command_refuses_a_site_that_fails_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["site", "publish", "--site", str(SITE), "--target", str(tmp_path / "site")]) == 1
    captured = capsys.readouterr()
    assert "публикация отменена" in captured.err and "extra.opendata.inn" in captured.err
    assert not (tmp_path / "site").exists()


def test_notification_campaign_goes_through_mailings(settings: Settings) -> None:
    from mailservice.mailings.models import Campaign, CampaignStatus
    from mailservice.mailings.subscribers import create_list

    schema = load_schema(SITE)
    from mailservice.publishing.build import DocumentInfo

    docs = (
        DocumentInfo("pravovye-akty/2026-11-25-o-plane.md", "О плане {{ settings }}", "legal_acts", "2026-11-25"),
        DocumentInfo("kak-zaprosit-informatsiyu/x.md", "Без рассылки", "requests", "2026-11-25"),
    )
    drafts = draft_campaigns(docs, schema, site_url="https://dizo.example.ru/")
    assert [d.list_slug for d in drafts] == ["legal_acts"]
    assert "https://dizo.example.ru/pravovye-akty/2026-11-25-o-plane.html" in drafts[0].text
    assert "О плане (( settings ))" in drafts[0].text  # a title is never read as a template
    with session_scope(settings) as session:
        create_list(session, "legal_acts", "Правовые акты")
    [campaign_id] = start_campaigns(settings, drafts, now=BUILT_AT, actor="тест")
    with session_scope(settings) as session:
        campaign = session.scalars(select(Campaign).where(Campaign.id == campaign_id)).one()
        # Started (no subscriber consented to that list yet, so it is done at once, having sent nothing).
        assert campaign.status != CampaignStatus.draft and campaign.total == 0
        assert campaign.subject == "Новый документ на сайте департамента"
        assert "{{ unsubscribe_url }}" in campaign.template_text
    from mailservice.publishing.notify import NotifyError

    missing = draft_campaigns(docs[:1], schema, site_url="https://x.ru/")
    object.__setattr__(missing[0], "list_slug", "no-such-list")
    with pytest.raises(NotifyError, match="нет такого списка"):
        start_campaigns(settings, missing, now=BUILT_AT, actor="тест")


def test_publish_command_builds_and_switches(
    good_site: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_env(monkeypatch, tmp_path, "")
    monkeypatch.delenv("MAILSERVICE_DATABASE_URL")
    monkeypatch.setattr("mailservice.publishing.cli.utcnow", lambda: BUILT_AT)  # review dates are checked "today"
    reset_caches()
    target = tmp_path / "www"
    try:
        code = main(["site", "publish", "--site", str(good_site), "--target", str(target), "--notify"])
    finally:
        reset_caches()
    assert code == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "Опубликовано:" in out and "Новых документов: 0" in out and "Рассылка" not in out
    assert target.is_symlink() and (target / "statistika" / "index.html").is_file()


def test_process_register_page_and_open_data_come_from_the_approved_version() -> None:
    from mailservice.processes.publication import PublicProcess, PublicRegister
    from mailservice.publishing.generated import PROCESSES_PAGE, generated_files

    schema = load_schema(SITE)
    opendata = {
        "inn": "5406000000", "name": "statistika-zaprosov", "title": "Статистика", "creator": "Департамент",
        "publisher_phone": "238-60-02", "publisher_mbox": "info@dizo.test", "license": "CC BY 4.0",
        "license_url": "https://creativecommons.org/licenses/by/4.0/", "structure_version": "20261125",
    }  # fmt: skip
    register = PublicRegister(
        3,
        dt.date(2026, 11, 20),
        [PublicProcess("4.1", "Рассмотрение запросов", "Приём запроса", "4", "идет исследование", "официальный сайт")],
    )
    section = schema.by_key("processes")
    assert section is not None
    files = {
        f.path: f.content
        for f in generated_files(
            schema,
            SiteData(generated_at=BUILT_AT, process_register=register),
            opendata=opendata,
            site_url="",
            today=BUILT_AT.date(),
        )
    }
    page = files[f"{section.dir}/{PROCESSES_PAGE}"]
    assert "версия № 3" in str(page) and "Приём запроса" in str(page) and "идет исследование" in str(page)
    meta = files[f"{section.dir}/opendata/meta.csv"]
    text = meta.decode() if isinstance(meta, bytes) else str(meta)
    assert "5406000000-reestr-processov" in text and "Статистика" not in text  # its own title, the shared publisher
    empty = {
        f.path: f.content for f in generated_files(schema, EMPTY, opendata=opendata, site_url="", today=BUILT_AT.date())
    }
    assert "ещё не утверждён" in str(empty[f"{section.dir}/{PROCESSES_PAGE}"])
