"""Waiting for a condition in a test: always with a deadline and a message, never a fixed sleep.

A deadline here is a guard against a hang (an endless retry, a server that never started), not a timing
assertion: it is generous, and a test passes as soon as its condition holds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], object], timeout: float, message: str, *, interval: float = 0.002) -> None:
    """Poll ``condition`` until it is true; fail with ``message`` if ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} (waited {timeout:g} s)")
        time.sleep(interval)


def run_within(coroutine: Coroutine[Any, Any, T], timeout: float, message: str) -> T:
    """``asyncio.run(coroutine)``, failing with ``message`` instead of hanging when it has not ended in time."""

    async def bounded() -> T:
        try:
            return await asyncio.wait_for(coroutine, timeout)
        except TimeoutError:
            raise AssertionError(f"{message} (did not end within {timeout:g} s)") from None

    return asyncio.run(bounded())
