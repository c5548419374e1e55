"""The environment of a command-line subprocess started by a test (the CLI as a user runs it)."""

from __future__ import annotations

import os
import sys


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


# Run in the child before the command: SIGKILL when the test process dies (Linux PR_SET_PDEATHSIG = 1, kept across
# execve), and exit at once if it died already. A command started by a test that a timeout then killed (mutmut's
# CPU limit, SIGKILL) was left running for good: a `campaign send` hung by a mutant kept its database connections
# and burnt CPU through the rest of a mutation run. A launcher, not ``preexec_fn``: that is unsafe with threads,
# and the tests run SMTP and HTTP servers in threads.
_LAUNCHER = (
    "import ctypes, os, sys; ctypes.CDLL(None, use_errno=True).prctl(1, 9); "
    "os.getppid() == int(sys.argv[1]) or os._exit(70); os.execv(sys.argv[2], sys.argv[2:])"
)


def dies_with_test(argv: list[str]) -> list[str]:
    """``argv`` (a program and its arguments) run so that it is killed when this test process dies."""
    return [sys.executable, "-c", _LAUNCHER, str(os.getpid()), *argv]
