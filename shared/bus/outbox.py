"""Transactional outbox: events are rows written with the state change, published later by a relay.

The relay publishes pending rows in order with acks=all, retries with backoff for as
long as the broker is away, and stamps each row with the broker epoch it reached; when
the broker turns out to have lost its data, rows stamped with an older epoch become
pending again, so nothing committed is ever lost (consumers are idempotent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError
from sqlalchemy import Column, Index, LargeBinary, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlmodel import Field, SQLModel

from shared import metrics
from shared.bus.envelope import Event
from shared.bus.watch import BrokerWatch
from shared.db import is_postgres

log = logging.getLogger(__name__)

PENDING, SENT, PARKED = "pending", "sent", "parked"


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
    """Add an event to the caller's transaction; it is published only if that transaction commits."""
    session.add(OutboxRecord(event_id=event.id, topic=event.topic, key=event.key, ce_type=event.type,
                             ce_source=event.source, ce_subject=event.subject, ce_time=event.time,
                             content_type=event.content_type, traceparent=event.traceparent,
                             payload=event.data))


class OutboxRelay:
    def __init__(self, *, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], watch: BrokerWatch,
                 service: str, batch_size: int = 200, poll_seconds: float = 0.2, max_backoff: float = 5.0) -> None:
        self.engine = engine
        self.sessions = sessions
        self.watch = watch
        self.service = service
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.max_backoff = max_backoff
        self.running = False
        self._wake = asyncio.Event()
        self._producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task[None] | None = None
        self._republish_lock = asyncio.Lock()
        watch.on_new_epoch(self.republish_older_epochs)

    def wake(self) -> None:
        """Edges call this after committing, so the event goes out now rather than at the next poll."""
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
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self.service}")

    async def stop(self) -> None:
        self.running = False
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
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

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            try:
                published = await self.publish_batch()
                backoff = 0.1
                if published < self.batch_size:
                    self._wake.clear()
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
        assert self._producer is not None
        started = time.perf_counter()
        async with self.sessions() as session, session.begin():
            query = (select(OutboxRecord).where(OutboxRecord.status == PENDING)
                     .order_by(OutboxRecord.seq).limit(self.batch_size))
            if is_postgres(self.engine):
                # Several workers of one service may relay; each row goes to one of them.
                query = query.with_for_update(skip_locked=True)
            rows = list((await session.execute(query)).scalars())
            if not rows:
                return 0
            epoch = self.watch.epoch
            futures = []
            for row in rows:
                event = row.to_event()
                futures.append(await self._producer.send(row.topic, value=row.payload, key=row.key.encode(),
                                                         headers=event.headers()))
            results = await asyncio.gather(*futures, return_exceptions=True)
            now = datetime.now(UTC)
            failure: BaseException | None = None
            for row, outcome in zip(rows, results, strict=True):
                if isinstance(outcome, MessageSizeTooLargeError):
                    row.status, row.last_error = PARKED, repr(outcome)
                    metrics.OUTBOX_PARKED.labels(self.service).inc()
                    log.error("outbox event %s parked: %s", row.event_id, outcome.__class__.__name__)
                elif isinstance(outcome, BaseException):
                    row.attempts += 1
                    row.last_error = repr(outcome)
                    failure = failure or outcome
                    # Keep per-key order: nothing after a failed row may be marked sent.
                    break
                else:
                    row.status, row.sent_at, row.broker_epoch = SENT, now, epoch
                    metrics.OUTBOX_PUBLISHED.labels(self.service, row.topic).inc()
                session.add(row)
        metrics.OUTBOX_BATCH_SECONDS.labels(self.service).observe(time.perf_counter() - started)
        if failure is not None:
            raise RuntimeError(f"publishing outbox events failed: {failure!r}")
        return len(rows)
