"""Transactional outbox: events are rows written with the state change, published by a relay woken by the commit.

The relay publishes pending rows in order with acks=all, a batch at a time (one statement takes the batch and
marks it sent; send all, await all, commit), retries with backoff for as long as the broker is away, and stamps
each row with the broker epoch it reached; when the broker turns out to have lost its data, rows stamped with an
older epoch become pending again, so nothing committed is ever lost (consumers are idempotent).

What wakes it: on PostgreSQL a trigger on `outbox` NOTIFYs `OUTBOX_CHANNEL` in the inserting transaction, so
the notification arrives exactly when the rows become visible, in every process of the service; the relay
LISTENs on a connection of its own. On SQLite (and on PostgreSQL while the LISTEN connection is down) a commit
with outbox rows sets the relay's wake event in the writing process. A timer (`poll_seconds`) remains as the
fallback for a lost signal.

Several processes of one service may run against one database: on PostgreSQL a batch is published only by
the holder of a transaction-scoped advisory lock, so one relay at a time publishes and per-key order holds.
SQLite serialises the relays' write transactions (BEGIN IMMEDIATE), which has the same effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import time
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError
from sqlalchemy import BigInteger, Column, Index, LargeBinary, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlmodel import Field, SQLModel

from shared import metrics
from shared.bus.envelope import Event
from shared.bus.watch import BrokerWatch
from shared.db import is_postgres
from shared.tasks import cancelled
from shared.wakeup import CommitListener, CommitSignal

log = logging.getLogger(__name__)

PENDING, SENT, PARKED = "pending", "sent", "parked"
# The PostgreSQL channel the outbox trigger notifies (migrations.create_outbox_notify); NOTIFY is per database.
OUTBOX_CHANNEL = "regiozorg_outbox"
# Commits of outbox rows wake the relay in-process (SQLite, or while its LISTEN is down).
COMMITS = CommitSignal("outbox")


class OutboxRecord(SQLModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_seq", "status", "seq"),)

    seq: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(unique=True, max_length=64)
    topic: str = Field(max_length=200)
    key: str = Field(max_length=100)
    ce_type: str = Field(max_length=200)
    ce_source: str = Field(max_length=200)
    ce_subject: str = Field(max_length=200)
    ce_time: datetime
    content_type: str = Field(max_length=100)
    traceparent: str = Field(max_length=60)
    payload: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    status: str = Field(default=PENDING, max_length=10)
    attempts: int = 0
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    sent_at: datetime | None = None
    broker_epoch: str | None = Field(default=None, max_length=64)
    last_error: str | None = None

    def to_event(self) -> Event:
        return Event(topic=self.topic, key=self.key, source=self.ce_source, subject=self.ce_subject,
                     data=self.payload, id=self.event_id, time=self.ce_time, content_type=self.content_type,
                     traceparent=self.traceparent, type=self.ce_type)


def enqueue(session: AsyncSession, event: Event) -> None:
    """Add an event to the caller's transaction; it is published only if that transaction commits, and its
    commit wakes the relay of a session made by the relay's session factory."""
    session.add(OutboxRecord(event_id=event.id, topic=event.topic, key=event.key, ce_type=event.type,
                             ce_source=event.source, ce_subject=event.subject, ce_time=event.time,
                             content_type=event.content_type, traceparent=event.traceparent,
                             payload=event.data))
    written(session)


def written(session: AsyncSession) -> None:
    """Note that outbox rows were written in this session's transaction some other way than `enqueue` (a hot
    path's one statement, shared/writes.py): its commit wakes the relay in-process, as `enqueue`'s does."""
    COMMITS.mark(session)


def _lock_key(service: str) -> int:
    """A stable signed 64-bit advisory-lock key per service's relay."""
    return int.from_bytes(hashlib.sha256(f"regiozorg.outbox.{service}".encode()).digest()[:8], "big", signed=True)


class OutboxRelay:
    """Publishes a service's outbox; `poll_seconds` is only the fallback when no commit signal arrives."""

    def __init__(self, *, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], watch: BrokerWatch,
                 service: str, batch_size: int = 500, poll_seconds: float = 1.0, max_backoff: float = 5.0,
                 listen_keepalive_seconds: float = 10.0) -> None:
        self.engine = engine
        self.sessions = sessions
        self.watch = watch
        self.service = service
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.max_backoff = max_backoff
        self.listen_keepalive_seconds = listen_keepalive_seconds
        self.running = False
        self._wake = asyncio.Event()
        self._producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task[None] | None = None
        self._listen_task: asyncio.Task[None] | None = None
        self._republish_lock = asyncio.Lock()
        self._lock_key = _lock_key(service)
        self._listener = CommitListener(engine, OUTBOX_CHANNEL, self.wake, what=f"outbox relay of {service}",
                                        keepalive_seconds=listen_keepalive_seconds, max_backoff=max_backoff)
        # Sessions of this factory wake the relay once they commit outbox rows (see enqueue).
        COMMITS.attach(sessions, self._committed)
        watch.on_new_epoch(self.republish_older_epochs)

    def wake(self) -> None:
        """Publish now rather than at the fallback timer (called on every commit that wrote outbox rows)."""
        self._wake.set()

    async def start(self) -> None:
        # Idempotent producers fail against the embedded broker; acks=all plus idempotent
        # consumers gives the same effect.
        self._producer = AIOKafkaProducer(bootstrap_servers=self.watch.bootstrap, acks="all",
                                          enable_idempotence=False, linger_ms=2, request_timeout_ms=10000,
                                          max_batch_size=1 << 20)
        await self._producer.start()
        if self.watch.epoch:
            await self.republish_older_epochs(self.watch.epoch)
        self.running = True
        if is_postgres(self.engine):
            self._listen_task = asyncio.create_task(self._listener.run(), name=f"outbox-listen-{self.service}")
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self.service}")

    async def stop(self) -> None:
        self.running = False
        await cancelled(self._task, self._listen_task)
        if self._producer:
            await self._producer.stop()

    async def republish_older_epochs(self, epoch: str) -> None:
        async with self._republish_lock, self.sessions() as session, session.begin():
            result = await session.execute(
                update(OutboxRecord)
                .where(OutboxRecord.status == SENT, OutboxRecord.broker_epoch != epoch)
                .values(status=PENDING))
            if result.rowcount:
                log.warning("re-publishing %d outbox events after a broker reset", result.rowcount)
        self.wake()

    async def backlog(self) -> tuple[int, float]:
        """Pending events and the age in seconds of the oldest one (for /metrics)."""
        async with self.sessions() as session:
            row = (await session.execute(
                select(func.count(), func.min(OutboxRecord.created_at)).where(OutboxRecord.status == PENDING))).one()
        count, oldest = row
        if oldest is None:
            return int(count), 0.0
        if oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=UTC)
        return int(count), max(0.0, (datetime.now(UTC) - oldest).total_seconds())

    @property
    def listening(self) -> bool:
        """Whether the PostgreSQL LISTEN is up (then every commit's NOTIFY wakes this relay)."""
        return self._listener.listening

    def _committed(self) -> None:
        # While the NOTIFY is heard it wakes this relay too; a second wake would only cost an empty round.
        if not self.listening:
            self.wake()

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            try:
                # Cleared before reading: a commit signalled while a batch is out makes the next round start at once.
                self._wake.clear()
                published = await self.publish_batch()
                backoff = 0.1
                if published < self.batch_size:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Broker or database away: keep the rows pending and try again, forever.
                log.warning("outbox relay of %s: %r; retrying in %.1fs", self.service, exc, backoff)
                self.watch.poke()
                await asyncio.sleep(backoff)
                backoff = min(self.max_backoff, backoff * 2)

    async def publish_batch(self) -> int:
        """Publish up to `batch_size` pending rows in `seq` order; the number of rows handled (0: none, or
        another process of this service is publishing right now).

        One statement takes the batch and marks it sent (PostgreSQL: only while holding the service's
        advisory lock, the rows locked FOR UPDATE SKIP LOCKED); the rows are then sent, all awaited, and the
        transaction commits: a batch whose sending fails midway is never committed as sent. A row the broker
        refuses for good (too large) is parked; on any other failure the rows from the first failed one on
        are put back to pending in the same transaction, so a key's events never overtake each other, and
        RuntimeError is raised for the caller's backoff.
        """
        assert self._producer is not None
        started = time.perf_counter()
        postgres = is_postgres(self.engine)
        epoch = self.watch.epoch
        async with self.sessions() as session, session.begin():
            rows = sorted((await session.execute(_take(postgres), {
                "lock_key": self._lock_key, "limit": self.batch_size, "at": datetime.now(UTC), "epoch": epoch})).all(),
                key=lambda row: row.seq)
            if not rows:
                return 0
            futures: list[asyncio.Future[Any]] = []
            for row in rows:
                event = Event(topic=row.topic, key=row.key, source=row.ce_source, subject=row.ce_subject,
                              data=row.payload, id=row.event_id, time=row.ce_time, content_type=row.content_type,
                              traceparent=row.traceparent, type=row.ce_type)
                try:
                    futures.append(await self._producer.send(row.topic, value=row.payload, key=row.key.encode(),
                                                             headers=event.headers()))
                except MessageSizeTooLargeError as exc:
                    # Larger than the producer's max_request_size: refused before sending, parked like the
                    # broker's refusal (else the round would fail on it for ever, holding up every later row).
                    refused: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
                    refused.set_exception(exc)
                    futures.append(refused)
            results = await asyncio.gather(*futures, return_exceptions=True)
            parked: list[tuple[int, str]] = []
            failure: BaseException | None = None
            for index, (row, outcome) in enumerate(zip(rows, results, strict=True)):
                if isinstance(outcome, MessageSizeTooLargeError):
                    parked.append((row.seq, repr(outcome)))
                    metrics.OUTBOX_PARKED.labels(self.service).inc()
                    log.error("outbox event %s parked: %s", row.event_id, outcome.__class__.__name__)
                elif isinstance(outcome, BaseException):
                    failure = outcome
                    # Keep per-key order: nothing from the failed row on may stay marked sent.
                    await session.execute(update(OutboxRecord).where(
                        OutboxRecord.seq.in_([r.seq for r in rows[index:]]))  # type: ignore[union-attr]
                        .values(status=PENDING, sent_at=None, broker_epoch=None))
                    await session.execute(update(OutboxRecord).where(OutboxRecord.seq == row.seq).values(
                        attempts=OutboxRecord.attempts + 1, last_error=repr(outcome)))
                    break
                else:
                    metrics.OUTBOX_PUBLISHED.labels(self.service, row.topic).inc()
            for seq, error in parked:  # rare: one statement each
                await session.execute(update(OutboxRecord).where(OutboxRecord.seq == seq)
                                      .values(status=PARKED, sent_at=None, broker_epoch=None, last_error=error))
        metrics.OUTBOX_BATCH_SECONDS.labels(self.service).observe(time.perf_counter() - started)
        if failure is not None:
            raise RuntimeError(f"publishing outbox events failed: {failure!r}")
        return len(rows)


_COLUMNS = (OutboxRecord.seq, OutboxRecord.event_id, OutboxRecord.topic, OutboxRecord.key,  # type: ignore[var-annotated]
            OutboxRecord.ce_type, OutboxRecord.ce_source, OutboxRecord.ce_subject, OutboxRecord.ce_time,
            OutboxRecord.content_type, OutboxRecord.traceparent, OutboxRecord.payload)


@functools.cache
def _take(postgres: bool) -> Any:
    """The one statement of a publishing round: the oldest pending rows (at most :limit) marked sent at :at with
    broker epoch :epoch, RETURNING what publishing them needs. On PostgreSQL only if the service's advisory lock
    :lock_key is free (an InitPlan, evaluated once), the rows locked FOR UPDATE SKIP LOCKED (a CTE, so once)."""
    batch = (select(OutboxRecord.seq).where(OutboxRecord.status == PENDING)
             .order_by(OutboxRecord.seq).limit(bindparam("limit")))
    if postgres:
        leader = select(func.pg_try_advisory_xact_lock(bindparam("lock_key", type_=BigInteger))).scalar_subquery()
        batch = batch.where(leader).with_for_update(skip_locked=True)
    taken = batch.cte("batch")
    return (update(OutboxRecord).where(OutboxRecord.seq == taken.c.seq)
            .values(status=SENT, sent_at=bindparam("at"), broker_epoch=bindparam("epoch"))
            .returning(*_COLUMNS))
