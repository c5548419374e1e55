"""What ran a bench: the interpreter and a calibration of its speed, measured in the same run.

End-to-end figures move with two things the code does not decide:

* the machine's speed, which drifts by a third within an hour on the shared development machine;
* the interpreter's build. The same code takes about 5% less CPU end to end (0.5-9% in ten pairs of
  bench/intake.py, 7 December 2026) on an interpreter built with profile-guided and link-time optimisation, as the
  service's image (python:3.11-slim, ``--enable-optimizations --with-lto``) and Debian's ``/usr/bin/python3.11``
  are, than on a plain build such as pyenv's default; pure Python loops run about a fifth faster.

``python_loop_s`` times a fixed pure-Python loop (the best of three): it tells interpreters apart. It does not
correct a figure for the machine's drift: on 7 December it stayed at 0.27-0.29 s while bench/intake.py moved
between 386 and 448 messages/s.
"""

from __future__ import annotations

import platform
import sys
import sysconfig
import time

LOOP = 2_000_000  # additions per timing; the figure is given per ten million


def python_loop_s() -> float:
    """Seconds for ten million additions in a Python loop on this interpreter and machine (best of three)."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        total = 0
        for i in range(LOOP):
            total += i
        best = min(best, time.perf_counter() - start)
    return round(best * 10_000_000 / LOOP, 3)


def interpreter() -> dict[str, object]:
    """The interpreter's version, path and the build options that change its speed (as ``configure`` got them)."""
    options = str(sysconfig.get_config_var("CONFIG_ARGS") or "")
    wanted = ("--enable-optimizations", "--with-lto", "--enable-shared")
    return {
        "version": platform.python_version(),
        "executable": sys.executable,
        "base": sys.base_prefix,
        "configure": [option for option in wanted if option in options],
    }


def facts() -> dict[str, object]:
    """Both, for a bench's JSON line."""
    return {"python": interpreter(), "python_loop_s": python_loop_s()}
