"""The statistical half of the classifier: TF-IDF features and one logistic regression per axis.

Features are character 2-5 n-grams of the cleaned text (robust to typos and endings) plus word 1-2-grams of
lemmas. Published work on Russian appeals finds this within a few points of fine-tuned BERT while training in
well under a second and running offline. Training takes any iterable of labelled examples, so staff-confirmed
labels from the database can feed it as well as files.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import joblib
import numpy as np
import sklearn
from scipy.sparse import csr_matrix, hstack
from scipy.special import expit, softmax
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from mailservice.classify.text import AnalyzedText, analyze

MODEL_AXES = ("type", "topic", "urgency")
FORMAT_VERSION = 1
# The model reads only the start of long messages: the request is stated there, and char n-grams of a pasted
# contract would cost far more than they tell.
MODEL_MAX_CHARS = 4_000
# Inverse regularisation strength; small sets need weak regularisation to learn from rare words at all.
C = 10.0


class ModelError(ValueError):
    """No usable model: too little data, or a file that is not a model."""


@dataclass(frozen=True)
class Example:
    """One labelled message (from a file now, from staff-confirmed requests later)."""

    subject: str
    body: str
    type: str
    topic: str
    urgency: str
    appeal_kind: str = ""  # of an appeal, where the file gives it (not an axis the model learns)

    def label(self, axis: str) -> str:
        """The label of ``axis`` ("type", "topic" or "urgency")."""
        value: str = getattr(self, axis)
        return value


@dataclass
class _AxisModel:
    classes: tuple[str, ...]
    estimator: LogisticRegression | None  # None when training saw a single label

    def probabilities(self, features: csr_matrix) -> list[dict[str, float]]:
        if self.estimator is None:
            return [{self.classes[0]: 1.0} for _ in range(features.shape[0])]
        # What predict_proba computes (multinomial softmax; sigmoid for two classes), without its per-call
        # input validation, which costs more than the arithmetic for a single message.
        scores = np.asarray(features @ self.estimator.coef_.T) + self.estimator.intercept_
        if scores.shape[1] == 1:
            positive = expit(scores[:, 0])
            matrix = np.column_stack([1.0 - positive, positive])
        else:
            matrix = softmax(scores, axis=1)
        return [dict(zip(self.classes, (float(value) for value in row), strict=True)) for row in matrix]


# Distinct words whose char n-gram columns are remembered per model (about 0.3 KB each).
WORD_CACHE_SIZE = 50_000
_NO_COLUMNS = np.zeros(0, dtype=np.int32)


def _char_wb_grams(word: str, min_n: int, max_n: int) -> list[str]:
    """The n-grams sklearn's ``char_wb`` analyzer makes of one word: padded with a space on each side, a word
    shorter than n giving itself once."""
    padded = f" {word} "
    length = len(padded)
    grams = []
    for n in range(min_n, max_n + 1):
        if length <= n:
            grams.append(padded)
            break
        grams.extend(padded[i : i + n] for i in range(length - n + 1))
    return grams


def _word_grams(tokens: list[str], min_n: int, max_n: int) -> list[str]:
    """The n-grams sklearn's ``word`` analyzer makes of a token list (no stop words)."""
    grams = list(tokens) if min_n == 1 else []
    for n in range(max(min_n, 2), min(max_n, len(tokens)) + 1):
        grams.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return grams


class _Block:
    """How one vectoriser turns a document into feature columns (numbered from ``offset`` in the combined
    feature space of word and char features)."""

    def __init__(self, vectorizer: TfidfVectorizer, offset: int) -> None:
        self.vocabulary: dict[str, int] = vectorizer.vocabulary_
        self.offset = offset
        self.analyzer = vectorizer.build_analyzer()
        self.preprocess = vectorizer.build_preprocessor()
        params = vectorizer.get_params()
        self.ngram_range: tuple[int, int] = params["ngram_range"]
        plain = params["preprocessor"] is None and params["input"] == "content" and not params["strip_accents"]
        # The settings train() uses, for which the n-grams below are sklearn's; anything else goes through
        # sklearn's own analyzer.
        self.kind = "generic"
        if plain and params["analyzer"] == "char_wb":
            self.kind = "char_wb"
        elif (
            plain
            and params["analyzer"] == "word"
            and params["tokenizer"] is None
            and params["token_pattern"] == r"\S+"  # noqa: S105 (a regular expression, not a password)
            and params["stop_words"] is None
        ):
            self.kind = "word"
        self.word_columns: dict[str, np.ndarray] = {}

    def _found(self, grams: Iterable[str]) -> np.ndarray:
        vocabulary, offset = self.vocabulary, self.offset
        found = [index + offset for gram in grams if (index := vocabulary.get(gram)) is not None]
        return np.array(found, dtype=np.int32) if found else _NO_COLUMNS

    def _columns_of_word(self, word: str) -> np.ndarray:
        columns = self._found(_char_wb_grams(word, *self.ngram_range))
        if len(self.word_columns) >= WORD_CACHE_SIZE:
            self.word_columns.clear()  # cheaper than LRU bookkeeping on every word; refills within a few messages
        self.word_columns[word] = columns
        return columns

    def columns(self, doc: str) -> np.ndarray:
        """The column of each n-gram of the document that is in the vocabulary, repeats included."""
        if self.kind == "char_wb":
            # char_wb n-grams never cross a space: a document's n-grams are those of its words, and a word's
            # columns can be remembered (mail repeats its words far more than its messages).
            known = self.word_columns
            parts = [
                found if (found := known.get(word)) is not None else self._columns_of_word(word)
                for word in self.preprocess(doc).split()
            ]
            return np.concatenate(parts) if parts else _NO_COLUMNS
        if self.kind == "word":
            # \S+ tokens are what str.split() returns: both split at the same (Unicode) white space.
            return self._found(_word_grams(self.preprocess(doc).split(), *self.ngram_range))
        return self._found(self.analyzer(doc))


class _Scorer:
    """Every axis' probabilities for one document straight from its n-gram counts: no sparse matrices, one
    product for all axes. Built from a trained model on first use, never stored."""

    def __init__(self, model: TrainedModel) -> None:
        self.axes = tuple(model.axes)
        self.fixed: dict[str, dict[str, float]] = {}  # axes trained on a single label
        self.slices: list[tuple[str, tuple[str, ...], slice]] = []
        coefs: list[np.ndarray] = []
        intercepts: list[np.ndarray] = []
        start = 0
        for axis, axis_model in model.axes.items():
            if axis_model.estimator is None:
                self.fixed[axis] = {axis_model.classes[0]: 1.0}
                continue
            coef = np.asarray(axis_model.estimator.coef_, dtype=np.float64)
            coefs.append(coef)
            intercepts.append(np.asarray(axis_model.estimator.intercept_, dtype=np.float64))
            self.slices.append((axis, axis_model.classes, slice(start, start + coef.shape[0])))
            start += coef.shape[0]
        # Columns as in _features: word features first, then char features.
        self.width = len(model.word_vectorizer.vocabulary_)
        self.word = _Block(model.word_vectorizer, 0)
        self.char = _Block(model.char_vectorizer, self.width)
        self.idf = np.concatenate([model.word_vectorizer.idf_, model.char_vectorizer.idf_]).astype(np.float64)
        self.coef = np.ascontiguousarray(np.vstack(coefs).T) if coefs else np.zeros((len(self.idf), 0))
        self.intercept = np.concatenate(intercepts) if intercepts else np.zeros(0)

    def scores(self, text: AnalyzedText) -> np.ndarray:
        """``features @ coef.T + intercept`` of every class of every axis, with the features weighted as
        TfidfVectorizer.transform weights them: sublinear tf times idf, l2-normalised per vectoriser."""
        columns = np.concatenate([self.word.columns(text.lemma_text), self.char.columns(text.text[:MODEL_MAX_CHARS])])
        if not len(columns):
            return self.intercept.copy()
        # Count repeats: after sorting, each run of one column is one feature and its length the count.
        columns.sort()
        starts = np.empty(len(columns) + 1, dtype=bool)
        starts[0] = starts[-1] = True
        np.not_equal(columns[1:], columns[:-1], out=starts[1:-1])
        bounds = np.nonzero(starts)[0]
        unique = columns[bounds[:-1]]
        weights = np.log((bounds[1:] - bounds[:-1]).astype(np.float64))
        weights += 1.0
        weights *= self.idf[unique]
        split = int(np.searchsorted(unique, self.width))
        for part in (weights[:split], weights[split:]):
            norm = math.sqrt(float(part @ part))
            if norm > 0:
                part /= norm
        return weights @ self.coef[unique] + self.intercept

    def predict(self, text: AnalyzedText) -> dict[str, dict[str, float]]:
        """Per axis: label -> probability, as predict_proba gives them."""
        result = {axis: dict(fixed) for axis, fixed in self.fixed.items()}
        if self.slices:
            scores = self.scores(text)
            for axis, classes, columns in self.slices:
                part = scores[columns]
                if len(part) == 1:  # two classes: the sigmoid of the one decision value
                    positive = float(expit(part[0]))
                    result[axis] = {classes[0]: 1.0 - positive, classes[1]: positive}
                else:
                    exps = np.exp(part - part.max())
                    result[axis] = dict(zip(classes, (exps / exps.sum()).tolist(), strict=True))
        return {axis: result[axis] for axis in self.axes}


@dataclass
class TrainedModel:
    """Vectorisers, one classifier per axis and the facts recorded in the JSON sidecar."""

    model_id: str
    trained_at: datetime
    label_counts: dict[str, dict[str, int]]
    rules_version: str | None
    word_vectorizer: TfidfVectorizer
    char_vectorizer: TfidfVectorizer
    axes: dict[str, _AxisModel] = field(default_factory=dict)

    _analyzers: dict[str, Callable[[str], list[str]]] = field(default_factory=dict, repr=False, compare=False)
    _scorer: _Scorer | None = field(default=None, init=False, repr=False, compare=False)  # derived, see _fast

    def __getstate__(self) -> dict[str, object]:
        # What is pickled is unchanged from the first format: the fast scorer is derived, rebuilt on first use,
        # and models saved before it existed load as they are.
        state = dict(self.__dict__)
        state["_analyzers"] = {}
        state.pop("_scorer", None)
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("_analyzers", {})
        self._scorer = None

    def _features(self, texts: Sequence[AnalyzedText]) -> csr_matrix:
        """The sparse feature matrix, as the fitted vectorisers would make it (kept as the reference the fast
        path is tested against)."""
        words = self._transform("word", self.word_vectorizer, [text.lemma_text for text in texts])
        chars = self._transform("char", self.char_vectorizer, [text.text[:MODEL_MAX_CHARS] for text in texts])
        return csr_matrix(hstack([words, chars], format="csr"))

    def _transform(self, key: str, vectorizer: TfidfVectorizer, docs: Sequence[str]) -> csr_matrix:
        """``vectorizer.transform(docs)`` for our settings (sublinear tf, idf, l2 norm), written out because
        sklearn's per-call input checks cost several times the arithmetic when one message is classified."""
        analyzer = self._analyzers.get(key)
        if analyzer is None:
            analyzer = self._analyzers[key] = vectorizer.build_analyzer()
        vocabulary: dict[str, int] = vectorizer.vocabulary_
        idf = vectorizer.idf_
        indptr = [0]
        indices: list[int] = []
        values: list[float] = []
        for doc in docs:
            counts = Counter(index for gram in analyzer(doc) if (index := vocabulary.get(gram)) is not None)
            columns = sorted(counts)
            weights = np.array([(1.0 + math.log(counts[c])) * idf[c] for c in columns], dtype=np.float64)
            norm = math.sqrt(float(weights @ weights)) if columns else 0.0
            indices.extend(columns)
            values.extend((weights / norm).tolist() if norm > 0 else weights.tolist())
            indptr.append(len(indices))
        return csr_matrix(
            (
                np.array(values, dtype=np.float64),
                np.array(indices, dtype=np.int32),
                np.array(indptr, dtype=np.int32),
            ),
            shape=(len(docs), len(vocabulary)),
        )

    def _fast(self) -> _Scorer:
        scorer = self._scorer
        if scorer is None:
            scorer = self._scorer = _Scorer(self)
        return scorer

    def predict_many(self, texts: Sequence[AnalyzedText]) -> list[dict[str, dict[str, float]]]:
        """Per message, per axis: label -> probability."""
        scorer = self._fast()
        return [scorer.predict(text) for text in texts]

    def predict(self, text: AnalyzedText) -> dict[str, dict[str, float]]:
        """Per axis: label -> probability for one message."""
        return self._fast().predict(text)

    def metadata(self) -> dict[str, object]:
        """What the JSON sidecar holds."""
        return {
            "format": FORMAT_VERSION,
            "model_id": self.model_id,
            "trained_at": self.trained_at.isoformat(),
            "examples": sum(self.label_counts.get("type", {}).values()),
            "label_counts": self.label_counts,
            "rules_version": self.rules_version,
            "sklearn_version": sklearn.__version__,
        }


def _fingerprint(examples: Sequence[Example]) -> str:
    digest = hashlib.sha256(f"{FORMAT_VERSION}|{C}".encode())
    for example in sorted(examples, key=lambda e: (e.subject, e.body, e.type, e.topic, e.urgency)):
        for part in (example.subject, example.body, example.type, example.topic, example.urgency):
            digest.update(part.encode("utf-8"))
            digest.update(b"\x00")
    return digest.hexdigest()[:6]


def train(
    examples: Iterable[Example],
    *,
    rules_version: str | None = None,
    trained_at: datetime | None = None,
    analyzed: Sequence[AnalyzedText] | None = None,
) -> TrainedModel:
    """Fit the vectorisers and one classifier per axis.

    ``analyzed`` may pass the already prepared texts in the same order (cross-validation reuses them).
    """
    data = list(examples)
    if len(data) < 2:
        raise ModelError("для обучения нужно хотя бы два размеченных сообщения")
    texts = list(analyzed) if analyzed is not None else [analyze(e.subject, e.body) for e in data]
    if len(texts) != len(data):
        raise ValueError("analyzed must match examples one to one")
    trained_at = (trained_at or datetime.now(UTC)).astimezone(UTC)
    word_vectorizer = TfidfVectorizer(
        analyzer="word",
        token_pattern=r"\S+",  # noqa: S106 (a regular expression, not a password)
        ngram_range=(1, 2),
        sublinear_tf=True,
        lowercase=False,
    )
    char_vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2)
    words = word_vectorizer.fit_transform([text.lemma_text for text in texts])
    try:
        chars = char_vectorizer.fit_transform([text.text[:MODEL_MAX_CHARS] for text in texts])
    except ValueError:  # too few texts for min_df: keep every n-gram
        char_vectorizer.set_params(min_df=1)
        chars = char_vectorizer.fit_transform([text.text[:MODEL_MAX_CHARS] for text in texts])
    features = csr_matrix(hstack([words, chars], format="csr"))
    axes: dict[str, _AxisModel] = {}
    label_counts: dict[str, dict[str, int]] = {}
    # One BLAS thread: the problem is small, and on a busy machine extra threads made fitting 10 times slower.
    with threadpool_limits(limits=1):
        for axis in MODEL_AXES:
            labels = [example.label(axis) for example in data]
            counts = Counter(labels)
            label_counts[axis] = dict(sorted(counts.items()))
            if len(counts) == 1:
                axes[axis] = _AxisModel(classes=(labels[0],), estimator=None)
                continue
            # Balanced class weights: urgent messages and rare types would otherwise be swamped.
            estimator = LogisticRegression(C=C, class_weight="balanced", max_iter=2000)
            estimator.fit(features, np.asarray(labels))
            axes[axis] = _AxisModel(classes=tuple(str(c) for c in estimator.classes_), estimator=estimator)
    model_id = f"{trained_at:%Y%m%dT%H%M}-{_fingerprint(data)}"
    return TrainedModel(
        model_id=model_id,
        trained_at=trained_at,
        label_counts=label_counts,
        rules_version=rules_version,
        word_vectorizer=word_vectorizer,
        char_vectorizer=char_vectorizer,
        axes=axes,
    )


def sidecar_path(path: Path) -> Path:
    """Where the JSON facts about a model file live: ``model.joblib`` -> ``model.json``."""
    return path.with_suffix(".json")


def _atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save(model: TrainedModel, path: Path) -> None:
    """Write the model (joblib) and its JSON sidecar, each atomically, so a reader never sees half a file."""
    _atomic_write(path, lambda tmp: joblib.dump(model, tmp))
    text = json.dumps(model.metadata(), ensure_ascii=False, indent=2) + "\n"
    _atomic_write(sidecar_path(path), lambda tmp: tmp.write_text(text, encoding="utf-8"))


def load(path: Path) -> TrainedModel:
    """Read a model written by :func:`save`.

    joblib files are pickles and can run code when loaded: load only files this service wrote into its own
    data directory, never one received from outside.
    """
    try:
        model = joblib.load(path)
    except FileNotFoundError as exc:
        raise ModelError(f"файл модели не найден: {path}") from exc
    except Exception as exc:  # a truncated or foreign file fails in many ways inside pickle
        raise ModelError(f"не удалось прочитать модель {path}: {exc}") from exc
    if not isinstance(model, TrainedModel):
        raise ModelError(f"{path} не является моделью классификатора")
    return model


def read_metadata(path: Path) -> dict[str, object]:
    """The JSON sidecar of a model file."""
    data: dict[str, object] = json.loads(sidecar_path(path).read_text(encoding="utf-8"))
    return data
