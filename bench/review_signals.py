"""What sorts right from wrong decisions of the classifier (issue 13, needs_review): the measurement behind the
"Round 3" section of docs/labelling.md, on the TRAINING part of the packaged sets only.

Every training letter is classified by rules plus a model trained on the other four of five folds, exactly as
``classify evaluate --cv`` does. Beside that model each fold fits two others on the same features, one on the
word (lemma) columns only and one on the character columns only, and finds each letter's 10 nearest training
letters (cosine of the same features). Then several review scores are compared, each by the share it must flag
so that at least 95% of the rest have type and topic right ("flag for 95%"), and by the share right among the
rest when 35% are flagged. Scores that are themselves fitted (a logistic regression predicting "will be wrong")
are scored by a second, nested 5-fold cross-validation over the letters, averaged over four splits.

    .venv/bin/python bench/review_signals.py      # about 90 s of processor time

The held-out part is never read.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import StratifiedKFold, cross_val_predict  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler, normalize  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mailservice.classify.engine import PACKAGED_SETS, Classification, Classifier  # noqa: E402
from mailservice.classify.evaluate import decision_right, read_datasets, share_flagged_for, split  # noqa: E402
from mailservice.classify.model import C, train  # noqa: E402
from mailservice.classify.rules import load_rules  # noqa: E402
from mailservice.classify.text import analyze  # noqa: E402

FOLDS = 5
NEIGHBOURS = 10
TARGET_RIGHT = 0.95
FLAGGED_SHARE = 0.35


def flagged_for(scores: np.ndarray, right: np.ndarray, target: float = TARGET_RIGHT) -> float:
    """The smallest share that flagging the lowest scores first must flag to leave ``target`` right."""
    return share_flagged_for(list(zip(scores.tolist(), right.tolist(), strict=True)), target)


def right_when_flagging(scores: np.ndarray, right: np.ndarray, share: float = FLAGGED_SHARE) -> float:
    """The share right among the letters left when the lowest ``share`` of scores is flagged."""
    return float(right[np.argsort(scores, kind="stable")][round(share * len(right)) :].mean())


def _top(probabilities: dict[str, float]) -> str:
    return max(probabilities, key=lambda label: probabilities[label])


def main() -> None:
    rules = load_rules()
    training, _ = split(read_datasets(PACKAGED_SETS))
    texts = [analyze(example.subject, example.body) for example in training]
    n = len(training)
    results: list[Classification | None] = [None] * n
    signals = np.zeros((n, 10))  # per letter: the extra signals below
    strata = [example.type for example in training]
    for train_index, test_index in StratifiedKFold(FOLDS, shuffle=True, random_state=0).split(texts, strata):
        fold = [training[i] for i in train_index]
        model = train(fold, rules_version=rules.version, analyzed=[texts[i] for i in train_index])
        classifier = Classifier(rules, model)
        features_train = model._features([texts[i] for i in train_index])
        features_test = model._features([texts[i] for i in test_index])
        width = len(model.word_vectorizer.vocabulary_)
        # The two single-block models (the blocks are normalised separately, so the columns are the same).
        single = {}
        for block, columns in (("word", slice(0, width)), ("char", slice(width, None))):
            for axis in ("type", "topic"):
                estimator = LogisticRegression(C=C, class_weight="balanced", max_iter=2000)
                estimator.fit(features_train[:, columns], [example.label(axis) for example in fold])
                probabilities = estimator.predict_proba(features_test[:, columns])
                single[block, axis] = [dict(zip(estimator.classes_, row, strict=True)) for row in probabilities]
        similarity = (normalize(features_test) @ normalize(features_train).T).toarray()
        vocabulary = model.word_vectorizer.vocabulary_
        for row, i in enumerate(test_index):
            result = results[i] = classifier.classify_analyzed(texts[i])
            nearest = np.argsort(-similarity[row])[:NEIGHBOURS]
            lemmas = texts[i].lemmas
            chosen = {"type": result.type.label, "topic": result.topic.label}
            signals[i] = [
                *(sum(_top(single[block, axis][row]) == chosen[axis] for block in ("word", "char")) for axis in chosen),
                *(single[block, axis][row].get(chosen[axis], 0.0) for block in ("word", "char") for axis in chosen),
                similarity[row, nearest[0]],
                np.mean([fold[k].type == chosen["type"] for k in nearest]),
                np.mean([fold[k].topic == chosen["topic"] for k in nearest]),
                np.mean([lemma not in vocabulary for lemma in lemmas]) if lemmas else 1.0,
            ]
    decided = [result for result in results if result is not None]
    right = np.array([decision_right(example, result) for example, result in zip(training, decided, strict=True)])
    margins = np.array([[r.type.margin, r.topic.margin, r.type.margin * r.topic.margin] for r in decided])
    print(f"{n} training letters; type and topic right: {right.mean():.1%}")
    print(f"{'review score':<60} {'flag for 95%':>13} {'right at 35%':>13}")

    def show(name: str, scores: np.ndarray) -> None:
        print(f"{name:<60} {flagged_for(scores, right):>13.1%} {right_when_flagging(scores, right):>13.1%}")

    def fitted(name: str, features: np.ndarray, c: float = 0.3) -> None:
        flagged, kept = [], []
        for seed in range(4):
            scores = cross_val_predict(
                make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000)),
                features,
                right,
                cv=StratifiedKFold(FOLDS, shuffle=True, random_state=seed),
                method="predict_proba",
            )[:, 1]
            flagged.append(flagged_for(scores, right))
            kept.append(right_when_flagging(scores, right))
        print(f"{name:<60} {np.mean(flagged):>13.1%} {np.mean(kept):>13.1%}")

    show("type margin x topic margin (the engine's flag of rounds 1-4)", margins[:, 2])
    show("smaller of the two margins", margins[:, :2].min(axis=1))
    show("type confidence x topic confidence", np.array([r.type.confidence * r.topic.confidence for r in decided]))
    show("agreement of word and char models only (+ margins to break ties)", signals[:, :2].sum(axis=1) + margins[:, 2])
    fitted("fitted on the margins", margins)
    fitted("fitted on margins + word/char models' agreement and probabilities", np.hstack([margins, signals[:, :6]]))
    fitted("fitted on margins + 10 nearest letters' labels + unknown lemmas", np.hstack([margins, signals[:, 6:]]))
    fitted("fitted on all of the above", np.hstack([margins, signals]))


if __name__ == "__main__":
    main()
