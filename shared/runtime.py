"""What every service process runs besides HTTP: database, broker watch, outbox relay, consumers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared import metrics, migrations, statements
from shared.bus.consumer import EventConsumer, Handler, Subscriber
from shared.bus.outbox import OutboxRelay
from shared.bus.watch import BrokerWatch
from shared.db import is_postgres, make_engine, ping, session_factory
from shared.settings import ServiceSettings
from shared.tasks import cancelled

log = logging.getLogger(__name__)

STARTUP_LOCK_KEY = 0x52_5A_0002  # distinct from the schema lock, which is taken inside it


@dataclass
class Subscription:
    """Events of `topics` through `handler`, each once, under the name "<service>.<name>" (shared/bus/consumer.py)."""

    name: str
    topics: list[str]
    handler: Handler


@dataclass
class ServiceRuntime:
    settings: ServiceSettings
    subscriptions: list[Subscription] = field(default_factory=list)
    background: list[Callable[[ServiceRuntime], Awaitable[None]]] = field(default_factory=list)
    engine: AsyncEngine = field(init=False)
    sessions: async_sessionmaker[AsyncSession] = field(init=False)
    watch: BrokerWatch = field(init=False)
    relay: OutboxRelay = field(init=False)
    consumer: EventConsumer | None = field(init=False, default=None)  # one per process, for every subscription
    _tasks: list[asyncio.Task[None]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.engine = make_engine(self.settings.resolved_database_url)
        self.sessions = session_factory(self.engine)
        self.statements = statements.start(self.settings.service_name, self.engine, self.settings.data_dir)

    async def start_database(self) -> None:
        """Migrate the database to this release's head (services/<service>/migrations).

        Outside demo mode a database that a newer release migrated is refused (migrations.SchemaAhead):
        this code would misread it. In demo mode it is used as it is, with a warning.
        """
        try:
            result = await migrations.migrate(self.engine, self.settings.service_name, ahead_ok=self.settings.demo)
        except migrations.SchemaError as exc:
            log.critical("refusing to start: %s", exc)
            raise
        log.info(migrations.describe(result))

    @asynccontextmanager
    async def startup_lock(self) -> AsyncIterator[None]:
        """Worker processes of one service start together; migrations and seeds run one process at a time.

        PostgreSQL: a session advisory lock held on its own connection. SQLite: every transaction
        already takes the write lock up front (BEGIN IMMEDIATE), so seeds see each other's rows.
        """
        if not is_postgres(self.engine):
            yield
            return
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": STARTUP_LOCK_KEY})
            await conn.commit()
            try:
                yield
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": STARTUP_LOCK_KEY})
                await conn.commit()

    async def start_bus(self) -> None:
        s = self.settings
        self.watch = BrokerWatch(s.kafka_bootstrap, partitions=s.topic_partitions, interval=s.broker_check_seconds,
                                 service=s.service_name)
        self.relay = OutboxRelay(engine=self.engine, sessions=self.sessions, watch=self.watch, service=s.service_name,
                                 poll_seconds=s.outbox_fallback_seconds)
        await _retry_until_started(self.watch.start, "broker")
        if self.statements is not None:
            self._tasks.append(asyncio.create_task(self.statements.flush_forever(), name="statement-counts"))
        # Each long-lived task is started in a task of its own, so that the unit its statements count for
        # (shared/statements.py) is set in its context only.
        await asyncio.create_task(_started_as("outbox relay", self.relay.start))
        if self.subscriptions:
            # One Kafka consumer (group = the service) for all subscriptions: every consumer polls the broker
            # once per fetch wait even when idle, so one per subscription cost a fetch stream each.
            subscribers = [Subscriber(name=f"{s.service_name}.{sub.name}", topics=sub.topics, handler=sub.handler,
                                      sessions=self.sessions, max_attempts=s.consumer_max_attempts)
                           for sub in self.subscriptions]
            consumer = EventConsumer(group=s.service_name, subscribers=subscribers, watch=self.watch,
                                     fetch_max_wait_ms=s.consumer_fetch_wait_ms)
            await asyncio.create_task(_started_as(f"consumer {consumer.group}", consumer.start))
            self.consumer = consumer
        for job in self.background:
            self._tasks.append(asyncio.create_task(_forever(job, self), name=job.__name__))

    async def stop(self) -> None:
        await cancelled(*self._tasks)
        if self.consumer is not None:
            await self.consumer.stop()
        if hasattr(self, "relay"):
            await self.relay.stop()
        if hasattr(self, "watch"):
            await self.watch.stop()
        await self.engine.dispose()
        if self.statements is not None:
            self.statements.flush()

    async def ready(self) -> dict[str, bool]:
        """What /readyz reports: database reachable, broker known, relay and the consumer (when there are
        subscriptions) running."""
        try:
            await asyncio.wait_for(ping(self.engine), 3)
            database = True
        except Exception:
            database = False
        broker = hasattr(self, "watch") and self.watch.healthy
        relay = hasattr(self, "relay") and self.relay.running
        consumers = not self.subscriptions or (self.consumer is not None and self.consumer.running)
        return {"database": database, "broker": broker, "relay": relay, "consumers": consumers}

    async def refresh_gauges(self) -> None:
        pending, age = await self.relay.backlog()
        metrics.OUTBOX_PENDING.labels(self.settings.service_name).set(pending)
        metrics.OUTBOX_OLDEST_SECONDS.labels(self.settings.service_name).set(age)


async def _retry_until_started(start: Callable[[], Awaitable[None]], what: str) -> None:
    delay = 0.2
    while True:
        try:
            await start()
            return
        except Exception as exc:
            log.warning("%s not reachable yet (%s); retrying", what, exc.__class__.__name__)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5)


async def _started_as(unit: str, start: Callable[[], Awaitable[None]]) -> None:
    statements.long_lived(unit)
    await start()


async def _forever(job: Callable[[ServiceRuntime], Awaitable[None]], runtime: ServiceRuntime) -> None:
    statements.long_lived(f"job {job.__name__}")
    while True:
        try:
            await job(runtime)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("background job %s failed: %s", job.__name__, exc.__class__.__name__)
            await asyncio.sleep(1)
