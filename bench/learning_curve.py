"""The learning curve of the classifier (issue 13, docs/labelling.md round 4), on the TRAINING part only.

The training part of the packaged sets (evaluate.split; the held-out fifth is never read) is cut into the five
folds of ``classify evaluate --cv``. Each fold is classified by rules plus a model trained on a random 25, 50, 75
or 100% of the other four folds (evaluate.cross_validated_results). Per size: type, topic and both right, the
share the review score must flag for 95% of the rest to be right ("flag for 95%"), the share right when 35% are
flagged, and the same two by the per-decision reading (evaluate.decision_review_figures: the type and the topic
flagged apart, a letter flagged when either is). At 100% it also prints which (type, topic) pairs the
cross-validated model confuses most, where new letters would help.

    .venv/bin/python bench/learning_curve.py [--seeds 2]   # about 2 minutes of processor time per seed

The last line is the figures as JSON.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mailservice.classify.engine import PACKAGED_SETS, review_score  # noqa: E402
from mailservice.classify.evaluate import (  # noqa: E402
    cross_validated_results,
    decision_review_figures,
    decision_right,
    read_datasets,
    share_flagged_for,
    split,
)
from mailservice.classify.rules import load_rules  # noqa: E402

FOLDS = 5
SHARES = (0.25, 0.5, 0.75, 1.0)
TARGET_RIGHT = 0.95
FLAGGED_SHARE = 0.35


def right_when_flagging(scored: list[tuple[float, bool]], share: float = FLAGGED_SHARE) -> float:
    """The share right among the decisions left when the lowest ``share`` of scores is flagged."""
    kept = [right for _, right in sorted(scored, key=lambda pair: pair[0])][round(share * len(scored)) :]
    return sum(kept) / len(kept)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1, help="subsample draws per size (folds stay the same)")
    args = parser.parse_args()
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
        row = {"share": share, "letters": round(share * n * (FOLDS - 1) / FOLDS)}
        row.update({key: round(sum(values) / len(values), 4) for key, values in figures.items()})
        if share == 1.0:
            row["decision_thresholds"] = per_decision["best_thresholds"]
        rows.append(row)
        print(
            f"{row['letters']:>8} {row['type']:>7.1%} {row['topic']:>7.1%} {row['both']:>7.1%}"
            f" {row['flag_for_95']:>7.1%} {row['right_at_35']:>9.1%}"
            f" {row['decisions_flag_for_95']:>11.1%} {row['decisions_right_at_35']:>13.1%}"
        )
    print(f"Per-decision thresholds chosen at 100%: {rows[-1]['decision_thresholds']}")
    print("Most confused at 100% (true type/topic -> decided):")
    for pair, count in confused.most_common(15):
        print(f"  {count:>4}  {pair}")
    print(
        json.dumps({"training_letters": n, "folds": FOLDS, "curve": rows, "confused": dict(confused.most_common(25))})
    )


if __name__ == "__main__":
    main()
