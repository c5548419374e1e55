"""The learning curve of the classifier (issue 13, docs/labelling.md round 4), on the TRAINING part only.

The training part of the packaged sets (evaluate.split; the held-out fifth is never read) is cut into the five
folds of ``classify evaluate --cv``. Each fold is classified by rules plus a model trained on a random 25, 50, 75
or 100% of the other four folds (evaluate.cross_validated_results). Per size: type, topic and both right, and
the review margins evaluate.choose_review_margins picks on that cross-validation (the rule written there), with
the share of letters they flag, the share right of the unflagged decisions and its lower bound. At 100% it also
prints which (type, topic) pairs the cross-validated model confuses most, where new letters would help.

    .venv/bin/python bench/learning_curve.py [--seeds 2]   # 5 minutes at a load average of 5 on two cores
    .venv/bin/python bench/learning_curve.py --choose      # 100% only: the review_margins of rules.yaml

With ``--held-out REF`` it draws no curve: it trains on today's training part and scores the held-out part as
``classify evaluate`` does, in full and split into the letters that were already in the sets at the git
revision REF and those added since (a letter's side of the split depends only on its text, so the old held-out
letters are the same and before/after figures are comparable).

The last line is the figures as JSON.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mailservice.classify.engine import PACKAGED_SETS, Classifier  # noqa: E402
from mailservice.classify.evaluate import (  # noqa: E402
    choose_review_margins,
    cross_validated_results,
    decision_right,
    metrics,
    read_datasets,
    split,
)
from mailservice.classify.model import train  # noqa: E402
from mailservice.classify.rules import load_rules  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

FOLDS = 5
SHARES = (0.25, 0.5, 0.75, 1.0)


def held_out_then_and_now(ref: str) -> None:
    """The held-out figures of ``classify evaluate``, for all held-out letters, those already there at ``ref``
    and those added since."""
    with tempfile.TemporaryDirectory() as folder:
        then = []
        for path in PACKAGED_SETS:
            relative = path.resolve().relative_to(ROOT)
            text = subprocess.run(
                ["git", "-C", str(ROOT), "show", f"{ref}:{relative}"], check=True, capture_output=True, text=True
            ).stdout
            copy = Path(folder) / path.name
            copy.write_text(text, encoding="utf-8")
            then.append(copy)
        old_held_out = {(e.subject, e.body) for e in split(read_datasets(then))[1]}
    rules = load_rules()
    training, held_out = split(read_datasets(PACKAGED_SETS))
    classifier = Classifier(rules, train(training, rules_version=rules.version))
    results = [classifier.classify(e.subject, e.body) for e in held_out]
    report: dict[str, object] = {"training_n": len(training)}
    for name, keep in (
        ("all", lambda key: True),
        ("old", lambda key: key in old_held_out),
        ("new", lambda key: key not in old_held_out),
    ):
        chosen = [(e, r) for e, r in zip(held_out, results, strict=True) if keep((e.subject, e.body))]
        if not chosen:
            continue
        figures = metrics([e for e, _ in chosen], [r for _, r in chosen], rules.taxonomy)
        report[name] = {
            key: figures[key]
            for key in ("n", "needs_review_share", "unflagged_accuracy", "flagged_share", "axis_accuracy")
        }
        print(name, json.dumps(report[name], ensure_ascii=False))
    print(json.dumps(report))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1, help="subsample draws per size (folds stay the same)")
    parser.add_argument("--held-out", metavar="REF", help="score the held-out part, old letters (at REF) apart")
    parser.add_argument("--choose", action="store_true", help="only 100%%: the review margins of rules.yaml")
    args = parser.parse_args()
    if args.held_out:
        held_out_then_and_now(args.held_out)
        return
    rules = load_rules()
    training, _ = split(read_datasets(PACKAGED_SETS))
    n = len(training)
    rows = []
    confused: Counter[str] = Counter()
    print(f"{n} training letters, {FOLDS}-fold cross-validation, {args.seeds} draw(s) per size")
    print(
        f"{'letters':>8} {'type':>7} {'topic':>7} {'both':>7} {'margins':>12} {'flagged':>8} {'right':>7} {'bound':>7}"
    )
    for share in (1.0,) if args.choose else SHARES:
        figures: dict[str, list[float]] = {}
        for seed in range(args.seeds if share < 1.0 else 1):  # 100% draws nothing: one run
            results = cross_validated_results(rules, training, FOLDS, seed=0, train_share=share, draw_seed=seed)
            pairs = list(zip(training, results, strict=True))
            chosen = choose_review_margins(training, results)
            values = {
                "type": sum(e.type == r.type.label for e, r in pairs) / n,
                "topic": sum(e.topic == r.topic.label for e, r in pairs) / n,
                "both": sum(decision_right(e, r) for e, r in pairs) / n,
                "flagged": float(str(chosen["needs_review_share"])),
                "right": float(str(chosen["unflagged_accuracy"])),
                "bound": float(str(chosen["lower_bound"])),
            }
            for key, value in values.items():
                figures.setdefault(key, []).append(value)
            if share == 1.0:
                confused.update(
                    f"{e.type}/{e.topic} -> {r.type.label}/{r.topic.label}"
                    for e, r in pairs
                    if not decision_right(e, r)
                )
        row: dict[str, object] = {"share": share, "letters": round(share * n * (FOLDS - 1) / FOLDS)}
        row.update({key: round(sum(values) / len(values), 4) for key, values in figures.items()})
        margins = chosen["review_margins"]
        assert isinstance(margins, dict)
        row["review_margins"] = margins
        rows.append(row)
        print(
            f"{row['letters']:>8} {row['type']:>7.1%} {row['topic']:>7.1%} {row['both']:>7.1%}"
            f" {margins['type']:>5.2f}/{margins['topic']:<6.2f} {row['flagged']:>8.1%} {row['right']:>7.1%}"
            f" {row['bound']:>7.1%}"
        )
    print(f"review_margins chosen at 100% (rules.yaml): {rows[-1]['review_margins']}")
    print("Most confused at 100% (true type/topic -> decided):")
    for pair, count in confused.most_common(15):
        print(f"  {count:>4}  {pair}")
    print(
        json.dumps({"training_letters": n, "folds": FOLDS, "curve": rows, "confused": dict(confused.most_common(25))})
    )


if __name__ == "__main__":
    main()
