"""``mailservice classify`` commands, run against the sub-application directly."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mailservice.classify.cli import app
from mailservice.classify.engine import default_classifier
from mailservice.classify.rules import load_rules
from mailservice.config import get_settings
from tests.trained import train_once

DEV = Path(__file__).parent / "data" / "classify_dev.tsv"
runner = CliRunner()


@pytest.fixture(autouse=True)
def data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Each test gets an empty data directory, so no model trained elsewhere leaks in."""
    monkeypatch.setenv("MAILSERVICE_DATA_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    default_classifier.cache_clear()
    yield tmp_path / "var"
    get_settings.cache_clear()
    default_classifier.cache_clear()


def test_text_prints_labels_confidence_and_reasons() -> None:
    result = runner.invoke(app, ["text", "Завтра суд, прошу срочно выдать копию моего договора аренды"])
    assert result.exit_code == 0, result.output
    assert "Тип: Обращение гражданина (appeal), уверенность" in result.output
    assert "Тема: Аренда (lease)" in result.output
    assert "Срочность: Срочно (urgent)" in result.output
    assert "правило «прямо указана срочность» (+4.5)" in result.output
    assert f"Версия: rules-{load_rules().version}" in result.output


def test_text_json_with_subject() -> None:
    result = runner.invoke(app, ["text", "Удалите меня из списка, пожалуйста", "--subject", "Отписаться", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["type"]["label"] == "subscription"
    assert data["type"]["reasons"]
    assert {"type", "topic", "urgency", "appeal_kind", "needs_review", "version"} <= set(data)


def test_train_then_text_uses_the_model(data_dir: Path) -> None:
    result = runner.invoke(app, ["train", "--data", str(DEV), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    model_path = data_dir / "classify" / "model.joblib"
    assert Path(info["path"]) == model_path and model_path.exists()
    assert json.loads(model_path.with_suffix(".json").read_text())["model_id"] == info["model_id"]
    assert info["rules_version"] == load_rules().version
    text = runner.invoke(app, ["text", "--json", "Прошу предоставить отчёт о приватизации"])
    assert json.loads(text.output)["version"] == f"rules-{load_rules().version}+model-{info['model_id']}"


def test_train_to_an_explicit_output(tmp_path: Path) -> None:
    target = tmp_path / "models" / "m.joblib"
    result = runner.invoke(app, ["train", "--data", str(DEV), "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert target.exists() and target.with_suffix(".json").exists()
    assert "обучена на" in result.output
    evaluated = runner.invoke(app, ["evaluate", "--data", str(DEV), "--model", str(target), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    assert "+model-" in json.loads(evaluated.output)["version"]


def test_evaluate_json_shape() -> None:
    result = runner.invoke(app, ["evaluate", "--data", str(DEV), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    for axis in ("type", "topic"):
        assert isinstance(report[axis]["macro_f1"], float)
        assert set(report[axis]["per_class"]) and set(report[axis]["confusion"])
    assert set(report["urgency"]["urgent"]) >= {"precision", "recall"}
    assert isinstance(report["urgency"]["macro_f1"], float)


@pytest.mark.timeout(900)  # fits the model on four fifths of the sets: minutes on a loaded machine
def test_evaluate_without_data_scores_the_held_out_part_of_the_packaged_sets(train_cache: Path) -> None:
    # Both reports fit the same model on the same training part (as tests/test_classify_mail.py does): once a run.
    with train_once(train_cache):
        result = runner.invoke(app, ["evaluate", "--json"])
        text = runner.invoke(app, ["evaluate"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["held_out"] and report["training_n"] > 3 * report["n"] > 0
    assert 0.0 <= report["needs_review_share"] <= 1.0 and 0.0 <= report["unflagged_accuracy"] <= 1.0
    assert set(report["axis_accuracy"]) == {"type", "topic", "urgency", "type_and_topic"}
    # Issue 13 point 3: type and topic flagged apart; a letter is flagged when either is.
    flagged = report["flagged_share"]
    assert max(flagged["type"], flagged["topic"]) <= report["needs_review_share"]
    assert report["needs_review_share"] <= flagged["type"] + flagged["topic"]
    assert 0 < report["unflagged_decisions"] <= 2 * report["n"]
    assert text.exit_code == 0, text.output
    assert "На проверку сотруднику" in text.output and "решение о типе" in text.output
    assert "Верных решений о типе и теме среди не отправленных на проверку" in text.output


def test_evaluate_text_report_and_cross_validation() -> None:
    result = runner.invoke(app, ["evaluate", "--data", str(DEV), "--cv", "3"])
    assert result.exit_code == 0, result.output
    assert "macro-F1" in result.output and "Матрица ошибок" in result.output
    assert "model-cv3" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["evaluate", "--data", "no/such/file.tsv"],
        ["train", "--data", "no/such/file.tsv"],
        ["evaluate", "--data", str(DEV), "--cv", "1"],
        ["text", "x", "--model", "no/such/model.joblib"],
        ["text", "x", "--rules", "no/such/rules.yaml"],
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Ошибка: ")


def test_bad_columns_give_one_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("text,label\nпривет,other\n", encoding="utf-8")
    result = runner.invoke(app, ["evaluate", "--data", str(path)])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "нет столбцов" in result.output


def test_broken_rules_file_gives_one_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("version: 1\naxes:\n  type:\n    rules:\n      - {label: nope, any: [слово]}\n")
    result = runner.invoke(app, ["text", "x", "--rules", str(path)])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "неизвестная метка" in result.output
