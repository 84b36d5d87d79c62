"""Database engines and sessions: SQLite (embedded default, WAL) or PostgreSQL, one database per service.

The schema is made and changed by migrations (shared/migrations.py), never here."""

from __future__ import annotations

from pathlib import Path

import asyncpg
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


def normalise_url(url: str) -> str:
    """Accept the usual spellings of a database URL and pick the async driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + url[len("postgresql://"):]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///"):]
    return url


def make_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An async engine for a service's database URL (SQLite file or PostgreSQL).

    Statement parameters are hidden from error messages (`hide_parameters`): an error's text ends up in logs and
    dead letters, and parameters can be a BSN, a name or a birth date (SPEC §10: never patient data in logs).

    PostgreSQL connections are not pinged when taken from the pool (`pool_pre_ping` costs asyncpg three round
    trips per checkout: BEGIN, ";", ROLLBACK); a pooled connection the server has closed (a restart, a
    terminated backend) is replaced at checkout instead, seen without a round trip (`_replace_closed_connections`),
    and a connection that breaks in use invalidates the pool's older connections (SQLAlchemy's "optimistic"
    disconnect handling). The request that meets a break the client had not seen yet fails as the database being
    unavailable (503); intake retries it once (services/triage/api/fhir.py).
    """
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True)
        _serialise_sqlite_writers(engine)
        return engine
    engine = create_async_engine(url, pool_size=pool_size, max_overflow=pool_size, hide_parameters=True)
    _replace_closed_connections(engine)
    return engine


def _replace_closed_connections(engine: AsyncEngine) -> None:
    # SQLAlchemy's documented custom pessimistic check: DisconnectionError from a checkout listener makes the pool
    # discard that connection and open a new one. asyncpg reads the server's goodbye (FATAL 57P01 "terminating
    # connection due to administrator command", then EOF) while the connection idles in the pool, so its
    # is_closed() answers without a round trip; the same test the asyncpg dialect's is_disconnect makes.
    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(_dbapi_connection, _record, proxy) -> None:  # type: ignore[no-untyped-def]
        if proxy.driver_connection.is_closed():
            raise DisconnectionError("the server closed this pooled connection")


def _serialise_sqlite_writers(engine: AsyncEngine) -> None:
    # SQLite upgrades a read lock to a write lock lazily and then fails at once with
    # "database is locked"; BEGIN IMMEDIATE takes the write lock up front so that
    # concurrent transactions wait (busy_timeout) instead of failing.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn) -> None:  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def is_postgres(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "postgresql"


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


# PostgreSQL: connection exception, insufficient resources, operator intervention (shutdown,
# cannot connect now), transaction rollback (serialisation failure, deadlock); and 55000,
# "database … is not currently accepting connections".
TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "53", "57", "40"})
TRANSIENT_SQLSTATES = frozenset({"55000"})


def database_unavailable(exc: BaseException) -> bool:
    """A failure of the database itself (away, restarting, refusing, overloaded), not of the work."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    for candidate in (exc.orig, getattr(exc.orig, "__cause__", None)):
        state = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(state, str):
            return state[:2] in TRANSIENT_SQLSTATE_CLASSES or state in TRANSIENT_SQLSTATES
    return False


# SQLSTATE of a connection the server ends: class 08 (connection exception), 57P01-57P03 (admin shutdown, crash
# shutdown, cannot connect now).
_LOST_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})


def connection_lost(exc: BaseException) -> bool:
    """Whether `exc` (a SQLAlchemy error, or one shared/rows.py raised) says the connection itself broke: closed by
    the server (a restart, a terminated backend) or by the network, not the database refusing the work. A unit of
    work that is safe to run twice may then be retried once: the pool opens a new connection."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    orig = getattr(exc, "orig", None)
    for candidate in (orig, getattr(orig, "__cause__", None)):
        if isinstance(candidate, asyncpg.ConnectionDoesNotExistError | asyncpg.InternalClientError | ConnectionError):
            return True
        if isinstance(candidate, asyncpg.InterfaceError) and "connection is closed" in str(candidate):
            return True
        state = getattr(candidate, "sqlstate", None)
        if isinstance(state, str) and (state[:2] == "08" or state in _LOST_SQLSTATES):
            return True
    return False


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
