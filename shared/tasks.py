"""Ending background tasks for certain."""

from __future__ import annotations

import asyncio


async def cancelled(*tasks: asyncio.Task[object] | None) -> None:
    """Cancel `tasks` (None entries are skipped) and wait until every one has ended.

    A task can swallow one cancellation: on Python 3.11 `asyncio.wait_for` returns the inner result when the inner
    awaitable completes in the same loop turn as the cancel (CPython gh-86296), and the task's loop goes on. A
    single `cancel()` followed by `gather` then waits forever (seen as a stop that never returned), so the cancel is
    repeated every second until the task has ended. Exceptions the tasks ended with are retrieved and dropped:
    whoever stops them wants them gone."""
    pending = {task for task in tasks if task is not None}
    while pending:
        for task in pending:
            task.cancel()
        done, pending = await asyncio.wait(pending, timeout=1)
        for task in done:
            if not task.cancelled():
                task.exception()
