"""Rows written around the ORM (shared/rows.py) belong to the session's transaction and fail as SQLAlchemy errors,
on SQLite and on PostgreSQL (where they go straight through asyncpg)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Boolean, Column, DateTime, Integer, MetaData, String, Table, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import rows
from shared.db import make_engine, session_factory

METADATA = MetaData()
THINGS = Table("rows_test_thing", METADATA, Column("id", String(20), primary_key=True),
               Column("at", DateTime(timezone=True), nullable=False), Column("n", Integer), Column("note", String(50)))
NOTES = Table("rows_test_note", METADATA, Column("thing", String(20), nullable=False),
              Column("text", String(5), nullable=False), Column("urgent", Boolean, nullable=False))
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


@pytest.fixture(params=["values", "arrays"])
def insert_form(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """insert_all on PostgreSQL: a parameter per value (few rows) or an array per column (many)."""
    if request.param == "arrays":
        monkeypatch.setattr(rows, "VALUES_PARAMETERS", 0)
    return str(request.param)


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


async def test_rows_of_several_tables_go_in_one_statement_and_one_transaction(
        sessions: async_sessionmaker[AsyncSession], insert_form: str) -> None:
    seen: list[str] = []
    rows.statement_listeners.append(lambda text, _many: seen.append(text))
    try:
        async with sessions() as session, session.begin():
            await rows.insert_all(session, [
                (THINGS, [{"id": "g", "at": AT, "n": 1, "note": None}, {"id": "h", "at": AT, "n": None, "note": "z"}]),
                (NOTES, []),
                (NOTES, [{"thing": "g", "text": "hi", "urgent": True}])])
            on_postgres = rows.on_postgres(session)
    finally:
        rows.statement_listeners.pop()
    assert len(seen) == (1 if on_postgres else 0)
    assert all(("unnest(" in text) == (insert_form == "arrays") for text in seen)
    assert await _ids(sessions) == ["g", "h"]
    async with sessions() as session:
        notes = (await session.execute(select(NOTES.c.thing, NOTES.c.text, NOTES.c.urgent))).all()
        stored_at = (await session.execute(select(THINGS.c.at).where(THINGS.c.id == "h"))).scalar_one()
    assert [tuple(note) for note in notes] == [("g", "hi", True)]
    assert stored_at.replace(tzinfo=stored_at.tzinfo or UTC) == AT


async def test_a_value_too_long_for_its_column_is_never_cut(sessions: async_sessionmaker[AsyncSession],
                                                            insert_form: str) -> None:
    """PostgreSQL refuses it (the INSERT's assignment checks the length, the arrays are cast without one); SQLite
    keeps any length."""
    long_text = "longer than five"
    try:
        async with sessions() as session, session.begin():
            await rows.insert_all(session, [(THINGS, [{"id": "i", "at": AT, "n": 1, "note": None}]),
                                            (NOTES, [{"thing": "i", "text": long_text, "urgent": False}])])
    except DBAPIError as refused:
        assert getattr(refused.orig, "sqlstate", None) == "22001"  # string_data_right_truncation
        assert await _ids(sessions) == []
    else:
        async with sessions() as session:
            assert rows.on_postgres(session) is False
            stored = (await session.execute(select(NOTES.c.text))).scalar_one()
        assert stored == long_text



async def _in_transaction(session: AsyncSession) -> bool:
    """Whether the server holds a transaction open for the session's connection (PostgreSQL; SQLite: False)."""
    if not rows.on_postgres(session):
        return False
    return (await (await session.connection()).get_raw_connection()).driver_connection.is_in_transaction()


async def test_a_transactions_only_write_goes_without_begin_and_is_atomic(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        found = await rows.fetch(session, arguments=[["a"]], begin=False,
                                 postgres="SELECT id FROM rows_test_thing WHERE id = ANY($1::varchar[])",
                                 portable=lambda: select(THINGS.c.id).where(THINGS.c.id.in_(["a"])))
        assert found == []
        await rows.insert_all(session, [(THINGS, [{"id": "a", "at": AT, "n": 1, "note": None}]),
                                        (NOTES, [{"thing": "a", "text": "ok", "urgent": False}])], alone=True)
        assert not await _in_transaction(session)  # PostgreSQL: no BEGIN was sent, and no COMMIT will be
        if rows.on_postgres(session):
            with pytest.raises(RuntimeError):  # a second write would not be atomic with the first
                await rows.insert(session, NOTES, [{"thing": "a", "text": "late", "urgent": False}])
    assert await _ids(sessions) == ["a"]
    # One statement: a row that fails leaves nothing of the others.
    with pytest.raises(IntegrityError):
        async with sessions() as session, session.begin():
            await rows.insert_all(session, [(THINGS, [{"id": "b", "at": AT, "n": 1, "note": None}]),
                                            (NOTES, [{"thing": "b", "text": None, "urgent": False}])], alone=True)
    assert await _ids(sessions) == ["a"]


async def test_alone_rows_join_a_transaction_an_earlier_statement_began(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    with pytest.raises(Abandoned):
        async with sessions() as session, session.begin():
            await session.execute(THINGS.insert().values(id="orm", at=AT, n=0))
            await rows.insert_all(session, [(THINGS, [{"id": "raw", "at": AT, "n": 1, "note": None}])], alone=True)
            assert await _in_transaction(session) == rows.on_postgres(session)
            raise Abandoned
    assert await _ids(sessions) == []
