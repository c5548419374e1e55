"""The launcher of the tests' CLI subprocesses (tests/cli_support.py): a command outlives no killed test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from tests.cli_support import dies_with_test
from tests.waiting import wait_until


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie waits for its parent (init here) to reap it: it is dead.
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] == "Z"


def test_a_command_dies_with_the_test_process_that_started_it() -> None:
    # The "test process" starts a long command through the launcher, says both pids, and is killed as mutmut's CPU
    # limit kills one (SIGKILL: no finalizer runs).
    test_process = textwrap.dedent(
        """
        import subprocess, sys, time
        from tests.cli_support import dies_with_test
        long = "import os, time; print(os.getpid(), flush=True); time.sleep(600)"
        child = subprocess.Popen(dies_with_test([sys.executable, "-c", long]), stdout=subprocess.PIPE, text=True)
        print(child.pid, child.stdout.readline().strip(), flush=True)
        time.sleep(600)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", test_process], stdout=subprocess.PIPE, text=True, cwd=os.getcwd())
    try:
        started, running = (int(p) for p in parent.stdout.readline().split())  # type: ignore[union-attr]
        assert started == running, "the command is not the process the test started (pid changed)"
        assert not _gone(running)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=60)
        wait_until(lambda: _gone(running), 60, "the command outlived the test process that started it")
    finally:
        parent.kill()


def test_the_command_runs_as_given() -> None:
    done = subprocess.run(
        dies_with_test([sys.executable, "-c", "import sys; print(sys.argv[1:]); sys.exit(3)", "a b", "c"]),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout.strip()) == (3, "['a b', 'c']")
