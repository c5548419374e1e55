"""The environment of a command-line subprocess started by a test (the CLI as a user runs it)."""

from __future__ import annotations

import os


def cli_env(**extra: str) -> dict[str, str]:
    """This test's ``MAILSERVICE_*`` environment for a CLI subprocess, its seed model already in the data folder.

    A fresh install trains the classifier's seed model on the first letter it classifies: seconds when idle,
    minutes on a loaded machine, where a command that registers a letter then ran into its test's time limit (a
    busy ``make test``, 6 December). The product's own training on first use is tested in-process
    (tests/test_classify_model.py) and from the installed wheel (tests/test_install.py); here the model trained
    once for the run (``conftest._seed_once``) is copied into the folder first, as every in-process test gets it.
    """
    if os.environ.get("MAILSERVICE_DATA_DIR"):
        from mailservice.classify.engine import ensure_seed_model

        ensure_seed_model()
    return {**os.environ, **extra}
