"""Idempotent Kafka consumer, one per service process: effect and processed event id commit together; poison goes
to `.dlq`.

A service process has one Kafka consumer for all its subscriptions: one consumer group (named after the service),
one client, one DLQ producer, subscribed to the union of the subscriptions' topics. What one poll returns is handed
to every subscription that reads the topic (`Subscriber`), the subscriptions side by side; offsets are committed
once every one of them has applied the batch. Idle, that is one fetch per `fetch_max_wait_ms` per process instead
of one per subscription.

A subscription applies its share of a poll in one database transaction: one statement claims every event id, the
handler runs for each newly claimed event in partition order, one commit. When that transaction fails, its share is
applied again one record at a time with the usual retries, so only a poison record is dead-lettered (by that
subscription alone) and every other one takes effect exactly once. A subscription keeps its own name: its claims
(ProcessedEvent.consumer), dead letters (`dlq_consumer`) and metrics carry it.

Until one consumer per process, each subscription was a consumer group named like the subscription
(`<service>.<subscription>`). A partition the service's group has no committed offset for starts where those groups
left off (the lowest of their offsets for it), so that an upgrade does not replay the whole history; without such
offsets it starts at the beginning, as before.

Offsets are committed only after the effect is committed, with a time limit, because a
commit can hang while the embedded broker is being re-created; a lost commit only means
a redelivery, which the processed-event table turns into a no-op.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import IllegalStateError
from aiokafka.structs import OffsetAndMetadata
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import Field, SQLModel

from shared import metrics, statements, tracing
from shared.bus.envelope import EnvelopeError, Event, decode
from shared.bus.topics import dlq
from shared.bus.watch import BrokerWatch
from shared.db import database_unavailable
from shared.logs import redact
from shared.tasks import cancelled

log = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, Event], Awaitable[None]]
# Publishes a dead letter (the record, its headers) until the broker took it.
DeadLetterSender = Callable[[ConsumerRecord, list[tuple[str, bytes]]], Awaitable[None]]
# What a poll returned for one subscription, in partition order: the record and its event, or why it is none.
Polled = list[tuple[ConsumerRecord, Event | EnvelopeError]]

# Failures of the infrastructure, not of the message: retried without limit, never dead-lettered.
TRANSIENT = (OperationalError, InterfaceError, OSError, ConnectionError, TimeoutError)


class ProcessedEvent(SQLModel, table=True):
    __tablename__ = "processed_event"

    consumer: str = Field(primary_key=True, max_length=100)
    event_id: str = Field(primary_key=True, max_length=64)
    topic: str = Field(max_length=200)
    processed_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class PoisonMessage(Exception):
    """Raised by a handler for input that can never be processed; dead-lettered without retries."""


class Subscriber:
    """One subscription of a service: the events of `topics` through `handler`, each once under `name`.

    `name` ("<service>.<subscription>") keys its processed-event claims, labels its metrics and is the
    `dlq_consumer` of its dead letters; it was also the consumer group of the subscription before one consumer
    per process. Dead letters go through the EventConsumer it is given to (`send_dead_letter`).
    """

    def __init__(self, *, name: str, topics: list[str], handler: Handler,
                 sessions: async_sessionmaker[AsyncSession], max_attempts: int = 5,
                 retry_seconds: float = 0.2) -> None:
        self.name = name
        self.topics = topics
        self.handler = handler
        self.sessions = sessions
        self.max_attempts = max_attempts
        self.retry_seconds = retry_seconds
        self.send_dead_letter: DeadLetterSender | None = None

    async def process(self, polled: Polled) -> None:
        """Apply this subscription's share of a poll: together in one transaction, else one record at a time.

        Records that are no CloudEvent are dead-lettered at once; the rest keep their order within each
        partition. Returns when every record has taken effect (once) or been dead-lettered. Its SQL statements
        count for "consumer <name>" (shared/statements.py); call it in a task of its own.
        """
        statements.long_lived(f"consumer {self.name}")
        decoded: list[tuple[ConsumerRecord, Event]] = []
        for record, item in polled:
            if isinstance(item, EnvelopeError):
                with tracing.continued(_header(record, "traceparent")):
                    await self._dead_letter(record, item, attempts=1)
            else:
                decoded.append((record, item))
        if len(decoded) > 1:
            try:
                await self._apply_together([event for _, event in decoded])
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # A poison record, a transient failure or a race with another worker: sort it out per record.
                log.info("consumer %s: batch of %d not applied together (%s); one by one", self.name,
                         len(decoded), exc.__class__.__name__)
        for record, event in decoded:
            with tracing.continued(event.traceparent):
                await self._attempt(record, event)

    async def _apply_together(self, events: list[Event]) -> None:
        applied: list[Event] = []
        async with self.sessions() as session, session.begin():
            claimed = await self._claim_many(session, events)
            for event in events:
                if event.id not in claimed:  # processed before, or a second copy within this batch
                    metrics.DUPLICATES.labels(self.name, event.topic).inc()
                    continue
                claimed.discard(event.id)
                with tracing.continued(event.traceparent):
                    await self.handler(session, event)
                applied.append(event)
        for event in applied:
            metrics.CONSUMED.labels(self.name, event.topic).inc()

    async def _claim_many(self, session: AsyncSession, events: list[Event]) -> set[str]:
        """Record every event id in one statement, in the effects' transaction; the ids that were new.

        Ids are inserted in sorted order, so two workers claiming overlapping batches (during a
        rebalance) wait on each other rather than deadlock.
        """
        insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        now = datetime.now(UTC)
        topics = {event.id: event.topic for event in events}
        claimed = await session.execute(
            insert(ProcessedEvent).values([{"consumer": self.name, "event_id": event_id, "topic": topic,
                                            "processed_at": now} for event_id, topic in sorted(topics.items())])
            .on_conflict_do_nothing().returning(ProcessedEvent.event_id))  # type: ignore[arg-type]
        return set(claimed.scalars())

    async def _attempt(self, record: ConsumerRecord, event: Event) -> None:
        attempt = 0
        while True:
            attempt += 1
            try:
                await self.apply(event)
                return
            except PoisonMessage as exc:
                await self._dead_letter(record, exc, attempts=attempt)
                return
            except Exception as exc:
                metrics.HANDLER_RETRIES.labels(self.name).inc()
                if await self._infrastructure_failed(exc):
                    # The database (or broker) is away: no attempt is used up, however long it takes.
                    log.warning("consumer %s: %s (transient); retrying", self.name, exc.__class__.__name__)
                    await asyncio.sleep(min(5.0, self.retry_seconds * 2 ** min(attempt, 5)))
                    attempt -= 1
                    continue
                if attempt >= self.max_attempts:
                    await self._dead_letter(record, exc, attempts=attempt)
                    return
                await asyncio.sleep(self.retry_seconds * 2 ** (attempt - 1))

    async def _infrastructure_failed(self, exc: BaseException) -> bool:
        """Whether a failure came from the infrastructure rather than from the message.

        Known shapes (connection errors, PostgreSQL's connection, shutdown, resource and
        serialisation SQLSTATEs) say so at once; for anything else the database is asked: if it
        cannot answer now, the failure is not the message's fault either.
        """
        if isinstance(exc, TRANSIENT) or database_unavailable(exc):
            return True
        try:
            async with self.sessions() as session:
                await asyncio.wait_for(session.execute(text("SELECT 1")), 5)
        except Exception:
            return True
        return False

    async def apply(self, event: Event) -> bool:
        """Run the handler once for this event id, in the event's trace; False when it had been processed already."""
        with tracing.continued(event.traceparent):
            return await self._apply_once(event)

    async def _apply_once(self, event: Event) -> bool:
        try:
            async with self.sessions() as session, session.begin():
                if not await self._claim(session, event):
                    metrics.DUPLICATES.labels(self.name, event.topic).inc()
                    return False
                await self.handler(session, event)
        except IntegrityError:
            # Another worker of this service committed the same event first.
            async with self.sessions() as session:
                if await session.get(ProcessedEvent, (self.name, event.id)) is not None:
                    metrics.DUPLICATES.labels(self.name, event.topic).inc()
                    return False
            raise
        metrics.CONSUMED.labels(self.name, event.topic).inc()
        return True

    async def _claim(self, session: AsyncSession, event: Event) -> bool:
        """Record the event id first, in the effect's transaction: one statement says whether it is new.

        A worker handling the same event at the same time waits on the key here, then finds it taken;
        a rolled-back effect takes its processed row with it.
        """
        insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        claimed = await session.execute(
            insert(ProcessedEvent).values(consumer=self.name, event_id=event.id, topic=event.topic,
                                          processed_at=datetime.now(UTC))
            .on_conflict_do_nothing().returning(ProcessedEvent.event_id))  # type: ignore[arg-type]
        return claimed.first() is not None

    async def _dead_letter(self, record: ConsumerRecord, exc: BaseException, *, attempts: int) -> None:
        assert self.send_dead_letter is not None, "a Subscriber dead-letters through its EventConsumer"
        error = redact("".join(traceback.format_exception_only(type(exc), exc)).strip())[:2000]
        headers = list(record.headers or ()) + [
            ("dlq_error", error.encode()),
            ("dlq_consumer", self.name.encode()),
            ("dlq_attempts", str(attempts).encode()),
            ("dlq_origin", f"{record.topic}/{record.partition}/{record.offset}".encode()),
        ]
        await self.send_dead_letter(record, headers)
        metrics.DEAD_LETTERS.labels(self.name, record.topic).inc()
        log.error("consumer %s: event at %s/%d/%d dead-lettered after %d attempt(s): %s", self.name,
                  record.topic, record.partition, record.offset, attempts, error[:300])


class EventConsumer:
    """The one Kafka consumer of a service process: group `group`, the union of the subscribers' topics.

    Workers (processes) of one service share the group and split its partitions. `running` is what /readyz
    reports. With `seed_from_subscriptions` a partition without a committed offset of `group` starts at the lowest
    offset the subscribers' former groups (each named like its subscriber) committed for it, when every subscriber
    reading that topic had committed one; `seeds` holds what was so chosen.
    """

    def __init__(self, *, group: str, subscribers: list[Subscriber], watch: BrokerWatch,
                 commit_timeout: float = 5.0, on_committed: Callable[[], None] | None = None,
                 fetch_max_wait_ms: int = 100, max_poll_records: int = 500,
                 seed_from_subscriptions: bool = True) -> None:
        if not subscribers:
            raise ValueError("an EventConsumer needs at least one subscriber")
        self.group = group
        self.subscribers = subscribers
        self.topics = sorted({topic for subscriber in subscribers for topic in subscriber.topics})
        self.watch = watch
        self.commit_timeout = commit_timeout
        self.on_committed = on_committed
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.max_poll_records = max_poll_records
        self.seed_from_subscriptions = seed_from_subscriptions
        self.seeds: dict[TopicPartition, int] = {}  # partition -> where it started, from the former groups
        self.running = False
        self._rewind = False
        self._consumer: AIOKafkaConsumer | None = None
        self._dlq_producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task[None] | None = None
        self._seen_epoch = watch.epoch
        watch.on_new_epoch(self._on_new_epoch)
        for subscriber in subscribers:
            subscriber.send_dead_letter = self._send_dead_letter

    async def _on_new_epoch(self, epoch: str) -> None:
        if self._seen_epoch is not None and epoch != self._seen_epoch:
            # Our in-memory positions point into the old broker's logs; start over.
            self._rewind = True
        self._seen_epoch = epoch

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.watch.bootstrap, group_id=self.group,
            enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=self.max_poll_records,
            # A fetch returns once a record is there (fetch_min_bytes=1) on Kafka; the embedded broker
            # answers only when the wait is over, so the wait bounds the time from commit to effect.
            fetch_min_bytes=1, fetch_max_wait_ms=self.fetch_max_wait_ms,
            request_timeout_ms=10000, session_timeout_ms=10000, heartbeat_interval_ms=2000)
        if self.seed_from_subscriptions:
            try:
                await self._commit_seeds()
            except Exception as exc:  # the committed offsets or the beginning, as without seeds: safe, only slower
                log.warning("consumer %s: seeding positions failed (%s)", self.group, exc.__class__.__name__)
        self._consumer.subscribe(self.topics)
        await self._consumer.start()
        self._dlq_producer = AIOKafkaProducer(bootstrap_servers=self.watch.bootstrap, acks="all",
                                              enable_idempotence=False, request_timeout_ms=10000)
        await self._dlq_producer.start()
        self.running = True
        self._task = asyncio.create_task(self._run(), name=f"consumer-{self.group}")

    async def stop(self) -> None:
        self.running = False
        await cancelled(self._task)
        for client in (self._consumer, self._dlq_producer):
            if client is not None:
                await client.stop()

    async def _former_positions(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        """{partition: offset} where the subscribers' former groups left off, per partition the lowest over the
        subscribers reading its topic; a partition one of them has no offset for is left out (that subscriber
        would have read it from the beginning)."""
        seeds: dict[TopicPartition, int] = {}
        former = {subscriber.name: await self.watch.group_offsets(
                      subscriber.name, [tp for tp in partitions if tp.topic in subscriber.topics])
                  for subscriber in self.subscribers}
        for tp in partitions:
            readers = [former[subscriber.name] for subscriber in self.subscribers if tp.topic in subscriber.topics]
            if readers and all(tp in offsets for offsets in readers):
                seeds[tp] = min(offsets[tp] for offsets in readers)
        return seeds

    async def _commit_seeds(self) -> None:
        """Before joining: the partitions of our topics the group has no committed offset for, where the former
        groups left off (`_former_positions`), are committed as the group's offsets, so that the group starts there
        and every later rebalance does too (the others start as usual: committed offset, else the beginning).
        Committed outside the group (generation -1), as Kafka allows for a group whose members are not yet there."""
        client = AIOKafkaConsumer(bootstrap_servers=self.watch.bootstrap, group_id=self.group,
                                  enable_auto_commit=False, request_timeout_ms=10000)
        await client.start()
        try:
            await client.topics()  # metadata for every topic, so that their partitions are known
            partitions = sorted(TopicPartition(topic, p) for topic in self.topics
                                for p in client.partitions_for_topic(topic) or ())
            committed = await self.watch.group_offsets(self.group, partitions)
            seeds = await self._former_positions([tp for tp in partitions if tp not in committed])
            if not seeds:
                return
            client.assign(sorted(seeds))
            await client.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in seeds.items()})
        finally:
            await client.stop()
        self.seeds.update(seeds)
        log.info("consumer %s: %d partition(s) without a committed offset start where the former groups left off",
                 self.group, len(seeds))

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            try:
                if self._rewind:
                    self._rewind = False
                    assigned = list(self._consumer.assignment())
                    if assigned:
                        await self._consumer.seek_to_beginning(*assigned)
                batch = await self._consumer.getmany(timeout_ms=500)
                if batch:
                    await self.process_batch(batch)
                    await self._commit({tp: OffsetAndMetadata(records[-1].offset + 1, "")
                                        for tp, records in batch.items() if records})
                await self._report_lag()
                if batch and self.on_committed:
                    self.on_committed()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("consumer %s: %s; continuing", self.group, exc.__class__.__name__)
                await asyncio.sleep(1)

    async def process_batch(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        """Hand what one poll returned to every subscriber of each record's topic, the subscribers side by side;
        returns when each has applied (or dead-lettered) its share (`Subscriber.process`)."""
        polled: Polled = []
        for records in batch.values():
            for record in records:
                try:
                    polled.append((record, decode(record.topic, record.key, record.value, record.headers)))
                except EnvelopeError as exc:
                    polled.append((record, exc))
        shares = [(subscriber, [item for item in polled if item[0].topic in subscriber.topics])
                  for subscriber in self.subscribers]
        await asyncio.gather(*(subscriber.process(share) for subscriber, share in shares if share))

    async def _report_lag(self) -> None:
        """Records not yet consumed, per topic: the highwater of the last fetch minus our position, summed
        over the partitions this worker holds (a partition counts from its first fetch on); reported for every
        subscriber of the topic, since they move together."""
        assert self._consumer is not None
        lag = dict.fromkeys(self.topics, 0)
        for tp in list(self._consumer.assignment()):
            try:
                highwater = self._consumer.highwater(tp)
                if highwater is None:
                    continue
                # Short limit: a partition whose position is being reset must not hold up consuming.
                position = await asyncio.wait_for(self._consumer.position(tp), 0.5)
            except (AssertionError, IllegalStateError, TimeoutError):
                continue  # revoked or reset meanwhile; the next batch reports it
            lag[tp.topic] = lag.get(tp.topic, 0) + max(0, highwater - position)
        for subscriber in self.subscribers:
            for topic in subscriber.topics:
                metrics.CONSUMER_LAG.labels(subscriber.name, topic).set(lag.get(topic, 0))

    async def _commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        assert self._consumer is not None
        try:
            await asyncio.wait_for(self._consumer.commit(offsets), self.commit_timeout)
        except Exception as exc:
            log.warning("consumer %s: offset commit failed (%s); redelivery will be a no-op",
                        self.group, exc.__class__.__name__)

    async def _send_dead_letter(self, record: ConsumerRecord, headers: list[tuple[str, bytes]]) -> None:
        assert self._dlq_producer is not None
        while True:
            try:
                await self._dlq_producer.send_and_wait(dlq(record.topic), value=record.value, key=record.key,
                                                       headers=headers)
                return
            except Exception as send_exc:  # the broker is away; the offset must not move past this record
                log.warning("consumer %s: dead-lettering failed (%s); retrying", self.group,
                            send_exc.__class__.__name__)
                self.watch.poke()
                await asyncio.sleep(1)


def _header(record: ConsumerRecord, name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name:
            return value.decode("utf-8", "replace")
    return None
