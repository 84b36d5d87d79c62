"""Waiting for something the product does asynchronously (an event reaching another service): bounded polling."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

Found = TypeVar("Found")


def wait_until(check: Callable[[], Found | None], what: str = "the condition", timeout: float = 30.0, *,
               interval: float = 0.25, error: type[Exception] = TimeoutError) -> Found:
    """Call `check` every `interval` seconds until it answers something truthy, and return that.

    Raises `error` naming `what` when `timeout` seconds pass first (the check runs at least once).
    """
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise error(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(interval)
