"""Reading labelled files and computing the quality figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mailservice.classify.engine import PACKAGED_SETS, AxisResult, Classification
from mailservice.classify.evaluate import (
    DatasetError,
    choose_review_margins,
    cross_validated_results,
    evaluate,
    format_report,
    is_held_out,
    metrics,
    read_dataset,
    read_datasets,
    share_flagged_for,
    split,
    wilson_lower_bound,
)
from mailservice.classify.model import Example
from mailservice.classify.rules import load_rules, load_taxonomy

DEV = Path(__file__).parent / "data" / "classify_dev.tsv"


# The packaged sets must hold at least this many letters (the README says so).
PACKAGED_AT_LEAST = 500


def test_packaged_sets_are_large_and_cover_every_label_several_times() -> None:
    examples = read_datasets(PACKAGED_SETS)
    assert len(read_dataset(DEV)) >= 200
    assert len(examples) >= PACKAGED_AT_LEAST
    taxonomy = load_taxonomy()
    for axis in ("type", "topic", "urgency"):
        for label in taxonomy[axis].labels:
            assert sum(e.label(axis) == label for e in examples) >= 5, (axis, label)
    for path in PACKAGED_SETS:
        lines = path.read_text(encoding="utf-8").splitlines()
        header = " ".join(line for line in lines if line.startswith("#")).lower()
        assert lines[0].startswith("#") and "written for this project" in header, path
    # No letter twice: a copy on both sides of the split would flatter the held-out figures.
    assert len({(e.subject, e.body) for e in examples}) == len(examples)


def test_held_out_part_is_a_stable_fifth() -> None:
    examples = read_datasets(PACKAGED_SETS)
    training, held_out = split(examples)
    assert len(training) + len(held_out) == len(examples)
    assert 0.17 <= len(held_out) / len(examples) <= 0.23
    # A letter keeps its side whatever else is in the set (the split is by the letter's own text).
    assert split(held_out[:7] + training[:7]) == (training[:7], held_out[:7])
    assert all(is_held_out(e) == is_held_out(Example(e.subject, e.body, "other", "other", "normal")) for e in held_out)


def test_appeal_kind_column_end_mark_and_html_bodies(tmp_path: Path) -> None:
    path = tmp_path / "set.tsv"
    path.write_text(
        "subject\tbody\ttype\ttopic\turgency\tappeal_kind\n"
        "Яма\tЯма на дороге\tappeal\toutside\tnormal\tcomplaint\n"
        "\t<div>Прошу&nbsp;сообщить</div><div>часы приёма</div>\tinfo_request\tstate_services\tnormal\t\n"
        "#END\n",
        encoding="utf-8",
    )
    first, second = read_dataset(path)
    assert first == Example("Яма", "Яма на дороге", "appeal", "outside", "normal", "complaint")
    assert "<" not in second.body and "&" not in second.body and second.appeal_kind == ""
    assert second.body.split() == ["Прошу", "сообщить", "часы", "приёма"]
    path.write_text("subject\tbody\ttype\ttopic\turgency\tappeal_kind\nа\tб\tappeal\tland\tnormal\tплач\n")
    with pytest.raises(DatasetError, match=":2: вид обращения 'плач'"):
        read_dataset(path)


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
        return AxisResult(label=label, confidence=0.9, reasons=["тест"], margin=0.9)

    return Classification(
        type=axis(type_), topic=axis(topic), urgency=axis(urgency), appeal_kind=None, review=(), version="v"
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


def scored_result(
    type_: str, topic: str, type_margin: float, topic_margin: float, review: tuple[str, ...] = ()
) -> Classification:
    return Classification(
        type=AxisResult(label=type_, confidence=1.0 - type_margin, reasons=[], margin=type_margin),
        topic=AxisResult(label=topic, confidence=1.0 - topic_margin, reasons=[], margin=topic_margin),
        urgency=AxisResult(label="normal", confidence=1.0, reasons=[]),
        appeal_kind=None,
        review=review,
        version="v",
    )


# Truth is appeal/land for all four:
# 1: type right, topic right, nothing flagged -> two right decisions;
# 2: type wrong (flagged), topic right -> letter flagged, its topic decision still counts (right);
# 3: type wrong, topic wrong (flagged) -> letter flagged, its type decision counts (wrong);
# 4: type right, topic wrong, nothing flagged -> one right and one wrong decision.
FOUR_LETTERS = [
    ("appeal", "land", 0.5, 0.5, ()),
    ("info_request", "land", 0.1, 0.9, ("type",)),
    ("info_request", "lease", 0.9, 0.1, ("topic",)),
    ("appeal", "lease", 0.9, 0.9, ()),
]


def test_review_figures_count_the_unflagged_decisions_by_hand() -> None:
    # Issue 13 point 3: letters flagged 2 of 4; decisions left unflagged 6, right 4.
    examples = [Example("", "", "appeal", "land", "normal")] * 4
    results = [scored_result(*row) for row in FOUR_LETTERS]
    report = metrics(examples, results)
    assert report["needs_review_share"] == 0.5
    assert report["unflagged_decisions"] == 6
    assert report["unflagged_accuracy"] == round(4 / 6, 4)
    assert report["flagged_share"] == {"type": 0.25, "topic": 0.25}
    # Letters with nothing flagged: 1 (both right) and 4 (topic wrong).
    assert report["unflagged_letters"] == 2 and report["unflagged_letters_accuracy"] == 0.5


def test_review_margins_are_chosen_on_the_lower_bound() -> None:
    # 20 copies of four letters (truth appeal/land): only the 0.1 type and the 0.1 topic decisions are wrong.
    # Flagging nothing leaves 7 of 8 decisions of each copy right (87.5%); flagging margins under 0.12 flags exactly
    # the wrong ones (half the letters) and leaves 120 of 120 right, lower bound 120/(120+z^2) = 0.978. Of the
    # pairs that do, the smallest margins win.
    decided = [
        ("appeal", "land", 0.5, 0.5),
        ("info_request", "land", 0.1, 0.9),
        ("appeal", "lease", 0.9, 0.1),
        ("appeal", "land", 0.9, 0.9),
    ]
    examples = [Example("", "", "appeal", "land", "normal")] * 80
    results = [scored_result(*row) for row in decided] * 20
    chosen = choose_review_margins(examples, results)
    assert chosen["found"] is True
    assert chosen["review_margins"] == {"type": 0.12, "topic": 0.12}
    assert chosen["needs_review_share"] == 0.5 and chosen["unflagged_accuracy"] == 1.0
    assert chosen["lower_bound"] == pytest.approx(120 / (120 + 1.6449**2), abs=1e-4)
    # With one copy the same pair is right 6 of 6, but the bound (0.69) is under 95%: no pair qualifies.
    assert choose_review_margins(examples[:4], results[:4])["found"] is False


def test_wilson_lower_bound_by_hand() -> None:
    # Wilson (1927) score interval, one-sided 95% (z = 1.6449): 95 of 100 ->
    # (0.95 + z^2/200 - z * sqrt(0.0475/100 + z^2/40000)) / (1 + z^2/100) = (0.96353 - 0.03832) / 1.02706 = 0.9008.
    assert wilson_lower_bound(95, 100) == pytest.approx(0.9008, abs=1e-4)
    assert wilson_lower_bound(0, 0) == 0.0
    assert wilson_lower_bound(100, 100) == pytest.approx(100 / (100 + 1.6449**2), abs=1e-6)


def test_share_flagged_for_by_hand() -> None:
    # Scores low to high: wrong, right, wrong, right x7. Nothing flagged: 8/10 right; one: 8/9; three: 7/7.
    scored = [(0.1, False), (0.2, True), (0.3, False)] + [(0.5 + i / 100, True) for i in range(7)]
    assert share_flagged_for(scored, 0.8) == 0.0
    assert share_flagged_for(scored, 0.85) == 0.1
    assert share_flagged_for(scored, 0.95) == 0.3
    assert share_flagged_for([(0.5, False)], 0.95) == 1.0


def test_learning_curve_points_train_on_a_share_of_each_fold() -> None:
    # Every letter is still classified once; a model trained on a quarter of the folds decides differently
    # (were the share ignored, the two runs would be identical: same folds, same seed).
    data = read_dataset(DEV)[:60]
    rules = load_rules()
    full = cross_validated_results(rules, data, folds=3)
    quarter = cross_validated_results(rules, data, folds=3, train_share=0.25)
    assert len(full) == len(quarter) == len(data)
    assert [r.type.confidence for r in full] != [r.type.confidence for r in quarter]
    for share in (0.0, 1.5):
        with pytest.raises(ValueError, match="train_share"):
            cross_validated_results(rules, data, folds=3, train_share=share)


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
    # Nothing flagged: both decisions of all 30 letters are counted among the unflagged.
    assert "На проверку сотруднику: 0.0% писем" in text and "(из 60)" in text
