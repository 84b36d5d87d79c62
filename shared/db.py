"""Database engines and sessions: SQLite (embedded default, WAL) or PostgreSQL, one database per service.

The schema is made and changed by migrations (shared/migrations.py), never here."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
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
    """
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True)
        _serialise_sqlite_writers(engine)
        return engine
    return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True,
                               hide_parameters=True)


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


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
