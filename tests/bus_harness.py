"""A service's bus plumbing for the bus tests (tests/integration/test_bus*.py): its database with an effect table,
the broker watch and the outbox relay, and consumers whose subscribers' effect is one row per applied event."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import Field, SQLModel

from shared import migrations
from shared.bus.consumer import EventConsumer, Subscriber
from shared.bus.envelope import Event
from shared.bus.outbox import OutboxRelay, enqueue
from shared.bus.topics import REFERRAL_RECEIVED
from shared.bus.watch import BrokerWatch
from shared.db import make_engine, session_factory


class Effect(SQLModel, table=True):
    """One row per applied event: a duplicate effect would show as a second row."""

    __tablename__ = "test_effect"
    pk: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=64)
    marker: str = Field(max_length=64)


class Harness:
    def __init__(self, database_url: str, bootstrap: str) -> None:
        self.engine = make_engine(database_url)
        self.sessions = session_factory(self.engine)
        self.bootstrap = bootstrap
        self.watch = BrokerWatch(bootstrap, partitions=2, interval=0.5)
        self.relay = OutboxRelay(engine=self.engine, sessions=self.sessions, watch=self.watch, service="test",
                                 poll_seconds=0.05)
        self.consumers: list[EventConsumer] = []
        self.marker = uuid.uuid4().hex

    async def start(self) -> None:
        # A service's database (the bus tables come with every service) plus this test's effect table.
        await migrations.migrate(self.engine, "triage")
        async with self.engine.begin() as conn:
            await conn.run_sync(Effect.__table__.create, checkfirst=True)  # type: ignore[attr-defined]
        await self.watch.start()
        await self.relay.start()

    def subscriber(self, topics: list[str], handler: Callable | None = None, *, name: str | None = None,
                   sessions: async_sessionmaker[AsyncSession] | None = None) -> Subscriber:
        """A subscription of `topics` (by default recording an Effect row per event) under a fresh name."""
        marker = self.marker

        async def record(session: AsyncSession, event: Event) -> None:
            session.add(Effect(event_id=event.id, marker=marker))

        return Subscriber(name=name or f"test-{uuid.uuid4().hex[:8]}", topics=topics, handler=handler or record,
                          sessions=sessions or self.sessions, max_attempts=2, retry_seconds=0.01)

    def consumer(self, *subscribers: Subscriber, group: str | None = None) -> EventConsumer:
        """A service process's consumer of these subscribers (group: a fresh name unless given); stopped at the end."""
        consumer = EventConsumer(group=group or f"test-{uuid.uuid4().hex[:8]}", subscribers=list(subscribers),
                                 watch=self.watch)
        self.consumers.append(consumer)
        return consumer

    def consume(self, topic: str, handler: Callable | None = None) -> EventConsumer:
        """A consumer with one subscriber of `topic`, its group named like the subscriber."""
        subscriber = self.subscriber([topic], handler)
        return self.consumer(subscriber, group=subscriber.name)

    async def commit_events(self, n: int, *, topic: str = REFERRAL_RECEIVED, rollback: bool = False) -> list[str]:
        ids = []
        try:
            async with self.sessions() as session, session.begin():
                for i in range(n):
                    event = Event.of(topic=topic, key=f"p-{i % 7:032x}", source="/test", subject=f"Test/{i}",
                                     payload={"resourceType": "Basic", "id": str(i)})
                    enqueue(session, event)
                    ids.append(event.id)
                if rollback:
                    raise RuntimeError("roll back")
        except RuntimeError:
            pass
        self.relay.wake()
        return ids

    async def effects(self, marker: str | None = None) -> dict[str, int]:
        """{event id: effect rows} this harness's handlers (or those writing `marker`) made."""
        async with self.sessions() as session:
            rows = (await session.execute(select(Effect.event_id, func.count()).where(
                Effect.marker == (marker or self.marker)).group_by(Effect.event_id))).all()
        return {event_id: count for event_id, count in rows}

    async def wait_for(self, predicate: Callable[[], object], timeout: float = 30) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            if await predicate():  # type: ignore[misc]
                return
            await asyncio.sleep(0.1)
        raise AssertionError("condition not reached in time")

    async def stop(self) -> None:
        for consumer in self.consumers:
            await consumer.stop()
        await self.relay.stop()
        await self.watch.stop()
        await self.engine.dispose()
