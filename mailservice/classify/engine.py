"""The classifier staff and intake use: rules always, the trained model when there is one.

Per axis the rules' probabilities and the model's are averaged with the axis' ``model_weight`` (rules.yaml).
A model that is unsure spreads its probability and leaves the decision to the rules; without a model the rules
decide alone. The type and the topic are flagged for review apart, each when it was chosen by a narrow lead over
the runner-up (its margin under rules.yaml ``review_margins``): staff are told which decision to check.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from mailservice.classify import model as model_module
from mailservice.classify.model import MODEL_AXES, TrainedModel
from mailservice.classify.rules import REVIEW_AXES, AxisRules, AxisScores, RuleSet, load_rules, load_taxonomy
from mailservice.classify.text import AnalyzedText, analyze
from mailservice.config import get_settings
from mailservice.resources import package_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AxisResult:
    """The label of one axis, how sure the classifier is, and why (in Russian, for staff)."""

    label: str
    confidence: float
    reasons: list[str]
    name: str = ""  # the label's display name from the taxonomy
    # The label's lead over the runner-up (0 a tie, 1 no rival): how clearly the label was chosen.
    margin: float = 1.0

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "label": self.label,
            "name": self.name,
            "confidence": round(self.confidence, 4),
            "margin": round(self.margin, 4),
            "reasons": list(self.reasons),
        }


@dataclass(frozen=True)
class Classification:
    """The three labels of a request, the kind of an appeal, the decisions to review and what produced them."""

    type: AxisResult
    topic: AxisResult
    urgency: AxisResult
    appeal_kind: str | None
    # The axes whose decision staff should check (rules.REVIEW_AXES order): ("type",), ("topic",), both or none.
    review: tuple[str, ...]
    version: str
    appeal_kind_name: str | None = None

    @property
    def needs_review(self) -> bool:
        """Whether any decision needs a look by staff (the request goes to the "needs review" queue)."""
        return bool(self.review)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form (stored with the request, printed by ``classify text --json``)."""
        return {
            "type": self.type.as_dict(),
            "topic": self.topic.as_dict(),
            "urgency": self.urgency.as_dict(),
            "appeal_kind": self.appeal_kind,
            "appeal_kind_name": self.appeal_kind_name,
            "needs_review": self.needs_review,
            "review": list(self.review),
            "version": self.version,
        }


# The project's own labelled sets, written for it: the first development set (tidy requests, one per label and
# kind; tests/data/classify_dev.tsv links here) and the set that looks like real mail (one-liners, long letters,
# typos, HTML, letters outside the remit). Together they train the first model of a fresh install, so the
# service combines rules and model from the first message; `classify train` later retrains on them plus the
# labels staff confirmed; `classify evaluate` scores on their held-out part (evaluate.split).
SEED_SET = package_path("classify", "data", "dev_set.tsv")
MAIL_SET = package_path("classify", "data", "mail_set.tsv")
PACKAGED_SETS = (SEED_SET, MAIL_SET)
# Training the seed model takes seconds: two requests arriving at once on a fresh install train it once.
_seed_lock = threading.Lock()


def seed_model(path: Path, rules_version: str) -> TrainedModel | None:
    """Train a model from the packaged sets and keep it at ``path`` (in memory only when that is not writable)."""
    from mailservice.classify.evaluate import read_datasets

    sets = [path for path in PACKAGED_SETS if path.exists()]
    if not sets:
        return None
    trained = model_module.train(read_datasets(sets), rules_version=rules_version)
    try:
        model_module.save(trained, path)
    except OSError:
        log.warning("could not save the seed model to %s; using it from memory", path)
    return trained


def ensure_seed_model() -> bool:
    """Train the seed model now if the service has none yet (install and upgrade): the first letter then waits for
    nothing. False when a model was already there."""
    path = default_model_path()
    if path.exists():
        return False
    with _seed_lock:
        if path.exists():
            return False
        return seed_model(path, load_rules(None, load_taxonomy(None)).version) is not None


def default_model_path() -> Path:
    """Where ``classify train`` saves and the service looks for the model."""
    return get_settings().data_dir / "classify" / "model.joblib"


class Classifier:
    """Rules plus an optional trained model."""

    def __init__(self, rules: RuleSet, model: TrainedModel | None = None) -> None:
        self.rules = rules
        self.model = model
        self.taxonomy = rules.taxonomy

    @classmethod
    def load(
        cls, rules_path: Path | None = None, model_path: Path | None = None, taxonomy_path: Path | None = None
    ) -> Classifier:
        """Rules from ``rules_path`` (the packaged file by default) and the model from ``model_path``.

        Without ``model_path`` the model at ``settings.data_dir / "classify" / "model.joblib"`` is used when
        it exists; an explicit path must exist.
        """
        rules = load_rules(rules_path, load_taxonomy(taxonomy_path))
        if model_path is None:
            candidate = default_model_path()
            with _seed_lock:  # the second caller waits and then loads what the first one saved
                model = model_module.load(candidate) if candidate.exists() else seed_model(candidate, rules.version)
        else:
            model = model_module.load(model_path)
        return cls(rules, model)

    @property
    def version(self) -> str:
        """E.g. ``rules-3+model-20261125T1200-ab12cd``; recorded with every classified request."""
        rules = f"rules-{self.rules.version}"
        return f"{rules}+model-{self.model.model_id}" if self.model is not None else rules

    def classify(self, subject: str, body: str) -> Classification:
        """Classify one message."""
        return self.classify_analyzed(analyze(subject, body))

    def classify_many(self, messages: list[tuple[str, str]]) -> list[Classification]:
        """Classify many (subject, body) pairs; the model scores them in one batch."""
        texts = [analyze(subject, body) for subject, body in messages]
        predictions = self.model.predict_many(texts) if self.model is not None and texts else None
        return [self._decide(text, predictions[i] if predictions is not None else None) for i, text in enumerate(texts)]

    def classify_analyzed(self, text: AnalyzedText) -> Classification:
        """Classify a message already prepared by :func:`mailservice.classify.text.analyze`."""
        return self._decide(text, self.model.predict(text) if self.model is not None else None)

    def _decide(self, text: AnalyzedText, predicted: dict[str, dict[str, float]] | None) -> Classification:
        scores = self.rules.score(text)
        results = {
            axis: self._axis_result(self.rules.axes[axis], scores[axis], predicted.get(axis) if predicted else None)
            for axis in MODEL_AXES
        }
        message_type = results["type"]
        if message_type.confidence >= self.rules.axes["type"].threshold:
            for axis in MODEL_AXES[1:]:
                axis_rules = self.rules.axes[axis]
                if (
                    message_type.label in axis_rules.default_for_types
                    and results[axis].label != axis_rules.axis.default
                ):
                    results[axis] = self._type_default(axis_rules, message_type)
        margins = self.rules.review_margins
        if margins is not None:
            review = tuple(axis for axis in REVIEW_AXES if results[axis].margin < margins[axis])
        else:
            review = tuple(axis for axis in MODEL_AXES if results[axis].confidence < self.rules.axes[axis].threshold)
        appeal_kind = appeal_kind_name = None
        if results["type"].label == "appeal":
            kind_rules = self.rules.axes["appeal_kind"]
            probabilities = scores["appeal_kind"].probabilities
            appeal_kind = max(kind_rules.axis.labels, key=lambda label: probabilities[label])
            appeal_kind_name = kind_rules.axis.display_name(appeal_kind)
        return Classification(
            type=results["type"],
            topic=results["topic"],
            urgency=results["urgency"],
            appeal_kind=appeal_kind,
            review=review,
            version=self.version,
            appeal_kind_name=appeal_kind_name,
        )

    def _type_default(self, rules: AxisRules, message_type: AxisResult) -> AxisResult:
        # rules.yaml says this type never takes another label on this axis (spam and thanks are never urgent).
        type_name = self.rules.axes["type"].axis.display_name(message_type.label)
        # The type decides this label, so its doubt is counted once, on the type: no rival here.
        return AxisResult(
            label=rules.axis.default,
            confidence=message_type.confidence,
            reasons=[f"тип «{type_name}»: {rules.axis.name.lower()} не оценивается"],
            name=rules.axis.display_name(rules.axis.default),
            margin=1.0,
        )

    @staticmethod
    def _axis_result(rules: AxisRules, scores: AxisScores, predicted: dict[str, float] | None) -> AxisResult:
        labels = rules.axis.labels
        if predicted is None:
            combined = dict(scores.probabilities)
        else:
            weight = rules.model_weight
            combined = {
                label: (scores.probabilities[label] + weight * predicted.get(label, 0.0)) / (1.0 + weight)
                for label in labels
            }
        # A label that needs a rule of its own and has none cannot win (the model alone read «Обращение» as a
        # request for the history, tryout G2): the letter gets the best other label and a zero margin (review).
        barred = {candidate for candidate in rules.needs_rule if not scores.hits_for(candidate)}
        allowed = [candidate for candidate in labels if candidate not in barred] or list(labels)
        # Ties go to the label listed first in the taxonomy, so the result never depends on dict order.
        label = max(allowed, key=lambda candidate: combined[candidate])
        runner_up = max((combined[candidate] for candidate in labels if candidate != label), default=0.0)
        reasons = [hit.reason for hit in scores.hits_for(label)]
        if not reasons:
            reasons.append(
                "правила: совпадений нет, значение по умолчанию"
                if label == rules.axis.default
                else "правила: совпадений нет"
            )
        # What spoke for other labels and was outweighed: staff correcting a label want to see it.
        reasons.extend(
            f"{hit.reason} → «{rules.axis.display_name(hit.label)}»" for hit in scores.hits if hit.label != label
        )
        if predicted is not None:
            reasons.append(f"модель: {predicted.get(label, 0.0):.2f}")
        return AxisResult(
            label=label,
            confidence=combined[label],
            reasons=reasons,
            name=rules.axis.display_name(label),
            margin=max(combined[label] - runner_up, 0.0),
        )


@cache
def default_classifier() -> Classifier:
    """The process-wide classifier (packaged rules, saved model if any); ``cache_clear()`` after training."""
    return Classifier.load()
