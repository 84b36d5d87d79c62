"""shared.tasks.cancelled ends a task even when the task swallows a cancellation (as asyncio.wait_for can on 3.11)."""

from __future__ import annotations

import asyncio

from shared.tasks import cancelled


def test_a_task_that_swallows_a_cancellation_is_still_ended() -> None:
    async def scenario() -> list[str]:
        seen: list[str] = []

        async def stubborn() -> None:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                seen.append("swallowed")  # goes on, as a loop whose wait_for returned instead of raising
            await asyncio.sleep(3600)

        task = asyncio.create_task(stubborn())
        await asyncio.sleep(0)
        await asyncio.wait_for(cancelled(task, None), 5)
        assert task.done() and task.cancelled()
        return seen

    assert asyncio.run(scenario()) == ["swallowed"]


def test_a_task_that_failed_is_ended_without_its_error_escaping() -> None:
    async def scenario() -> None:
        async def broken() -> None:
            raise RuntimeError("gone")

        task = asyncio.create_task(broken())
        await asyncio.sleep(0)
        await cancelled(task)
        assert task.done()

    asyncio.run(scenario())
