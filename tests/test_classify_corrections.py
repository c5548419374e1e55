"""Staff corrections: recorded with who and what, and used as training data."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from mailservice.classify.cli import app
from mailservice.classify.corrections import confirmed_examples
from mailservice.classify.engine import PACKAGED_SETS
from mailservice.classify.evaluate import read_datasets
from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.inforequests.models import Event, Request
from mailservice.intake.pipeline import Source, process_raw
from tests.mailfactory import citizen_mail
from tests.trained import train_once


def test_correction_is_recorded_and_becomes_training_data(lite_settings: Settings, train_cache: Path) -> None:
    raw = citizen_mail(subject="Вопрос", body="Кадастровый инженер ошибся в межевом плане моего участка, что делать?")
    number = process_raw(lite_settings, raw, Source("smtp")).request_number
    assert number
    runner = CliRunner()
    result = runner.invoke(
        app, ["correct", number, "--actor", "operator@dizo.test", "--type", "appeal", "--appeal-kind", "complaint",
              "--topic", "land", "--urgency", "normal"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    with session_scope(lite_settings) as session:
        request = session.scalars(select(Request)).one()
        assert (request.type, request.topic, request.law, request.needs_review) == ("appeal", "land", "59-fz", False)
        event = session.scalars(select(Event).where(Event.kind == "classified")).one()
        assert event.actor == "operator@dizo.test"
        assert event.data["after"]["type"] == "appeal" and "type" in event.data["before"]
        examples = confirmed_examples(session)
    assert [(e.type, e.topic) for e in examples] == [("appeal", "land")]

    # The same letters on both databases: the model is fitted once a run (tests/trained.py).
    with train_once(train_cache):
        trained = runner.invoke(app, ["train", "--json"])
    assert trained.exit_code == 0, trained.output
    counts = json.loads(trained.output.strip().splitlines()[-1])["label_counts"]["type"]
    seed = read_datasets(PACKAGED_SETS)
    assert sum(counts.values()) == len(seed) + 1
    assert counts["appeal"] == sum(1 for e in seed if e.type == "appeal") + 1


def test_unknown_label_is_refused_with_one_line(lite_settings: Settings) -> None:
    number = process_raw(lite_settings, citizen_mail(), Source("smtp")).request_number
    result = CliRunner().invoke(app, ["correct", str(number), "--actor", "x", "--topic", "weather"])
    assert result.exit_code == 2
    assert "weather" in result.output
