"""The learning curve of the classifier (issue 13, docs/labelling.md round 4), on the TRAINING part only.

The training part of the packaged sets (evaluate.split; the held-out fifth is never read) is cut into the five
folds of ``classify evaluate --cv``. Each fold is classified by rules plus a model trained on a random 25, 50, 75
or 100% of the other four folds (evaluate.cross_validated_results). Per size: type, topic and both right, the
share the review score must flag for 95% of the rest to be right ("flag for 95%"), the share right when 35% are
flagged, and the same two by the per-decision reading (evaluate.decision_review_figures: the type and the topic
flagged apart, a letter flagged when either is). At 100% it also prints which (type, topic) pairs the
cross-validated model confuses most, where new letters would help.

    .venv/bin/python bench/learning_curve.py [--seeds 2]   # 5 minutes at a load average of 5 on two cores

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

from mailservice.classify.engine import PACKAGED_SETS, Classifier, review_score  # noqa: E402
from mailservice.classify.evaluate import (  # noqa: E402
    cross_validated_results,
    decision_review_figures,
    decision_right,
    metrics,
    read_datasets,
    share_flagged_for,
    split,
)
from mailservice.classify.model import train  # noqa: E402
from mailservice.classify.rules import load_rules  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

FOLDS = 5
SHARES = (0.25, 0.5, 0.75, 1.0)
TARGET_RIGHT = 0.95
FLAGGED_SHARE = 0.35


def right_when_flagging(scored: list[tuple[float, bool]], share: float = FLAGGED_SHARE) -> float:
    """The share right among the decisions left when the lowest ``share`` of scores is flagged."""
    kept = [right for _, right in sorted(scored, key=lambda pair: pair[0])][round(share * len(scored)) :]
    return sum(kept) / len(kept)


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
            for key in ("n", "needs_review_share", "unflagged_accuracy", "axis_accuracy", "per_decision")
        }
        print(name, json.dumps(report[name], ensure_ascii=False))
    print(json.dumps(report))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1, help="subsample draws per size (folds stay the same)")
    parser.add_argument("--held-out", metavar="REF", help="score the held-out part, old letters (at REF) apart")
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
        f"{'letters':>8} {'type':>7} {'topic':>7} {'both':>7} {'flag95':>7} {'right@35':>9}"
        f" {'dec.flag95':>11} {'dec.right@35':>13}"
    )
    for share in SHARES:
        figures: dict[str, list[float]] = {}
        for seed in range(args.seeds if share < 1.0 else 1):  # 100% draws nothing: one run
            results = cross_validated_results(rules, training, FOLDS, seed=0, train_share=share, draw_seed=seed)
            pairs = list(zip(training, results, strict=True))
            scored = [(review_score(r.type, r.topic), decision_right(e, r)) for e, r in pairs]
            per_decision = decision_review_figures(training, results, thresholds=None)
            values = {
                "type": sum(e.type == r.type.label for e, r in pairs) / n,
                "topic": sum(e.topic == r.topic.label for e, r in pairs) / n,
                "both": sum(right for _, right in scored) / n,
                "flag_for_95": share_flagged_for(scored, TARGET_RIGHT),
                "right_at_35": right_when_flagging(scored),
                "decisions_flag_for_95": float(str(per_decision["best_flagged_share_for_target"])),
                "decisions_right_at_35": float(str(per_decision["best_unflagged_right_at_35"])),
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
        if share == 1.0:
            row["decision_thresholds"] = per_decision["best_thresholds"]
            # The review_threshold (rules.yaml) this cross-validation would choose: the first of 0.01, 0.02, ...
            # that leaves at least 95% of the unflagged letters right.
            row["review_threshold_for_95"] = next(
                (
                    step / 100
                    for step in range(1, 101)
                    if (kept := [right for score, right in scored if score >= step / 100])
                    and sum(kept) >= TARGET_RIGHT * len(kept)
                ),
                1.0,
            )
        rows.append(row)
        print(
            f"{row['letters']:>8} {row['type']:>7.1%} {row['topic']:>7.1%} {row['both']:>7.1%}"
            f" {row['flag_for_95']:>7.1%} {row['right_at_35']:>9.1%}"
            f" {row['decisions_flag_for_95']:>11.1%} {row['decisions_right_at_35']:>13.1%}"
        )
    print(f"Per-decision thresholds chosen at 100%: {rows[-1]['decision_thresholds']}")
    print(f"review_threshold for 95% at 100%: {rows[-1]['review_threshold_for_95']}")
    print("Most confused at 100% (true type/topic -> decided):")
    for pair, count in confused.most_common(15):
        print(f"  {count:>4}  {pair}")
    print(
        json.dumps({"training_letters": n, "folds": FOLDS, "curve": rows, "confused": dict(confused.most_common(25))})
    )


if __name__ == "__main__":
    main()
