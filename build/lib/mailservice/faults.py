"""Fault injection for the crash tests.

``MAILSERVICE_FAULT=after_commit:3`` kills the process with SIGKILL the third time the named point is reached,
exactly as a power cut or the OOM killer would. Unset (always, outside tests) it costs one comparison per call.
"""

from __future__ import annotations

import os
import signal

_spec = ""
_remaining = 0


def point(name: str) -> None:
    """Mark a point where a crash is survivable by design; dies here when the fault names it."""
    global _spec, _remaining
    spec = os.environ.get("MAILSERVICE_FAULT", "")
    if not spec:
        return
    if spec != _spec:  # read when first seen: worker processes receive their environment after start-up
        _spec, _remaining = spec, int(spec.partition(":")[2] or 1)
    if name != spec.partition(":")[0]:
        return
    _remaining -= 1
    if _remaining <= 0:
        os.kill(os.getpid(), signal.SIGKILL)
