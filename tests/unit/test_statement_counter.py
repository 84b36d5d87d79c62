"""The statement counter books each statement to the unit of work it ran in, and is absent when not enabled."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

from shared import statements
from shared.db import make_engine


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(statements, "_COUNTER", None)  # restored after the test


async def test_off_by_default_attaches_nothing(fresh: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(statements.ENV_VARIABLE, raising=False)
    engine = make_engine(f"sqlite:///{tmp_path / 'off.db'}")
    try:
        assert statements.start("triage", engine, tmp_path) is None
        assert statements.counter() is None
        with statements.request_tally() as tally:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        assert tally is None
        assert statements.read_totals(tmp_path) == {}
    finally:
        await engine.dispose()


async def test_statements_are_booked_per_request_and_per_long_lived_task(
        fresh: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(statements.ENV_VARIABLE, "1")
    engine = make_engine(f"sqlite:///{tmp_path / 'on.db'}")

    async def two_selects() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            await conn.execute(text("SELECT 2"))

    async def worker() -> None:
        statements.long_lived("consumer triage.test")
        await asyncio.gather(two_selects(), two_selects())  # tasks it makes count for it too

    try:
        counter = statements.start("triage", engine, tmp_path)
        assert counter is not None
        for _ in range(3):
            with statements.request_tally() as tally:
                await asyncio.create_task(two_selects())  # a task of the request counts for the request
            statements.book_request(tally, "POST /fhir")
        await asyncio.create_task(worker())
        await two_selects()  # in no unit of work
        counter.flush()
        totals = statements.read_totals(tmp_path)
        # SQLite's BEGIN IMMEDIATE (shared/db.py) is a statement too: three per connection used.
        assert totals[("triage", "POST /fhir")] == (9, 3)
        assert totals[("triage", "consumer triage.test")][0] == 6
        assert totals[("triage", statements.OTHER)] == (3, 0)
    finally:
        await engine.dispose()
