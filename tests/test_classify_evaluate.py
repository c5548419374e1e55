"""Reading labelled files and computing the quality figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mailservice.classify.engine import AxisResult, Classification
from mailservice.classify.evaluate import DatasetError, evaluate, format_report, metrics, read_dataset
from mailservice.classify.model import Example
from mailservice.classify.rules import load_taxonomy

DEV = Path(__file__).parent / "data" / "classify_dev.tsv"


def test_dev_set_is_large_and_covers_every_label_several_times() -> None:
    examples = read_dataset(DEV)
    assert len(examples) >= 200
    taxonomy = load_taxonomy()
    for axis in ("type", "topic", "urgency"):
        for label in taxonomy[axis].labels:
            assert sum(e.label(axis) == label for e in examples) >= 5, (axis, label)
    lines = DEV.read_text(encoding="utf-8").splitlines()
    header = " ".join(line for line in lines if line.startswith("#")).lower()
    assert lines[0].startswith("#") and "written for this project" in header


def test_csv_with_quoted_line_breaks_and_extra_columns(tmp_path: Path) -> None:
    path = tmp_path / "set.csv"
    path.write_text(
        "# comment\n"
        "id,Subject,body,type,topic,urgency\n"
        '1,Запрос,"Прошу, предоставить\nотчёт",info_request,reports,normal\n'
        "\n"
        '2,,"Срочно ""помогите""",appeal,Other,URGENT\n',
        encoding="utf-8",
    )
    examples = read_dataset(path)
    assert examples == [
        Example("Запрос", "Прошу, предоставить\nотчёт", "info_request", "reports", "normal"),
        Example("", 'Срочно "помогите"', "appeal", "other", "urgent"),
    ]


def test_tsv_escaped_breaks_and_semicolons(tmp_path: Path) -> None:
    tsv = tmp_path / "set.txt"
    tsv.write_text("subject\tbody\ttype\ttopic\turgency\nТема\tстрока 1\\nстрока 2\tother\tother\tnormal\n")
    assert read_dataset(tsv)[0].body == "строка 1\nстрока 2"
    semicolon = tmp_path / "set.csv"
    semicolon.write_text("subject;body;type;topic;urgency\nТема;текст, с запятой;other;other;normal\n")
    assert read_dataset(semicolon)[0].body == "текст, с запятой"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("subject,body,type\nа,б,other\n", "нет столбцов topic, urgency"),
        ("subject,body,type,topic,urgency\nа,б,question,other,normal\n", r":2: метка 'question'"),
        ("subject,body,type,topic,urgency\nа,б\n", "полей вместо"),
        ("# только комментарий\n", "файл пуст"),
        ("subject,body,type,topic,urgency\n", "нет ни одной строки"),
    ],
)
def test_bad_files_are_refused_with_the_place(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DatasetError, match=message):
        read_dataset(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="не найден"):
        read_dataset(tmp_path / "absent.tsv")


def result(type_: str, topic: str, urgency: str) -> Classification:
    def axis(label: str) -> AxisResult:
        return AxisResult(label=label, confidence=0.9, reasons=["тест"])

    return Classification(
        type=axis(type_), topic=axis(topic), urgency=axis(urgency), appeal_kind=None, needs_review=False, version="v"
    )


def test_metrics_by_hand() -> None:
    # 4 messages: urgency has 2 true urgent, the classifier finds 1 of them plus 1 false alarm.
    examples = [
        Example("", "", "info_request", "land", "urgent"),
        Example("", "", "info_request", "land", "urgent"),
        Example("", "", "appeal", "lease", "normal"),
        Example("", "", "appeal", "lease", "normal"),
    ]
    results = [
        result("info_request", "land", "urgent"),
        result("appeal", "land", "normal"),
        result("appeal", "lease", "urgent"),
        result("appeal", "lease", "normal"),
    ]
    report = metrics(examples, results)
    urgency = report["urgency"]
    assert isinstance(urgency, dict)
    assert urgency["urgent"]["precision"] == 0.5
    assert urgency["urgent"]["recall"] == 0.5
    type_report = report["type"]
    assert isinstance(type_report, dict)
    # info_request: P 1, R 0.5, F1 2/3; appeal: P 2/3, R 1, F1 0.8; macro (2/3 + 0.8) / 2
    assert type_report["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2, abs=1e-4)
    assert type_report["confusion"] == {
        "info_request": {"info_request": 1, "appeal": 1},
        "appeal": {"info_request": 0, "appeal": 2},
    }
    assert type_report["per_class"]["appeal"]["support"] == 2
    assert report["n"] == 4


def test_evaluate_shape_and_report_text() -> None:
    examples = read_dataset(DEV)[:30]

    class Always:
        def classify(self, subject: str, body: str) -> Classification:
            return result("appeal", "other", "normal")

    report: dict[str, Any] = evaluate(Always(), examples)
    for axis in ("type", "topic", "urgency"):
        assert set(report[axis]) >= {"macro_f1", "per_class", "confusion"}
    assert set(report["urgency"]["urgent"]) >= {"precision", "recall"}
    text = format_report(report)
    assert "macro-F1" in text and "Матрица ошибок" in text and "Обращение гражданина (appeal)" in text
