"""Classifier models trained once per run for the tests that train on the same letters again.

Fitting the model on the packaged sets takes tens of seconds of CPU (minutes on a loaded machine), and several
tests fit it on exactly the same letters: the held-out evaluation of ``classify evaluate`` (twice in one test, for
the JSON and the text report), the module of tests/test_classify_mail.py, and ``classify train`` after the same
correction on SQLite and on PostgreSQL. Training is deterministic (the same letters in the same order give the same
coefficients), so :func:`train_once` fits each distinct set of letters once for all the test processes of a run
(kept in pytest's cache between runs, keyed by the classifier's code and data, like the seed model in
tests/conftest.py) and hands every later caller the model it gave the first: the code under test still reads,
splits, scores and reports as it does in use; only the repeated fit is skipped. A cached model keeps the time of its
first training, so its id names that minute.
"""

from __future__ import annotations

import fcntl
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from mailservice.classify import evaluate
from mailservice.classify import model as model_module
from mailservice.classify.model import Example, TrainedModel
from mailservice.classify.text import AnalyzedText

_REAL_TRAIN = model_module.train  # taken at import, before any test replaces it


def _letters_key(examples: Sequence[Example], rules_version: str | None) -> str:
    """What a fit depends on besides the code: the letters in their order (the order changes the floating-point
    sums) with every label, and the rules version recorded in the model."""
    digest = hashlib.sha256(repr(rules_version).encode())
    for example in examples:
        digest.update(repr(example).encode())
    return digest.hexdigest()[:20]


def fit_once(
    folder: Path,
    examples: Iterable[Example],
    *,
    rules_version: str | None = None,
    trained_at: datetime | None = None,
    analyzed: Sequence[AnalyzedText] | None = None,
) -> TrainedModel:
    """``model.train`` with the same arguments, fitted once per set of letters in ``folder``."""
    data = list(examples)
    if analyzed is not None:  # cross-validation folds: each is fitted once anyway
        return _REAL_TRAIN(data, rules_version=rules_version, trained_at=trained_at, analyzed=analyzed)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{_letters_key(data, rules_version)}.joblib"
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test process may be fitting the same letters right now
        if not path.exists():
            model_module.save(_REAL_TRAIN(data, rules_version=rules_version, trained_at=trained_at), path)
    return model_module.load(path)


@contextmanager
def train_once(folder: Path) -> Iterator[None]:
    """While active, ``model.train`` (as the CLI, the evaluation and the engine call it) is :func:`fit_once`."""

    def cached(examples: Iterable[Example], **options: Any) -> TrainedModel:
        return fit_once(folder, examples, **options)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(model_module, "train", cached)
        patch.setattr(evaluate, "train", cached)  # bound by name at its import
        yield
