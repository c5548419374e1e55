"""Fault injection for the crash tests.

``MAILSERVICE_FAULT=after_commit:3`` kills the process with SIGKILL the third time the named point is reached,
exactly as a power cut or the OOM killer would. Unset (always, outside tests) it costs one comparison per call.
"""

from __future__ import annotations

import os
import signal

_name, _, _count = os.environ.get("MAILSERVICE_FAULT", "").partition(":")
_remaining = int(_count or 1) if _name else 0


def point(name: str) -> None:
    """Mark a point where a crash is survivable by design; dies here when the fault names it."""
    global _remaining
    if not _name or name != _name:
        return
    _remaining -= 1
    if _remaining <= 0:
        os.kill(os.getpid(), signal.SIGKILL)
