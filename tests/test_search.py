"""Full-text search of requests on both databases: morphology, ranking, every field, hostile queries, the index
kept up to date in the data's own transaction, the console's search and ``requests search``."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pytest
from sqlalchemy import Connection, select, text
from typer.testing import CliRunner

from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.inforequests import search, search_index, service
from mailservice.inforequests.lifecycle import Channel
from mailservice.inforequests.models import Client, Request
from mailservice.inforequests.search_terms import highlight, query_terms
from mailservice.web.staff import auth
from tests.console_support import add_staff, client_for, login, mail_request, phone_request_in, staff_request


def _register(settings: Settings, **values: Any) -> int:
    return staff_request(settings, **values)[0]


def _found(settings: Settings, query: str) -> list[int]:
    with session_scope(settings) as session:
        return [hit.request.id for hit in search.search_requests(session, query).hits]


def test_morphology_finds_other_forms_of_a_word(settings: Settings) -> None:
    lease = _register(settings, subject="Вопрос", text="Прошу сообщить условия аренды участка на улице Ленина")
    other = _register(settings, subject="Часы приёма", text="Когда работает приёмная?")
    assert _found(settings, "аренда") == [lease]
    assert _found(settings, "арендой участков") == [lease]  # other case, plural: same lemmas
    assert _found(settings, "Ленина улица") == [lease]
    assert _found(settings, "приёмная") == [other]
    assert _found(settings, "приемная") == [other]  # ё and е are one letter here
    assert _found(settings, "аренда приёмная") == []  # every word must be there


def test_ranking_subject_and_client_before_text_then_frequency(settings: Settings) -> None:
    in_text_once = _register(
        settings,
        subject="Справка",
        text="Прошу выдать справку. " + "Сведения о земельных участках района. " * 10 + "Вопрос аренды.",
    )
    in_text_often = _register(settings, subject="Справка", text="Аренда участка, договор аренды, плата за аренду.")
    in_subject = _register(settings, subject="Аренда земли", text="Прошу разъяснить порядок.")
    assert _found(settings, "аренда") == [in_subject, in_text_often, in_text_once]


def test_every_field_is_searchable(settings: Settings) -> None:
    rid = _register(
        settings,
        subject="Межевание",
        text="Прошу разъяснить порядок межевания",
        name="Петрова Анна Сергеевна",
        phone="+7 (913) 555-12-34",
        email="anna.petrova@example.ru",
        organisation="ООО «Ромашка»",
        address="630007, г. Новосибирск, Красный проспект, 18",
    )
    _register(settings, subject="Другое", text="Совсем другой вопрос", name="Сидоров Олег")
    with session_scope(settings) as session:
        number = session.scalar(select(Request.number).where(Request.id == rid))
        request = session.get(Request, rid)
        assert request is not None and number
        service.add_client_message(
            session, settings, request, now=utcnow(), channel=Channel.email, text="Дополняю: кадастровый квартал"
        )
    for query in (
        number,  # 2026-000001
        number.replace("-", ""),
        "Межевание",  # subject
        "межеванию",  # text, another form
        "кадастровом квартале",  # a later message
        "Петровой",  # client's name, another case
        "Ромашка",  # organisation
        "Красный проспект",  # address
        "anna.petrova@example.ru",  # e-mail
        "8 913 555 12 34",  # phone typed another way
        "+79135551234",
    ):
        assert _found(settings, query) == [rid], query


@pytest.mark.parametrize(
    "query",
    [
        '"',
        "'",
        '"аренда',
        "аренда*",
        "*",
        "NEAR(аренда участок)",
        "аренда NEAR участок",
        "аренда OR приём",
        "-аренда",
        "аренда AND NOT",
        "head:аренда",
        "(((",
        "!@#$%^&*()_+{}|:<>?",
        "аренда & | ! :*",
        "\x00\u202e",
        "аренда " * 500,
        "а" * 5000,
        "",
        "   ",
    ],
)
def test_hostile_queries_give_a_result_or_nothing(settings: Settings, query: str) -> None:
    lease = _register(settings, subject="Аренда участка", text="Прошу сообщить условия аренды")
    found = _found(settings, query)
    assert found in ([], [lease])


def test_hostile_query_in_the_console_is_a_page_not_an_error(settings: Settings) -> None:
    add_staff(settings, "op@dizo.test", auth.Role.operator)
    _register(settings, subject="Аренда <b>участка</b>", text="Прошу сообщить условия аренды <script>x</script>")
    http = client_for(settings)
    login(http, "op@dizo.test")
    for query in ('"аренда" NEAR(*', "a" * 3000, "аренда"):
        response = http.get("/staff/search", params={"q": query})
        assert response.status_code == 200, query
    assert "<mark>Аренда</mark> &lt;b&gt;участка&lt;/b&gt;" in response.text
    assert "<script>x" not in response.text
    queue = http.get("/staff/queue", params={"q": "аренды"})
    assert queue.status_code == 200 and "Аренда &lt;b&gt;участка" in queue.text


def test_index_follows_the_data_in_the_same_transaction(settings: Settings) -> None:
    rid = _register(settings, subject="Вопрос", text="Текст", name="Кузнецов")
    assert _found(settings, "Кузнецов") == [rid]
    with session_scope(settings) as session:
        client = session.scalar(select(Client).join(Request, Request.client_id == Client.id).where(Request.id == rid))
        assert client is not None
        client.name = "Смирнов"
        # Found within the transaction that changed it...
        assert [h.request.id for h in search.search_requests(session, "Смирнов").hits] == [rid]
    assert _found(settings, "Кузнецов") == []
    assert _found(settings, "Смирнова") == [rid]
    # ...and a rollback takes the index back with the data.
    with pytest.raises(RuntimeError), session_scope(settings) as session:
        request = session.get(Request, rid)
        assert request is not None
        request.subject = "Водоснабжение"
        session.flush()
        raise RuntimeError("rollback")
    assert _found(settings, "водоснабжение") == []


def test_savepoints_leave_the_index_to_the_outermost_commit(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A savepoint's release writes no index rows (intake releases one per letter it writes carefully); the
    outermost commit writes them all, once, and a savepoint rolled back leaves nothing behind."""
    rewrites: list[list[int]] = []
    real_reindex = search_index.reindex

    def counting(conn: Connection, request_ids: Iterable[int]) -> int:
        ids = sorted(request_ids)
        rewrites.append(ids)
        return real_reindex(conn, ids)

    monkeypatch.setattr(search_index, "reindex", counting)
    with session_scope(settings) as session:
        outer = phone_request_in(session, settings, name="Алексеев", subject="Вопрос", text="Аренда гаража")
        savepoint = session.begin_nested()
        released = phone_request_in(session, settings, name="Борисов", subject="Вопрос", text="Выкуп участка")
        savepoint.commit()
        savepoint = session.begin_nested()
        phone_request_in(session, settings, name="Васильев", subject="Вопрос", text="Сервитут проезда")
        savepoint.rollback()
        with session.begin_nested():
            in_context = phone_request_in(session, settings, name="Григорьев", subject="Вопрос", text="Межевание земли")
        ids = {outer.id, released.id, in_context.id}
        assert rewrites == []  # nothing written at the releases
    assert len(rewrites) == 1 and ids <= set(rewrites[0])
    assert _found(settings, "аренда гаража") == [outer.id]
    assert _found(settings, "Борисов") == [released.id]
    assert _found(settings, "межевание") == [in_context.id]
    assert _found(settings, "сервитут") == []
    assert _found(settings, "Васильев") == []


def test_mail_intake_is_indexed(settings: Settings) -> None:
    rid = mail_request(settings, sender="orlov@example.ru", name="Орлов Олег", body="Сколько стоит выкуп гаража?")
    assert _found(settings, "выкупом гаражей") == [rid]
    assert _found(settings, "Орлов") == [rid]
    assert _found(settings, "orlov@example.ru") == [rid]


def test_migration_indexes_existing_rows(settings: Settings) -> None:
    rid = _register(settings, subject="Сервитут", text="Установление сервитута")
    with session_scope(settings) as session:
        session.execute(text("DELETE FROM search_documents"))
    assert _found(settings, "сервитут") == []
    from mailservice.inforequests.search_index import reindex

    with session_scope(settings) as session:
        ids = list(session.scalars(select(Request.id)))
        reindex(session.connection(), ids)
    assert _found(settings, "сервитут") == [rid]


def test_cli_search_gives_the_same_results(settings: Settings) -> None:
    from mailservice.cli import app

    first = _register(settings, subject="Аренда земли", text="Условия")
    second = _register(settings, subject="Справка", text="Вопрос аренды")
    with session_scope(settings) as session:
        numbers = dict(session.execute(select(Request.id, Request.number)).all())
    result = CliRunner().invoke(app, ["requests", "search", "аренды", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["number"] for r in rows["hits"]] == [numbers[first], numbers[second]]
    assert rows["total"] == 2
    plain = CliRunner().invoke(app, ["requests", "search", "аренды"])
    assert plain.exit_code == 0 and numbers[first] in plain.output
    empty = CliRunner().invoke(app, ["requests", "search", '"*'])
    assert empty.exit_code == 0 and "Ничего не найдено" in empty.output


def test_query_terms_and_highlight_are_pure() -> None:
    assert query_terms("Аренды участков") == ("аренда", "участок")
    assert query_terms("+7 (913) 555-12-34") == ("9135551234",)
    assert query_terms('NEAR("*") OR аренду') == ("near", "аренда")  # "or": a stop word
    fragment = highlight([("Тема", "Ничего"), ("Текст", "О <аренде> участка")], ["аренда"])
    assert fragment is not None and fragment.field == "Текст"
    assert str(fragment.html) == "О &lt;<mark>аренде</mark>&gt; участка"


def test_anonymised_client_leaves_the_index(settings: Settings) -> None:
    from mailservice import retention
    from tests.test_retention import age

    rid = mail_request(settings, sender="zorin@example.ru", name="Зорин Захар", body="Прошу сведения о сервитуте")
    assert _found(settings, "Зорин") == [rid]
    age(settings, rid)
    with session_scope(settings) as session:
        retention.run(session, settings, utcnow(), dry_run=False)
    # The words of an anonymised client (name, address, texts) are gone from the index too (152-FZ).
    for query in ("Зорин", "zorin@example.ru", "сервитут"):
        assert _found(settings, query) == [], query
