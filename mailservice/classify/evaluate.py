"""Quality figures of the classifier: labelled files in, per-class precision/recall/F1, macro-F1, confusion.

``evaluate`` scores a ready classifier on every example (fair only on messages it never saw: rules written
before the set, or a model trained elsewhere). ``cross_validate`` trains the model on k-1 folds and scores the
remaining fold, so every message is scored by a model that did not see it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from sklearn.metrics import precision_recall_fscore_support
from sklearn.model_selection import KFold, StratifiedKFold

from mailservice.classify.engine import Classification, Classifier
from mailservice.classify.model import MODEL_AXES, Example, train
from mailservice.classify.rules import REVIEW_AXES, RuleSet, Taxonomy, load_taxonomy
from mailservice.classify.text import analyze

COLUMNS = ("subject", "body", "type", "topic", "urgency")
OPTIONAL_COLUMNS = ("appeal_kind",)
# The end mark of a file written in chunks: a line of its own, ignored.
END_MARK = "#END"


class DatasetError(ValueError):
    """A labelled file cannot be used; the message names the file and, where known, the line."""


class SupportsClassify(Protocol):
    """Anything with the classifier's ``classify``."""

    def classify(self, subject: str, body: str) -> Classification: ...


# Reading ----------------------------------------------------------------------------------------------


def _delimiter(header: str, path: Path) -> str:
    """Tab, semicolon or comma: whichever splits the header into the expected columns (extension first)."""
    candidates = ["\t", ";", ","] if path.suffix.lower() != ".csv" else [",", ";", "\t"]
    for delimiter in candidates:
        names = {name.strip().strip('"').lower() for name in header.split(delimiter)}
        if set(COLUMNS) <= names:
            return delimiter
    return candidates[0]


def _unescape(value: str) -> str:
    # One message per line in hand-written TSV: "\n" stands for a line break.
    return value.replace("\\n", "\n").replace("\\t", "\t")


_HTML_RE = re.compile(r"<(html|body|p|div|br|span|img|table|font|b|i|strong)\b[^>]*>", re.IGNORECASE)


def _as_text(body: str) -> str:
    """An HTML-only letter as intake hands it to the classifier (mail/quotes.html_to_text); others as they are."""
    if not _HTML_RE.search(body):
        return body
    from mailservice.mail.quotes import html_to_text

    return html_to_text(body)


def read_dataset(path: Path, taxonomy: Taxonomy | None = None) -> list[Example]:
    """Read a CSV or TSV file with columns subject, body, type, topic, urgency (other columns are ignored).

    Leading lines starting with "#" are comments. Labels are checked against the taxonomy.
    """
    taxonomy = taxonomy or load_taxonomy()
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise DatasetError(f"файл не найден: {path}") from exc
    except IsADirectoryError as exc:
        raise DatasetError(f"это каталог, а не файл: {path}") from exc
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: файл не в кодировке UTF-8") from exc
    except OSError as exc:
        raise DatasetError(f"не удалось прочитать {path}: {exc.strerror or exc}") from exc
    lines = raw.splitlines(keepends=True)
    skipped = 0
    while skipped < len(lines) and (not lines[skipped].strip() or lines[skipped].lstrip().startswith("#")):
        skipped += 1
    if skipped == len(lines):
        raise DatasetError(f"{path}: файл пуст")
    delimiter = _delimiter(lines[skipped], path)
    reader = csv.reader(io.StringIO("".join(lines[skipped:])), delimiter=delimiter)
    header = [name.strip().lower() for name in next(reader, [])]
    missing = [name for name in COLUMNS if name not in header]
    if missing:
        found = ", ".join(name for name in header if name) or "нет"
        raise DatasetError(f"{path}: нет столбцов {', '.join(missing)} (в файле: {found}; нужны: {', '.join(COLUMNS)})")
    where = {name: header.index(name) for name in COLUMNS}
    kind_at = header.index("appeal_kind") if "appeal_kind" in header else None
    kinds = taxonomy["appeal_kind"].labels
    examples = []
    for row in reader:
        line = skipped + reader.line_num
        if not any(cell.strip() for cell in row) or (len(row) == 1 and row[0].strip() == END_MARK):
            continue
        if len(row) < max(where.values()) + 1:
            raise DatasetError(f"{path}:{line}: {len(row)} полей вместо {len(header)}")
        values = {name: row[index] for name, index in where.items()}
        labels = {axis: values[axis].strip().lower() for axis in MODEL_AXES}
        for axis, label in labels.items():
            if label not in taxonomy[axis].labels:
                allowed = ", ".join(taxonomy[axis].labels)
                raise DatasetError(f"{path}:{line}: метка {label!r} не из оси {axis} ({allowed})")
        kind = row[kind_at].strip().lower() if kind_at is not None and kind_at < len(row) else ""
        if kind and kind not in kinds:
            raise DatasetError(f"{path}:{line}: вид обращения {kind!r} не из {', '.join(kinds)}")
        examples.append(
            Example(
                subject=_unescape(values["subject"]).strip(),
                body=_as_text(_unescape(values["body"])).strip(),
                type=labels["type"],
                topic=labels["topic"],
                urgency=labels["urgency"],
                appeal_kind=kind,
            )
        )
    if not examples:
        raise DatasetError(f"{path}: нет ни одной строки с данными")
    return examples


def read_datasets(paths: Iterable[Path], taxonomy: Taxonomy | None = None) -> list[Example]:
    """All examples of several files, in order."""
    taxonomy = taxonomy or load_taxonomy()
    return [example for path in paths for example in read_dataset(path, taxonomy)]


# The held-out part ------------------------------------------------------------------------------------------

# One message in HELD_OUT_EVERY is held out of training, chosen by a hash of its text: the same messages on
# every machine and in every run, and a message keeps its side when others are added to the file.
HELD_OUT_EVERY = 5


def is_held_out(example: Example) -> bool:
    """Whether ``example`` belongs to the held-out part (about a fifth of any set, stable)."""
    digest = hashlib.sha256(f"{example.subject}\x00{example.body}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % HELD_OUT_EVERY == 0


def split(examples: Iterable[Example]) -> tuple[list[Example], list[Example]]:
    """The training part and the held-out part, each in file order."""
    training: list[Example] = []
    held_out: list[Example] = []
    for example in examples:
        (held_out if is_held_out(example) else training).append(example)
    return training, held_out


# Scoring ----------------------------------------------------------------------------------------------


def _axis_metrics(truth: Sequence[str], predicted: Sequence[str], order: Sequence[str]) -> dict[str, object]:
    present = set(truth) | set(predicted)
    labels = [label for label in order if label in present] + sorted(present - set(order))
    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, labels=labels, zero_division=0.0)
    per_class = {
        label: {
            "precision": round(float(precision[i]), 4),
            "recall": round(float(recall[i]), 4),
            "f1": round(float(f1[i]), 4),
            "support": int(support[i]),
        }
        for i, label in enumerate(labels)
    }
    confusion = {label: {other: 0 for other in labels} for label in labels}
    for true_label, predicted_label in zip(truth, predicted, strict=True):
        confusion[true_label][predicted_label] += 1
    correct = sum(1 for a, b in zip(truth, predicted, strict=True) if a == b)
    return {
        "macro_f1": round(float(sum(f1) / len(labels)), 4) if labels else 0.0,
        "accuracy": round(correct / len(truth), 4) if truth else 0.0,
        "per_class": per_class,
        "confusion": confusion,
    }


def metrics(
    examples: Sequence[Example], results: Sequence[Classification], taxonomy: Taxonomy | None = None
) -> dict[str, object]:
    """Figures for predictions already made, one result per example in the same order."""
    taxonomy = taxonomy or load_taxonomy()
    if len(examples) != len(results):
        raise ValueError("one result per example is needed")
    report: dict[str, object] = {}
    for axis in MODEL_AXES:
        truth = [example.label(axis) for example in examples]
        predicted = [getattr(result, axis).label for result in results]
        axis_report = _axis_metrics(truth, predicted, taxonomy[axis].labels)
        if axis == "urgency":
            # The shape: {"urgency": {"urgent": {"precision": ..., "recall": ...}}}.
            per_class = axis_report["per_class"]
            assert isinstance(per_class, dict)
            for label in taxonomy[axis].labels:
                axis_report[label] = per_class.get(label, {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0})
        report[axis] = axis_report
    report["n"] = len(examples)
    report.update(review_figures(examples, results))
    versions = sorted({result.version for result in results})
    report["version"] = versions[0] if len(versions) == 1 else versions
    return report


def decision_right(example: Example, result: Classification) -> bool:
    """A decision is right when its type and its topic are both right (what routes a letter to the right desk;
    urgency is reported on its own axis)."""
    return result.type.label == example.type and result.topic.label == example.topic


def review_figures(examples: Sequence[Example], results: Sequence[Classification]) -> dict[str, object]:
    """What ``needs_review`` is worth (issue 13 point 3): the share of letters flagged (either decision), and how
    often the type and topic decisions left unflagged are right (a letter whose topic is flagged still has its
    type decision counted); per axis, the share flagged and the share right of all messages."""
    n = len(results)
    flagged, right, _ = _decision_arrays(examples, results)
    reading = _review_reading(flagged, right)
    unflagged_letters = [(e, r) for e, r in zip(examples, results, strict=True) if not r.needs_review]
    return {
        "needs_review_share": reading["needs_review_share"],
        "unflagged_decisions": reading["unflagged_decisions"],
        "unflagged_accuracy": reading["unflagged_accuracy"],
        "flagged_share": {axis: reading[f"{axis}_flagged_share"] for axis in REVIEW_AXES},
        # The letters with no decision flagged, and the share of them with type and topic both right.
        "unflagged_letters": len(unflagged_letters),
        "unflagged_letters_accuracy": round(
            sum(decision_right(e, r) for e, r in unflagged_letters) / len(unflagged_letters), 4
        )
        if unflagged_letters
        else 0.0,
        "axis_accuracy": {
            **{axis: _share(examples, results, axis) for axis in MODEL_AXES},
            "type_and_topic": round(sum(decision_right(e, r) for e, r in zip(examples, results, strict=True)) / n, 4)
            if n
            else 0.0,
        },
    }


def _decision_arrays(
    examples: Sequence[Example], results: Sequence[Classification]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per review axis (rows: type, topic) and letter (columns): flagged, right, and the margin."""
    pairs = list(zip(examples, results, strict=True))
    flagged = np.array([[axis in r.review for _, r in pairs] for axis in REVIEW_AXES], dtype=bool).reshape(2, -1)
    right = np.array(
        [[e.label(axis) == getattr(r, axis).label for e, r in pairs] for axis in REVIEW_AXES], dtype=bool
    ).reshape(2, -1)
    margins = np.array([[getattr(r, axis).margin for _, r in pairs] for axis in REVIEW_AXES], dtype=float)
    return flagged, right, margins.reshape(2, -1)


def _review_reading(flagged: np.ndarray, right: np.ndarray) -> dict[str, float | int]:
    """The figures of a review flag given per axis (``flagged``, ``right``: review axes x letters)."""
    n = flagged.shape[1]
    kept = ~flagged
    kept_n = int(kept.sum())
    reading: dict[str, float | int] = {
        "needs_review_share": round(float(flagged.any(axis=0).mean()), 4) if n else 0.0,
        "unflagged_decisions": kept_n,
        "unflagged_right": int((kept & right).sum()),
        "unflagged_accuracy": round(float((kept & right).sum()) / kept_n, 4) if kept_n else 0.0,
    }
    for index, axis in enumerate(REVIEW_AXES):
        reading[f"{axis}_flagged_share"] = round(float(flagged[index].mean()), 4) if n else 0.0
    return reading


# How rules.yaml review_margins were chosen (issue 13 point 3), written down before the held-out part was scored
# with them: on 5-fold cross-validation of the TRAINING part only (evaluate.split; bench/learning_curve.py
# --choose prints the choice), over a grid of 0.02 for each axis, the pair that flags the fewest letters among
# those whose unflagged decisions are right with a one-sided 95% Wilson lower bound of at least 95%. The lower
# bound, not the point estimate, because the pair is picked among hundreds on the same letters (the point
# estimate of the winner is optimistic) and the held-out letters are a new sample. Ties: fewer letters flagged,
# then the higher bound, then the smaller margins.
REVIEW_TARGET_RIGHT = 0.95
REVIEW_BOUND_Z = 1.6449  # one-sided 95%
REVIEW_GRID = tuple(float(value) for value in np.round(np.arange(0.0, 1.0001, 0.02), 2))


def wilson_lower_bound(right: int, n: int, z: float = REVIEW_BOUND_Z) -> float:
    """The lower end of the Wilson score interval of a binomial share ``right / n``."""
    if n == 0:
        return 0.0
    p = right / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - spread) / (1 + z * z / n)


def choose_review_margins(
    examples: Sequence[Example], results: Sequence[Classification], grid: Sequence[float] = REVIEW_GRID
) -> dict[str, object]:
    """The review margins by the rule above, from cross-validated ``results``; with the figures at them."""
    _, right, margins = _decision_arrays(examples, results)
    best: tuple[float, float, float] | None = None
    chosen = (1.0, 1.0)
    for type_margin in grid:
        for topic_margin in grid:
            flagged = margins < np.array([[type_margin], [topic_margin]])
            point = _review_reading(flagged, right)
            bound = wilson_lower_bound(int(point["unflagged_right"]), int(point["unflagged_decisions"]))
            if bound < REVIEW_TARGET_RIGHT:
                continue
            key = (float(point["needs_review_share"]), -bound, type_margin + topic_margin)
            if best is None or key < best:
                best, chosen = key, (type_margin, topic_margin)
    flagged = margins < np.array([[chosen[0]], [chosen[1]]])
    point = _review_reading(flagged, right)
    return {
        "review_margins": dict(zip(REVIEW_AXES, chosen, strict=True)),
        "found": best is not None,
        **point,
        "lower_bound": round(wilson_lower_bound(int(point["unflagged_right"]), int(point["unflagged_decisions"])), 4),
    }


def share_flagged_for(scored: Sequence[tuple[float, bool]], target: float) -> float:
    """The smallest share of decisions that flagging the lowest scores first must flag so that at least
    ``target`` of the rest are right; ``scored`` holds (review score, right) pairs. Ties keep their order."""
    ordered = [right for _, right in sorted(scored, key=lambda pair: pair[0])]
    n = len(ordered)
    right_left = sum(ordered)
    for flagged in range(n):
        if right_left >= target * (n - flagged):
            return flagged / n
        right_left -= ordered[flagged]
    return 1.0


def _share(examples: Sequence[Example], results: Sequence[Classification], axis: str) -> float:
    right = sum(e.label(axis) == getattr(r, axis).label for e, r in zip(examples, results, strict=True))
    return round(right / len(examples), 4) if examples else 0.0


def evaluate(classifier: SupportsClassify, examples: Iterable[Example]) -> dict[str, object]:
    """Classify every example and report per axis: macro-F1, per-class figures and the confusion matrix."""
    data = list(examples)
    results = [classifier.classify(example.subject, example.body) for example in data]
    taxonomy = classifier.taxonomy if isinstance(classifier, Classifier) else None
    return metrics(data, results, taxonomy)


def cross_validated_results(
    rules: RuleSet,
    data: Sequence[Example],
    folds: int = 5,
    seed: int = 0,
    train_share: float = 1.0,
    draw_seed: int | None = None,
) -> list[Classification]:
    """Each example classified by rules plus a model trained on the other k-1 folds (stratified on the type).

    ``train_share`` below 1 trains each fold's model on that share of its training folds only, drawn at random
    (``draw_seed``, by default ``seed``) from each: the points of a learning curve on the same folds."""
    if folds < 2 or folds > len(data):
        raise ValueError("between two folds and one fold per example are needed")
    if not 0.0 < train_share <= 1.0:
        raise ValueError("train_share must be in (0, 1]")
    texts = [analyze(example.subject, example.body) for example in data]
    results: list[Classification | None] = [None] * len(data)
    # Stratify on the type, the axis with the rarest labels, so every fold sees every type.
    strata = [example.type for example in data]
    splits: Iterable[tuple[Any, Any]]
    if min(Counter(strata).values()) >= folds:
        splits = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(texts, strata)
    else:  # a type rarer than the number of folds cannot be spread over all of them
        splits = KFold(n_splits=folds, shuffle=True, random_state=seed).split(texts)
    draw = np.random.default_rng(seed if draw_seed is None else draw_seed)
    for train_index, test_index in splits:
        if train_share < 1.0:
            kept = max(2, round(train_share * len(train_index)))
            train_index = np.sort(draw.choice(train_index, size=kept, replace=False))
        fold_model = train(
            [data[i] for i in train_index],
            rules_version=rules.version,
            analyzed=[texts[i] for i in train_index],
        )
        classifier = Classifier(rules, fold_model)
        for i in test_index:
            results[i] = classifier.classify_analyzed(texts[i])
    return [result for result in results if result is not None]


def cross_validate(rules: RuleSet, examples: Iterable[Example], folds: int = 5, seed: int = 0) -> dict[str, object]:
    """Rules plus a model trained on k-1 folds, scored on the held-out fold; figures over all the folds."""
    data = list(examples)
    report = metrics(data, cross_validated_results(rules, data, folds, seed), rules.taxonomy)
    report["folds"] = folds
    report["version"] = f"rules-{rules.version}+model-cv{folds}"
    return report


def evaluate_held_out(rules: RuleSet, examples: Iterable[Example]) -> dict[str, object]:
    """Rules plus a model trained on the training part of ``examples``, scored on their held-out part."""
    training, held_out = split(examples)
    if len(training) < 2 or not held_out:
        raise DatasetError(f"слишком мало писем для отложенной части: {len(training)} + {len(held_out)}")
    classifier = Classifier(rules, train(training, rules_version=rules.version))
    report = evaluate(classifier, held_out)
    report["training_n"] = len(training)
    report["held_out"] = f"1 из {HELD_OUT_EVERY} по хешу текста"
    return report


# Presentation ----------------------------------------------------------------------------------------------


def format_report(report: dict[str, object], taxonomy: Taxonomy | None = None) -> str:
    """The figures as plain-text tables with Russian headings."""
    taxonomy = taxonomy or load_taxonomy()
    lines: list[str] = [f"Сообщений: {report.get('n')}; версия: {report.get('version')}"]
    for axis in MODEL_AXES:
        axis_report = report[axis]
        assert isinstance(axis_report, dict)
        names = taxonomy[axis]
        lines.append("")
        lines.append(f"{names.name}: macro-F1 {axis_report['macro_f1']:.3f}, доля верных {axis_report['accuracy']:.3f}")
        titles = {label: f"{names.display_name(label)} ({label})" for label in axis_report["per_class"]}
        width = max(len(title) for title in [*titles.values(), "метка"])
        lines.append(f"  {'метка':<{width}} {'точность':>9} {'полнота':>8} {'F1':>6} {'число':>6}")
        for label, row in axis_report["per_class"].items():
            lines.append(
                f"  {titles[label]:<{width}} {row['precision']:>9.3f} {row['recall']:>8.3f} {row['f1']:>6.3f}"
                f" {row['support']:>6}"
            )
        confusion = axis_report["confusion"]
        labels = list(confusion)
        lines.append("  Матрица ошибок (строки: верная метка, столбцы: ответ классификатора)")
        width = max(len(label) for label in labels) + 1
        lines.append("  " + " " * width + "".join(f"{label[:8]:>9}" for label in labels))
        for label in labels:
            lines.append(f"  {label:<{width}}" + "".join(f"{confusion[label][other]:>9}" for other in labels))
    lines.append("")
    flagged = report.get("flagged_share")
    lines.append(f"На проверку сотруднику: {float(str(report.get('needs_review_share', 0))) * 100:.1f}% писем")
    if isinstance(flagged, dict):
        lines.append(
            f"  из них решение о типе: {flagged['type'] * 100:.1f}% писем, о теме: {flagged['topic'] * 100:.1f}% писем"
        )
    lines.append(
        "Верных решений о типе и теме среди не отправленных на проверку: "
        f"{float(str(report.get('unflagged_accuracy', 0))) * 100:.1f}%"
        f" (из {report.get('unflagged_decisions')})"
    )
    return "\n".join(lines)
