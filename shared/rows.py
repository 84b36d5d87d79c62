"""Rows written and read on hot paths without the ORM: on PostgreSQL straight through asyncpg, inside the session's
own transaction; on SQLite as SQLAlchemy Core through the session.

Measured (tests/bench/profile_intake.py, PostgreSQL on the same machine): a statement through `session.execute`
costs about 115 µs of CPU in this process, the same statement through asyncpg about 20 µs; a referral is a dozen
statements. Errors are raised as SQLAlchemy's (IntegrityError, OperationalError, DBAPIError, with the driver's
error as `orig`), so callers and `shared.db.database_unavailable` treat both paths alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import asyncpg
from sqlalchemy import Table
from sqlalchemy import exc as sa_exc
from sqlalchemy import insert as core_insert
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable


def on_postgres(session: AsyncSession) -> bool:
    """Whether the session's database is PostgreSQL (else SQLite, the embedded default)."""
    return session.bind.dialect.name == "postgresql"


_DRIVER = "shared.rows.driver"  # session.info key: (the session transaction, its adapted asyncpg connection)
_ALONE = "shared.rows.alone"  # session.info key: the session transaction whose one write went without BEGIN


async def _adapted(session: AsyncSession) -> Any:
    """SQLAlchemy's adapter of the asyncpg connection under the session (its transaction not begun by this)."""
    transaction = session.get_transaction()
    remembered = session.info.get(_DRIVER)
    if remembered is not None and transaction is not None and remembered[0] is transaction:
        return remembered[1]  # the same transaction holds the same connection: no pool round again
    connection = await session.connection()
    adapted = (await connection.get_raw_connection()).dbapi_connection
    session.info[_DRIVER] = (session.get_transaction(), adapted)
    return adapted


async def _driver(session: AsyncSession, *, begin: bool = True) -> asyncpg.Connection:
    """The asyncpg connection under the session, its transaction begun (unless `begin` is false: see `fetch`).

    SQLAlchemy's asyncpg adapter sends BEGIN lazily, with the first statement it executes; a statement sent
    around it must begin that same transaction the same way, or it would run in autocommit. The adapter's
    `_transaction` and `_start_transaction` are what its own cursor uses (SQLAlchemy 2.1, pinned in
    requirements.lock); tests/integration/test_hot_path_rows.py fails if they change.
    """
    adapted = await _adapted(session)
    if begin and adapted._transaction is None and not adapted.autocommit:
        if session.info.get(_ALONE) is session.get_transaction():
            raise RuntimeError("a write after insert_all(alone=True) in the same transaction: it would not be atomic")
        try:
            await adapted._start_transaction()
        except adapted.dbapi.Error as error:
            # The adapter's translation of asyncpg's error (a connection the server closed fails here first):
            # raised as asyncpg's own, which the callers translate as they do a statement's.
            cause = error.__cause__
            raise (cause if isinstance(cause, _DRIVER_ERRORS) else asyncpg.InterfaceError(str(error))) from None
    return adapted._connection


def _translated(session: AsyncSession, statement: str, error: Exception) -> Exception:
    if isinstance(error, asyncpg.IntegrityConstraintViolationError):
        return sa_exc.IntegrityError(statement, None, error, hide_parameters=True)
    if isinstance(error, asyncpg.PostgresError) and not isinstance(error, asyncpg.PostgresConnectionError):
        return sa_exc.DBAPIError(statement, None, error, hide_parameters=True)
    # Connection lost, refused or closed, or its protocol out of step (InternalClientError after the server's
    # goodbye): the database itself is away (503 at the edge, see shared/db.py). The connection is closed here, so
    # that the pool replaces it at its next checkout instead of handing it out again.
    remembered = session.info.get(_DRIVER)
    if remembered is not None and remembered[0] is session.get_transaction():
        remembered[1]._connection.terminate()
    return sa_exc.OperationalError(statement, None, error, hide_parameters=True)


_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError)

# Called with (SQL text, executemany) for every statement sent to asyncpg here, which SQLAlchemy's
# before_cursor_execute event does not see: statement counters (tests/bench) subscribe to both.
statement_listeners: list[Callable[[str, bool], None]] = []


def _sent(statement: str, many: bool) -> None:
    for listener in statement_listeners:
        listener(statement, many)


@lru_cache(maxsize=256)
def _insert_sql(table: str, columns: tuple[str, ...]) -> str:
    names = ", ".join(f'"{column}"' for column in columns)
    values = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    return f'INSERT INTO "{table}" ({names}) VALUES ({values})'


async def insert(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT `rows` into `table` in the session's transaction, in one round trip (executemany). Every row names
    the same columns (column name -> value, Python values as SQLAlchemy would bind them: str, int, bool, aware
    datetime, None); columns left out get their server default. Nothing is sent for no rows."""
    if not rows:
        return
    if not on_postgres(session):
        await session.execute(core_insert(table), list(rows))
        return
    columns = tuple(rows[0])
    statement = _insert_sql(table.name, columns)
    try:
        driver = await _driver(session)
        _sent(statement, len(rows) > 1)
        if len(rows) == 1:
            await driver.execute(statement, *(rows[0][c] for c in columns))
        else:
            await driver.executemany(statement, [tuple(row[c] for c in columns) for row in rows])
    except _DRIVER_ERRORS as error:
        raise _translated(session, statement, error) from error


async def insert_all(session: AsyncSession, batches: Sequence[tuple[Table, Sequence[dict[str, Any]]]], *,
                     alone: bool = False) -> None:
    """INSERT rows into several tables in the session's transaction: on PostgreSQL in one statement (a
    data-modifying WITH per table), elsewhere one INSERT per table. Rows as `insert` takes them; a table without
    rows is left out.

    On PostgreSQL the rows go as one parameter per value (`VALUES ($1, $2), ($3, $4)`, a statement text per shape:
    tables and row counts) while they need at most `VALUES_PARAMETERS`; more as one array per column (`unnest`),
    one text whatever the counts. asyncpg checks every array element against three abstract base classes in
    Python, which cost a referral about 400 Python calls.

    `alone`: the caller promises that these rows are the transaction's last write. When nothing began the
    transaction on the server yet (only `fetch(..., begin=False)` reads) and the session holds no pending ORM
    change, the statement is then sent without BEGIN: one statement is atomic by itself, and the commit has
    nothing to send (BEGIN and COMMIT are two round trips, about 155 µs of CPU here with asyncpg). A later write
    through this module in the same transaction raises RuntimeError.

    The values take their columns' types; the arrays are cast to the columns' base types without a length
    (`varchar[]`, not `varchar(64)[]`, which would cut a value silently). Either way the INSERT's own assignment
    refuses a value too long for its column, as `insert` does.
    """
    batches = [(table, rows) for table, rows in batches if rows]
    if not batches:
        return
    if not on_postgres(session):
        for table, rows in batches:
            await session.execute(core_insert(table), list(rows))
        return
    shape = tuple((table, tuple(rows[0])) for table, rows in batches)
    if sum(len(columns) * len(rows) for (_table, columns), (_, rows) in zip(shape, batches, strict=True)) \
            <= VALUES_PARAMETERS:
        statement = _insert_values_sql(tuple((table, columns, len(rows))
                                             for (table, columns), (_, rows) in zip(shape, batches, strict=True)))
        arguments = [row[column] for (_table, columns), (_, rows) in zip(shape, batches, strict=True)
                     for row in rows for column in columns]
    else:
        statement = _insert_all_sql(shape)
        arguments = [[row[column] for row in rows]
                     for (_table, columns), (_, rows) in zip(shape, batches, strict=True) for column in columns]
    try:
        if alone and not (session.new or session.dirty or session.deleted):
            adapted = await _adapted(session)
            if adapted._transaction is None and not adapted.autocommit:
                session.info[_ALONE] = session.get_transaction()
            driver = await _driver(session, begin=False)
        else:
            driver = await _driver(session)
        _sent(statement, False)
        await driver.execute(statement, *arguments)
    except _DRIVER_ERRORS as error:
        raise _translated(session, statement, error) from error


VALUES_PARAMETERS = 2000  # asyncpg sends at most 32767 parameters; a large Bundle goes as arrays


@lru_cache(maxsize=256)
def _insert_values_sql(shape: tuple[tuple[Table, tuple[str, ...], int], ...]) -> str:
    parts, number = [], 1
    for index, (table, columns, count) in enumerate(shape):
        names = ", ".join(f'"{column}"' for column in columns)
        rows = []
        for _ in range(count):
            rows.append("(" + ", ".join(f"${number + i}" for i in range(len(columns))) + ")")
            number += len(columns)
        parts.append(f'w{index} AS (INSERT INTO "{table.name}" ({names}) VALUES {", ".join(rows)})')
    return "WITH " + ", ".join(parts) + " SELECT 1"


@lru_cache(maxsize=256)
def _insert_all_sql(shape: tuple[tuple[Table, tuple[str, ...]], ...]) -> str:
    parts, number = [], 1
    for index, (table, columns) in enumerate(shape):
        names = ", ".join(f'"{column}"' for column in columns)
        arrays = ", ".join(f"${number + i}::{_base_type(table, column)}[]" for i, column in enumerate(columns))
        parts.append(f'w{index} AS (INSERT INTO "{table.name}" ({names}) SELECT * FROM unnest({arrays}))')
        number += len(columns)
    return "WITH " + ", ".join(parts) + " SELECT 1"


def _base_type(table: Table, column: str) -> str:
    return _LENGTH.sub("", table.columns[column].type.compile(dialect=postgresql.dialect()))


_LENGTH = re.compile(r"\(\d+\)")


async def fetch(session: AsyncSession, *, postgres: str, arguments: Sequence[Any],
                portable: Callable[[], Executable], begin: bool = True) -> list[tuple[Any, ...]]:
    """The rows of a query: on PostgreSQL the SQL text `postgres` with `$1…` bound to `arguments` (write it to use
    an index: `= ANY($1::varchar[])`, `unnest(…)`), elsewhere the SQLAlchemy statement `portable()` makes (built
    only there: building it costs more than sending the text), which must select the same columns in the same
    order.

    `begin=False`: while the session's transaction has not begun on the server, the query runs outside it
    (autocommit), for a read that takes no lock; under READ COMMITTED each statement reads its own snapshot
    anyway, so it sees what it would have seen inside. With `insert_all(..., alone=True)` after it, the
    transaction needs no BEGIN at all."""
    if not on_postgres(session):
        return [tuple(row) for row in await session.execute(portable())]
    try:
        driver = await _driver(session, begin=begin)
        _sent(postgres, False)
        return [tuple(row) for row in await driver.fetch(postgres, *arguments)]
    except _DRIVER_ERRORS as error:
        raise _translated(session, postgres, error) from error
