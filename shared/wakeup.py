"""Waking a worker on the commit that feeds it: PostgreSQL LISTEN on a connection of its own.

A trigger NOTIFYs a channel in the transaction that writes the worker's rows (shared.migrations
`create_insert_notify`), so the notification arrives exactly when the rows become visible, in every process
attached to the database. `CommitListener` holds the LISTEN and reconnects whenever the connection is lost;
while it is down (`listening` False) the writing process wakes its own worker after commit, and the worker's
timer covers the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)


class CommitListener:
    """LISTEN on `channel` of `engine`'s PostgreSQL database; `wake()` on every notification and once each time
    listening (re)starts (rows may have committed while nobody listened).

    `keepalive_seconds`: how often an idle connection is asked `SELECT 1` (a server gone without a word shows
    only when asked); `max_backoff`: the longest wait in seconds between reconnection attempts.
    """

    def __init__(self, engine: AsyncEngine, channel: str, wake: Callable[[], None], *, what: str,
                 keepalive_seconds: float = 10.0, max_backoff: float = 5.0) -> None:
        self.engine = engine
        self.channel = channel
        self.wake = wake
        self.what = what
        self.keepalive_seconds = keepalive_seconds
        self.max_backoff = max_backoff
        self.listening = False

    async def run(self) -> None:
        """Listen until cancelled, reconnecting with backoff (0.2 s doubling up to `max_backoff`)."""
        dsn = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        delay = 0.2
        while True:
            try:
                await self._listen_until_lost(dsn)
                delay = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("%s: listening failed (%s); the timer covers until it is back",
                            self.what, exc.__class__.__name__)
            await asyncio.sleep(delay)
            delay = min(self.max_backoff, delay * 2)

    async def _listen_until_lost(self, dsn: str) -> None:
        connection = await asyncpg.connect(dsn, timeout=10)
        lost = asyncio.Event()
        try:
            connection.add_termination_listener(lambda _connection: lost.set())
            await connection.add_listener(self.channel, self._notified)
            self.listening = True
            self.wake()  # rows may have committed while nobody listened
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), self.keepalive_seconds)
                if not lost.is_set():
                    await asyncio.wait_for(connection.execute("SELECT 1"), 5)
        finally:
            self.listening = False
            connection.terminate()

    def _notified(self, *_args: Any) -> None:
        self.wake()


class CommitSignal:
    """An in-process wake-up on commit: `mark(session)` notes that this transaction wrote a worker's rows, and
    when it commits, the `wake` the worker attached to its session factory (`attach`) is called; a rollback
    forgets the mark. For SQLite and for the moments a `CommitListener` is down. `name` keys `Session.info`."""

    def __init__(self, name: str) -> None:
        self._written = f"regiozorg.{name}_written"
        self._wake = f"regiozorg.{name}_wake"
        event.listen(Session, "after_commit", self._after_commit)
        event.listen(Session, "after_rollback", self._after_rollback)

    def mark(self, session: AsyncSession | Session) -> None:
        session.info[self._written] = True

    def attach(self, sessions: async_sessionmaker[AsyncSession], wake: Callable[[], None]) -> None:
        """Sessions of `sessions` call `wake()` after committing a marked transaction."""
        sessions.configure(info={**(sessions.kw.get("info") or {}), self._wake: wake})

    def _after_commit(self, session: Session) -> None:
        if session.info.pop(self._written, False):
            wake = session.info.get(self._wake)
            if wake is not None:
                wake()

    def _after_rollback(self, session: Session) -> None:
        session.info.pop(self._written, None)
