"""Events in batches and relays woken by the commit, against the real broker on SQLite and PostgreSQL: one
claim statement per poll, poison still alone in `.dlq` of the subscription that refused it while another
subscription of the same consumer applies it, a commit publishing without a timer, two relays of one service
on one database publishing each event once and in key order, two workers of one consumer group sharing the
partitions, and a new group starting where the subscriptions' former groups left off."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata
from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import migrations
from shared.bus.consumer import EventConsumer, PoisonMessage
from shared.bus.envelope import Event
from shared.bus.outbox import SENT, OutboxRecord, OutboxRelay, enqueue
from shared.bus.topics import ACUTE_REQUEST_CLOSED, PRESTATION_FEED, REFERRAL_RECEIVED, dlq
from shared.bus.watch import BrokerWatch
from shared.db import make_engine, session_factory
from tests.bus_harness import Effect, Harness
from tests.conftest import PostgresDatabases

pytestmark = pytest.mark.integration

# This module publishes on topics (acute-request-closed, prestation-feed) that no other test reading the session's
# broker from the beginning consumes: its poison and volume must not reach their handlers.


@pytest.fixture
async def bus(database_url: str, kafka_bootstrap: str) -> AsyncIterator[Harness]:
    h = Harness(database_url, kafka_bootstrap)
    await h.start()
    yield h
    await h.stop()


def events(n: int, *, topic: str, keys: int = 3, poison_at: int | None = None) -> list[Event]:
    return [Event.of(topic=topic, key=f"p-{i % keys:032x}", source="/test", subject=f"Test/{i}",
                     payload={"resourceType": "Basic", "id": str(i), "poison": i == poison_at})
            for i in range(n)]


async def commit(sessions: async_sessionmaker[AsyncSession], batch: list[Event]) -> None:
    """Commit outbox rows the way a use case does, without calling the relay."""
    async with sessions() as session, session.begin():
        for item in batch:
            enqueue(session, item)


async def statuses(sessions: async_sessionmaker[AsyncSession], ids: list[str]) -> set[str]:
    async with sessions() as session:
        return set((await session.execute(select(OutboxRecord.status).where(
            OutboxRecord.event_id.in_(ids)))).scalars())  # type: ignore[attr-defined]


async def all_sent(h: Harness, ids: list[str]) -> bool:
    return await statuses(h.sessions, ids) == {SENT}


def count_claims(h: Harness) -> list[str]:
    """Every claim statement the consumer sends from now on."""
    seen: list[str] = []

    @sa_event.listens_for(h.engine.sync_engine, "before_cursor_execute")
    def _count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO PROCESSED_EVENT"):
            seen.append(statement)

    return seen


def record(item: Event, offset: int) -> ConsumerRecord:
    return ConsumerRecord(topic=item.topic, partition=0, offset=offset, timestamp=0, timestamp_type=0,
                          key=item.key.encode(), value=item.data, checksum=None, serialized_key_size=0,
                          serialized_value_size=len(item.data), headers=item.headers())


async def test_what_one_poll_returns_is_claimed_in_one_statement_and_applied_once(bus: Harness) -> None:
    batch = events(40, topic=ACUTE_REQUEST_CLOSED)
    ids = [e.id for e in batch]
    await commit(bus.sessions, batch)
    await bus.wait_for(lambda: all_sent(bus, ids))
    claims = count_claims(bus)
    consumer = bus.consume(ACUTE_REQUEST_CLOSED)
    await consumer.start()

    async def applied() -> bool:
        return set(ids) <= set(await bus.effects())

    await bus.wait_for(applied)
    effects = await bus.effects()
    assert {eid: effects[eid] for eid in ids} == dict.fromkeys(ids, 1)
    # 40 events (and whatever other tests left on the topic) in a few polls: a claim per poll, not per event.
    assert 1 <= len(claims) <= 4, len(claims)


async def letters_of(bootstrap: str, topic: str, names: list[str], wanted: set[str]) -> dict[str, list[str]]:
    """{subscriber name: ce_ids of `wanted` it dead-lettered on `topic`'s .dlq}, read until a second after the
    first letter (a wrongly dead-lettered record would follow it)."""
    reader = AIOKafkaConsumer(dlq(topic), bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await reader.start()
    found: dict[str, list[str]] = {name: [] for name in names}

    def take(polled: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        for records in polled.values():
            for r in records:
                headers = dict(r.headers)
                name, ce_id = headers.get("dlq_consumer", b"").decode(), headers.get("ce_id", b"").decode()
                if name in found and ce_id in wanted:
                    found[name].append(ce_id)

    try:
        deadline = asyncio.get_running_loop().time() + 10
        while not any(found.values()) and asyncio.get_running_loop().time() < deadline:
            take(await reader.getmany(timeout_ms=500))
        await asyncio.sleep(1)
        take(await reader.getmany(timeout_ms=1000))
    finally:
        await reader.stop()
    return found


async def test_poison_to_one_subscription_goes_alone_to_its_dlq_and_the_other_subscription_applies_everything(
        bus: Harness) -> None:
    """Two subscriptions of one process on one topic, one consumer: one refuses an event, the other takes it."""
    other_marker = uuid.uuid4().hex

    async def refusing(session: AsyncSession, item: Event) -> None:
        if item.json().get("poison"):
            raise PoisonMessage("this value can never be processed")
        session.add(Effect(event_id=item.id, marker=bus.marker))

    async def taking(session: AsyncSession, item: Event) -> None:
        session.add(Effect(event_id=item.id, marker=other_marker))

    batch = events(21, topic=PRESTATION_FEED, keys=1, poison_at=10)  # one key: one partition, one poll
    poison = batch[10]
    good = [e.id for e in batch if e is not poison]
    await commit(bus.sessions, batch)
    await bus.wait_for(lambda: all_sent(bus, [e.id for e in batch]))
    refuser = bus.subscriber([PRESTATION_FEED], refusing)
    taker = bus.subscriber([PRESTATION_FEED], taking)
    consumer = bus.consumer(refuser, taker)
    await consumer.start()
    ours = {e.id for e in batch}

    async def applied() -> bool:
        return set(good) <= set(await bus.effects()) and ours <= set(await bus.effects(other_marker))

    await bus.wait_for(applied)
    refused = {eid: n for eid, n in (await bus.effects()).items() if eid in ours}
    taken = {eid: n for eid, n in (await bus.effects(other_marker)).items() if eid in ours}
    assert refused == dict.fromkeys(good, 1)
    assert taken == dict.fromkeys(ours, 1)
    # The topic also holds earlier tests' poison (the broker lives for the session): judge this test's only.
    letters = await letters_of(bus.bootstrap, PRESTATION_FEED, [refuser.name, taker.name], ours)
    assert letters == {refuser.name: [poison.id], taker.name: []}


async def test_a_batch_holding_one_event_twice_applies_it_once_and_a_redelivered_batch_not_at_all(
        bus: Harness) -> None:
    other_marker = uuid.uuid4().hex

    async def also(session: AsyncSession, item: Event) -> None:
        session.add(Effect(event_id=item.id, marker=other_marker))

    consumer = bus.consumer(bus.subscriber([ACUTE_REQUEST_CLOSED]), bus.subscriber([ACUTE_REQUEST_CLOSED], also))
    first, second = events(2, topic=ACUTE_REQUEST_CLOSED)
    polled = {TopicPartition(ACUTE_REQUEST_CLOSED, 0): [record(first, 0), record(second, 1), record(first, 2)]}
    await consumer.process_batch(polled)
    await consumer.process_batch(polled)
    # Each subscription applies each event once, under its own claims.
    assert await bus.effects() == {first.id: 1, second.id: 1}
    assert await bus.effects(other_marker) == {first.id: 1, second.id: 1}


async def test_a_commit_wakes_the_relay_without_its_timer(database_url: str, kafka_bootstrap: str) -> None:
    h = Harness(database_url, kafka_bootstrap)
    h.relay = OutboxRelay(engine=h.engine, sessions=h.sessions, watch=h.watch, service="test", poll_seconds=60)
    await h.start()
    try:
        await asyncio.sleep(0.5)  # the start's own round is over; from here on only a signal publishes
        here = events(3, topic=ACUTE_REQUEST_CLOSED)
        await commit(h.sessions, here)
        await h.wait_for(lambda: all_sent(h, [e.id for e in here]), timeout=5)
        if h.engine.dialect.name == "postgresql":
            # Sessions the relay does not know, as in another process of the service: the NOTIFY wakes it.
            elsewhere = events(3, topic=ACUTE_REQUEST_CLOSED)
            await commit(session_factory(h.engine), elsewhere)
            await h.wait_for(lambda: all_sent(h, [e.id for e in elsewhere]), timeout=5)
    finally:
        await h.stop()


@pytest.fixture
def postgres_url(postgres: PostgresDatabases) -> str:
    return postgres.new("relays")


async def test_two_relays_of_one_service_publish_each_event_once_and_in_key_order(
        postgres_url: str, kafka_bootstrap: str) -> None:
    url = postgres_url
    engines = [make_engine(url), make_engine(url)]
    factories = [session_factory(engine) for engine in engines]
    await migrations.migrate(engines[0], "coordination")
    watches = [BrokerWatch(kafka_bootstrap, partitions=2, interval=0.5) for _ in engines]
    # Small batches, so that without the leader lock each relay would take its own slice of one key's events.
    relays = [OutboxRelay(engine=engine, sessions=sessions, watch=watch, service="coordination", poll_seconds=60,
                          batch_size=5)
              for engine, sessions, watch in zip(engines, factories, watches, strict=True)]
    tap = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=None, auto_offset_reset="earliest",
                           fetch_max_wait_ms=20)
    try:
        for watch in watches:
            await watch.start()
        await tap.start()
        partitions = [TopicPartition(PRESTATION_FEED, p) for p in tap.partitions_for_topic(PRESTATION_FEED) or ()]
        tap.assign(partitions)
        await tap.seek_to_end(*partitions)  # other tests' events are not this test's
        for tp in partitions:
            await tap.position(tp)
        marker = uuid.uuid4().hex[:8]
        order: list[str] = []  # commit order
        for round_ in range(20):
            made = [Event.of(topic=PRESTATION_FEED, key=f"{marker}-{i % 4}", source="/test", subject=f"T/{round_}-{i}",
                             payload={"round": round_, "i": i}) for i in range(10)]
            await commit(factories[round_ % 2], made)
            order += [e.id for e in made]
        await asyncio.gather(*(relay.start() for relay in relays))  # both find the whole backlog at once
        slow = relays[0]._producer  # one process is slower to send: the other must not overtake it
        assert slow is not None
        send = slow.send

        async def slow_send(*args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(0.01)
            return await send(*args, **kwargs)

        slow.send = slow_send  # type: ignore[method-assign]
        more = [Event.of(topic=PRESTATION_FEED, key=f"{marker}-{i % 4}", source="/test", subject=f"T/more-{i}",
                         payload={"i": i}) for i in range(40)]
        for i in range(0, 40, 4):  # and every commit from here on NOTIFYs both
            await commit(factories[i % 2], more[i:i + 4])
        order += [e.id for e in more]
        key_of = {}
        seen: dict[str, list[str]] = defaultdict(list)
        deadline = asyncio.get_running_loop().time() + 30
        while sum(map(len, seen.values())) < len(order) and asyncio.get_running_loop().time() < deadline:
            for records in (await tap.getmany(timeout_ms=500)).values():
                for r in records:
                    if r.key and r.key.decode().startswith(marker):
                        ce_id = dict(r.headers)["ce_id"].decode()
                        key_of[ce_id] = r.key.decode()
                        seen[r.key.decode()].append(ce_id)
        await asyncio.sleep(1)  # a second publication would arrive meanwhile
        for records in (await tap.getmany(timeout_ms=1000)).values():
            for r in records:
                if r.key and r.key.decode().startswith(marker):
                    seen[r.key.decode()].append(dict(r.headers)["ce_id"].decode())
        expected: dict[str, list[str]] = defaultdict(list)
        for ce_id in order:
            expected[key_of.get(ce_id, "missing")].append(ce_id)
        assert dict(seen) == dict(expected)
    finally:
        await tap.stop()
        for watch, relay, engine in zip(watches, relays, engines, strict=True):
            await relay.stop()
            await watch.stop()
            await engine.dispose()


async def test_two_workers_of_one_group_split_the_partitions_and_apply_each_event_once_when_one_stops(
        bus: Harness, database_url: str) -> None:
    """Two processes of a service with two subscriptions of one topic each: one consumer group, each subscription
    applies every event once, also when a worker stops mid-stream."""
    other_marker = uuid.uuid4().hex

    async def also(session: AsyncSession, item: Event) -> None:
        session.add(Effect(event_id=item.id, marker=other_marker))

    one, two = bus.subscriber([REFERRAL_RECEIVED]), bus.subscriber([REFERRAL_RECEIVED], also)
    first = bus.consumer(one, two)
    other_engine = make_engine(database_url)  # the second worker is another process: its own engine
    other_sessions = session_factory(other_engine)
    second = bus.consumer(*(bus.subscriber(s.topics, s.handler, name=s.name, sessions=other_sessions)
                            for s in (one, two)), group=first.group)
    try:
        await asyncio.gather(first.start(), second.start())
        before = events(120, topic=REFERRAL_RECEIVED, keys=24)
        for i in range(0, len(before), 10):
            await commit(bus.sessions, before[i:i + 10])

        async def some_applied() -> bool:
            return len(set(await bus.effects()) & {e.id for e in before}) >= 40

        await bus.wait_for(some_applied)
        await second.stop()  # mid-stream: its partitions go to the first worker
        after = events(120, topic=REFERRAL_RECEIVED, keys=24)
        for i in range(0, len(after), 10):
            await commit(bus.sessions, after[i:i + 10])
        ids = {e.id for e in before + after}

        async def all_applied() -> bool:
            return ids <= set(await bus.effects()) and ids <= set(await bus.effects(other_marker))

        await bus.wait_for(all_applied, timeout=60)
        for marker in (bus.marker, other_marker):
            effects = await bus.effects(marker)
            assert {eid: n for eid, n in effects.items() if eid in ids} == dict.fromkeys(ids, 1)
    finally:
        await second.stop()
        await other_engine.dispose()


async def offsets_of(bootstrap: str, topic: str, ids: set[str]) -> dict[str, tuple[TopicPartition, int]]:
    """{ce_id: (partition, offset)} of the events `ids` on `topic`, read from the beginning."""
    tap = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest")
    await tap.start()
    found: dict[str, tuple[TopicPartition, int]] = {}
    try:
        deadline = asyncio.get_running_loop().time() + 20
        while set(found) != ids and asyncio.get_running_loop().time() < deadline:
            for tp, records in (await tap.getmany(timeout_ms=500)).items():
                for r in records:
                    ce_id = dict(r.headers).get("ce_id", b"").decode()
                    if ce_id in ids:
                        found[ce_id] = (tp, r.offset)
    finally:
        await tap.stop()
    assert set(found) == ids
    return found


async def test_a_new_group_starts_where_the_subscriptions_former_groups_left_off(bus: Harness) -> None:
    """The upgrade to one consumer per process: the service's group has no offsets yet, each subscription's former
    group (named like the subscription) has. Each partition starts at the lowest of them, not at the beginning:
    what both former groups had taken is not read again, what one of them had not is read by both subscriptions,
    and the one that had applied it skips it (its claims are unchanged)."""
    other_marker = uuid.uuid4().hex

    async def also(session: AsyncSession, item: Event) -> None:
        session.add(Effect(event_id=item.id, marker=other_marker))

    ahead, behind = bus.subscriber([ACUTE_REQUEST_CLOSED]), bus.subscriber([ACUTE_REQUEST_CLOSED], also)
    taken_by_both = events(12, topic=ACUTE_REQUEST_CLOSED, keys=6)
    taken_by_one = events(12, topic=ACUTE_REQUEST_CLOSED, keys=6)
    for batch in (taken_by_both, taken_by_one):
        await commit(bus.sessions, batch)
        await bus.wait_for(lambda batch=batch: all_sent(bus, [e.id for e in batch]))
    placed = await offsets_of(bus.bootstrap, ACUTE_REQUEST_CLOSED, {e.id for e in taken_by_both + taken_by_one})
    partitions = sorted({tp for tp, _ in placed.values()})
    # The offsets the former groups committed: past the last event each had taken, per partition.
    middle = {tp: 1 + max(o for e in taken_by_both for t, o in [placed[e.id]] if t == tp) for tp in partitions}
    end = {tp: 1 + max(o for e in taken_by_both + taken_by_one for t, o in [placed[e.id]] if t == tp)
           for tp in partitions}
    for item in taken_by_one:  # what `ahead` had applied under its former group
        assert await ahead.apply(item) is True
    for name, offsets in ((ahead.name, end), (behind.name, middle)):
        former = AIOKafkaConsumer(bootstrap_servers=bus.bootstrap, group_id=name, enable_auto_commit=False)
        await former.start()
        try:
            former.assign(partitions)
            await former.commit({tp: OffsetAndMetadata(offsets[tp], "") for tp in partitions})
        finally:
            await former.stop()
    consumer = bus.consumer(ahead, behind)
    await consumer.start()
    one = {e.id for e in taken_by_one}

    async def caught_up() -> bool:
        return one <= set(await bus.effects(other_marker)) and \
            await bus.watch.group_offsets(consumer.group, partitions) == end

    await bus.wait_for(caught_up)
    await asyncio.sleep(1)  # anything read from the beginning would be applied meanwhile
    assert consumer.seeds == {tp: middle[tp] for tp in partitions}
    assert await bus.effects(other_marker) == dict.fromkeys(one, 1)
    assert await bus.effects() == dict.fromkeys(one, 1)  # applied before the upgrade, skipped after it
    # A subscription without a former group would have read the topic from the beginning: no seed for its topic.
    again = [bus.subscriber([ACUTE_REQUEST_CLOSED], name=s.name) for s in (ahead, behind)]
    newcomer = bus.subscriber([ACUTE_REQUEST_CLOSED])
    widened = EventConsumer(group=f"{consumer.group}-widened", subscribers=[*again, newcomer], watch=bus.watch)
    assert await widened._former_positions(partitions) == {}
