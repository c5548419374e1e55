"""The trained model: fitting, saving and loading, versions, combination with the rules."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from scipy.sparse import hstack

from mailservice.classify import model as model_module
from mailservice.classify.engine import Classifier, default_classifier
from mailservice.classify.evaluate import read_dataset
from mailservice.classify.model import Example, ModelError, TrainedModel, train
from mailservice.classify.rules import load_rules
from mailservice.classify.text import analyze
from mailservice.config import get_settings

DEV = Path(__file__).parent / "data" / "classify_dev.tsv"
WHEN = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def examples() -> list[Example]:
    return read_dataset(DEV)


@pytest.fixture(scope="module")
def trained(examples: list[Example]) -> TrainedModel:
    return train(examples, rules_version="9", trained_at=WHEN)


@pytest.fixture
def data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Settings pointing at an empty data directory; cached settings and classifier are forgotten."""
    monkeypatch.setenv("MAILSERVICE_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    default_classifier.cache_clear()
    yield tmp_path
    get_settings.cache_clear()
    default_classifier.cache_clear()


def test_model_id_and_label_counts(trained: TrainedModel, examples: list[Example]) -> None:
    assert re.fullmatch(r"20261125T1200-[0-9a-f]{6}", trained.model_id)
    assert sum(trained.label_counts["type"].values()) == len(examples)
    assert trained.label_counts["urgency"]["urgent"] == sum(e.urgency == "urgent" for e in examples)
    assert trained.rules_version == "9"


def test_same_data_same_id_other_data_other_id(examples: list[Example], trained: TrainedModel) -> None:
    again = train(list(reversed(examples)), trained_at=WHEN)
    assert again.model_id == trained.model_id  # order does not matter
    fewer = train(examples[:-1], trained_at=WHEN)
    assert fewer.model_id != trained.model_id


def test_save_and_load_round_trip(tmp_path: Path, trained: TrainedModel, examples: list[Example]) -> None:
    path = tmp_path / "sub" / "model.joblib"
    model_module.save(trained, path)
    loaded = model_module.load(path)
    texts = [analyze(e.subject, e.body) for e in examples[:20]]
    assert loaded.predict_many(texts) == trained.predict_many(texts)
    sidecar = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    assert sidecar["model_id"] == trained.model_id
    assert sidecar["trained_at"] == WHEN.isoformat()
    assert sidecar["rules_version"] == "9"
    assert sidecar["label_counts"] == trained.label_counts
    assert sidecar["examples"] == len(examples)


def test_fast_features_equal_sklearn_transform(trained: TrainedModel, examples: list[Example]) -> None:
    texts = [analyze(e.subject, e.body) for e in examples[:40]]
    docs = [text.text for text in texts]
    ours = trained._transform("char", trained.char_vectorizer, docs)
    theirs = trained.char_vectorizer.transform(docs)
    assert abs(ours - theirs).max() < 1e-12
    features = trained._features(texts)
    for axis, axis_model in trained.axes.items():
        assert axis_model.estimator is not None
        expected = axis_model.estimator.predict_proba(features)
        got = axis_model.probabilities(features)
        for row, probabilities in zip(expected, got, strict=True):
            for label, value in zip(axis_model.classes, row, strict=True):
                assert probabilities[label] == pytest.approx(value, abs=1e-9), axis


def test_predict_equals_sklearn_predict_proba(trained: TrainedModel, examples: list[Example]) -> None:
    # predict() scores straight from n-gram counts; it must give what the fitted vectorisers and predict_proba
    # give, also for long texts (cut at MODEL_MAX_CHARS), empty ones and words the model never saw.
    texts = [analyze(e.subject, e.body) for e in examples[:60]]
    texts += [
        analyze("", ""),
        analyze("Тема", "абырвалг шмурдяк 123 - . ,"),
        analyze("", "\n".join(e.body for e in examples[:40])),
    ]
    sparse = hstack(
        [
            trained.word_vectorizer.transform([text.lemma_text for text in texts]),
            trained.char_vectorizer.transform([text.text[: model_module.MODEL_MAX_CHARS] for text in texts]),
        ],
        format="csr",
    )
    predictions = trained.predict_many(texts)
    assert predictions == [trained.predict(text) for text in texts]
    for axis, axis_model in trained.axes.items():
        assert axis_model.estimator is not None
        expected = axis_model.estimator.predict_proba(sparse)
        for row, prediction in zip(expected, predictions, strict=True):
            assert list(prediction[axis]) == list(axis_model.classes)
            for label, value in zip(axis_model.classes, row, strict=True):
                assert prediction[axis][label] == pytest.approx(value, abs=1e-12), axis


def test_model_pickled_before_the_fast_scorer_loads(tmp_path: Path, trained: TrainedModel) -> None:
    # Files saved by earlier versions hold the same state minus nothing new; what is derived is never stored.
    trained.predict(analyze("", "прошу предоставить отчёт"))  # builds the scorer
    state = trained.__getstate__()
    assert "_scorer" not in state
    old = TrainedModel.__new__(TrainedModel)
    old.__setstate__({key: value for key, value in state.items() if key != "_analyzers"})
    text = analyze("", "Прошу продлить договор аренды участка")
    assert old.predict(text) == trained.predict(text)
    path = tmp_path / "model.joblib"
    model_module.save(trained, path)
    assert model_module.load(path).predict(text) == trained.predict(text)


def test_single_label_axis_and_too_little_data() -> None:
    data = [
        Example("", "Прошу предоставить отчёт", "info_request", "reports", "normal"),
        Example("", "Прошу продлить аренду", "appeal", "lease", "normal"),
    ]
    model = train(data)
    prediction = model.predict(analyze("", "отчёт"))
    assert prediction["urgency"] == {"normal": 1.0}
    with pytest.raises(ModelError):
        train(data[:1])


def test_foreign_or_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="не найден"):
        model_module.load(tmp_path / "absent.joblib")
    junk = tmp_path / "junk.joblib"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelError):
        model_module.load(junk)


def test_classifier_records_rules_and_model_versions(trained: TrainedModel) -> None:
    rules = load_rules()
    result = Classifier(rules, trained).classify("", "Прошу предоставить годовой отчёт департамента")
    assert result.version == f"rules-{rules.version}+model-{trained.model_id}"
    assert any(reason.startswith("модель: ") for reason in result.type.reasons)


def test_load_uses_the_model_in_the_data_directory(data_dir: Path, trained: TrainedModel) -> None:
    # A fresh install trains its first model from the packaged set and keeps it in the data directory.
    seeded = Classifier.load()
    assert seeded.model is not None
    assert (data_dir / "classify" / "model.joblib").exists()
    assert Classifier.load().version == seeded.version  # the saved seed model is reused, not retrained
    model_module.save(trained, data_dir / "classify" / "model.joblib")
    assert Classifier.load().version.endswith(f"+model-{trained.model_id}")
    with pytest.raises(ModelError):
        Classifier.load(model_path=data_dir / "elsewhere.joblib")


def test_model_changes_a_decision_the_rules_cannot_make() -> None:
    # "Кадастровый инженер" matches no rule of the topic axis; a model trained on it learns the phrase.
    rules = load_rules()
    body = "Кадастровый инженер ошибся, прошу помочь"
    assert Classifier(rules).classify("", body).topic.label == "other"
    data = [
        Example("", f"Кадастровый инженер ошибся в работе номер {i}", "appeal", "land", "normal") for i in range(8)
    ] + [Example("", f"Добрый день, вопрос номер {i}", "other", "other", "normal") for i in range(8)]
    assert Classifier(rules, train(data)).classify("", body).topic.label == "land"


def test_batch_classification_equals_one_by_one(trained: TrainedModel, examples: list[Example]) -> None:
    classifier = Classifier(load_rules(), trained)
    messages = [(e.subject, e.body) for e in examples[:25]]
    assert classifier.classify_many(messages) == [classifier.classify(s, b) for s, b in messages]
