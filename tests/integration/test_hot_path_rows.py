"""Rows written around the ORM (shared/rows.py) belong to the session's transaction and fail as SQLAlchemy errors,
on SQLite and on PostgreSQL (where they go straight through asyncpg)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import rows
from shared.db import make_engine, session_factory

METADATA = MetaData()
THINGS = Table("rows_test_thing", METADATA, Column("id", String(20), primary_key=True),
               Column("at", DateTime(timezone=True), nullable=False), Column("n", Integer), Column("note", String(50)))
AT = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


class Abandoned(Exception):
    """Raised to leave a transaction: it rolls back."""


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(database_url)
    async with engine.begin() as conn:
        await conn.run_sync(METADATA.create_all)
    yield session_factory(engine)
    await engine.dispose()


async def _ids(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    async with sessions() as session:
        return list((await session.execute(select(THINGS.c.id).order_by(THINGS.c.id))).scalars())


async def test_rows_inserted_first_in_a_transaction_are_rolled_back_with_it(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    with pytest.raises(Abandoned):
        async with sessions() as session, session.begin():
            # The first statement of the transaction: it must begin that transaction, not run in autocommit.
            await rows.insert(session, THINGS, [{"id": "a", "at": AT, "n": 1, "note": None}])
            await rows.insert(session, THINGS, [{"id": "b", "at": AT, "n": 2, "note": "x"},
                                                {"id": "c", "at": AT, "n": None, "note": "y"}])
            found = await rows.fetch(session, arguments=[["a", "c"]],
                                     postgres="SELECT id, n FROM rows_test_thing WHERE id = ANY($1::varchar[])",
                                     portable=lambda: select(THINGS.c.id, THINGS.c.n).where(
                                         THINGS.c.id.in_(["a", "c"])))
            assert sorted(found) == [("a", 1), ("c", None)]
            raise Abandoned
    assert await _ids(sessions) == []


async def test_rows_commit_with_the_orm_work_of_the_same_transaction(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        await session.execute(THINGS.insert().values(id="orm", at=AT, n=0))
        await rows.insert(session, THINGS, [{"id": "raw", "at": AT, "n": 1, "note": None}])
    assert await _ids(sessions) == ["orm", "raw"]
    async with sessions() as session:
        stored = (await session.execute(select(THINGS.c.at).where(THINGS.c.id == "raw"))).scalar_one()
    assert stored.replace(tzinfo=stored.tzinfo or UTC) == AT


async def test_a_duplicate_row_fails_as_an_integrity_error_and_leaves_nothing(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    with pytest.raises(IntegrityError):
        async with sessions() as session, session.begin():
            await rows.insert(session, THINGS, [{"id": "first", "at": AT, "n": 1, "note": None}])
            await rows.insert(session, THINGS, [{"id": "d", "at": AT, "n": 1, "note": None},
                                                {"id": "d", "at": AT, "n": 2, "note": None}])
    assert await _ids(sessions) == []


async def test_statement_listeners_see_what_goes_around_sqlalchemy(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    seen: list[tuple[str, bool]] = []
    rows.statement_listeners.append(lambda text, many: seen.append((text, many)))
    try:
        async with sessions() as session, session.begin():
            await rows.insert(session, THINGS, [{"id": "e", "at": AT, "n": 1, "note": None},
                                                {"id": "f", "at": AT, "n": 1, "note": None}])
            await rows.insert(session, THINGS, [])
            on_postgres = rows.on_postgres(session)
    finally:
        rows.statement_listeners.pop()
    # On SQLite the statement goes through SQLAlchemy, whose own event counts it.
    assert seen == ([('INSERT INTO "rows_test_thing" ("id", "at", "n", "note") VALUES ($1, $2, $3, $4)', True)]
                    if on_postgres else [])
