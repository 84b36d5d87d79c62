"""The event bus against the real broker, on SQLite and PostgreSQL: outbox, idempotent consumers, DLQ,
and recovery when the embedded broker forgets everything."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from infra.broker import EmbeddedBroker
from shared.bus.consumer import PoisonMessage
from shared.bus.envelope import Event
from shared.bus.outbox import OutboxRecord, enqueue
from shared.bus.topics import PRESTATION_RECORDED, REFERRAL_RECEIVED, dlq
from tests.bus_harness import Effect, Harness
from tests.conftest import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
async def harness(database_url: str, kafka_bootstrap: str) -> AsyncIterator[Harness]:
    h = Harness(database_url, kafka_bootstrap)
    await h.start()
    yield h
    await h.stop()


async def test_outbox_publishes_committed_events_and_nothing_rolled_back(harness: Harness) -> None:
    consumer = harness.consume(REFERRAL_RECEIVED)
    await consumer.start()
    committed = await harness.commit_events(20)
    rolled_back = await harness.commit_events(5, rollback=True)

    async def all_arrived() -> bool:
        return set(committed) <= set(await harness.effects())

    await harness.wait_for(all_arrived)
    await asyncio.sleep(1)  # give a wrongly published rolled-back event time to show up
    # The session's broker also holds other tests' events on this topic: judge only this test's.
    effects = {eid: n for eid, n in (await harness.effects()).items() if eid in {*committed, *rolled_back}}
    assert effects == dict.fromkeys(committed, 1)
    async with harness.sessions() as session:
        statuses = (await session.execute(select(OutboxRecord.status).where(
            OutboxRecord.event_id.in_(committed)))).scalars().all()  # type: ignore[attr-defined]
    assert statuses and set(statuses) == {"sent"}


async def test_an_event_too_large_to_send_is_parked_and_the_next_ones_are_published(harness: Harness) -> None:
    """The producer refuses a value over its max_request_size (1 MiB) before sending: the row is parked with
    its error, and the rows after it in the same round are published, not held up behind it."""
    consumer = harness.consume(REFERRAL_RECEIVED)
    await consumer.start()
    async with harness.sessions() as session, session.begin():
        large = Event.of(topic=REFERRAL_RECEIVED, key="p-" + "1" * 32, source="/test", subject="Test/large",
                         payload={"resourceType": "Basic", "id": "large", "text": "x" * (2 << 20)})
        enqueue(session, large)
    committed = await harness.commit_events(3)

    async def all_arrived() -> bool:
        return set(committed) <= set(await harness.effects())

    await harness.wait_for(all_arrived)
    async with harness.sessions() as session:
        status, error = (await session.execute(select(OutboxRecord.status, OutboxRecord.last_error).where(
            OutboxRecord.event_id == large.id))).one()
    assert status == "parked" and "MessageSizeTooLargeError" in (error or "")


async def test_redelivered_event_has_no_second_effect(harness: Harness) -> None:
    consumer = harness.subscriber([REFERRAL_RECEIVED])
    event = Event.of(topic=REFERRAL_RECEIVED, key="p-" + "0" * 32, source="/test", subject="Test/1",
                     payload={"resourceType": "Basic", "id": "1"})
    assert await consumer.apply(event) is True
    assert await consumer.apply(event) is False
    assert (await harness.effects()) == {event.id: 1}


async def test_poison_message_goes_to_dlq_with_error_and_consumer_goes_on(harness: Harness) -> None:
    async def handler(session: AsyncSession, event: Event) -> None:
        if event.json().get("poison"):
            raise PoisonMessage("this value can never be processed")
        session.add(Effect(event_id=event.id, marker=harness.marker))

    consumer = harness.consume(PRESTATION_RECORDED, handler)
    await consumer.start()
    producer = AIOKafkaProducer(bootstrap_servers=harness.bootstrap, acks="all", enable_idempotence=False)
    await producer.start()
    no_envelope_key = uuid.uuid4().hex.encode()
    try:
        await producer.send_and_wait(PRESTATION_RECORDED, b"not a cloud event", key=no_envelope_key)
        poison = Event.of(topic=PRESTATION_RECORDED, key="p-" + "1" * 32, source="/test", subject="Test/p",
                          payload={"poison": True})
        await producer.send_and_wait(PRESTATION_RECORDED, poison.data, key=poison.key.encode(),
                                     headers=poison.headers())
    finally:
        await producer.stop()
    good = await harness.commit_events(3, topic=PRESTATION_RECORDED)

    async def good_arrived() -> bool:
        return set(good) <= set(await harness.effects())

    await harness.wait_for(good_arrived)
    reader = AIOKafkaConsumer(dlq(PRESTATION_RECORDED), bootstrap_servers=harness.bootstrap,
                              auto_offset_reset="earliest", group_id=None)
    await reader.start()
    found: dict[str, dict[str, str]] = {}
    try:
        deadline = asyncio.get_running_loop().time() + 20
        while len(found) < 2 and asyncio.get_running_loop().time() < deadline:
            batch = await reader.getmany(timeout_ms=500)
            for records in batch.values():
                for r in records:
                    headers = {k: v.decode() for k, v in r.headers}
                    if headers.get("dlq_consumer") != consumer.subscribers[0].name:
                        continue
                    key = "no-envelope" if r.key == no_envelope_key else headers.get("ce_id", "")
                    found[key] = headers
    finally:
        await reader.stop()
    assert "missing CloudEvents headers" in found["no-envelope"]["dlq_error"]
    assert "can never be processed" in found[poison.id]["dlq_error"]
    assert found[poison.id]["dlq_origin"].startswith(PRESTATION_RECORDED + "/")


async def test_broker_killed_and_restarted_mid_stream_loses_nothing(database_url: str, tmp_path: Path) -> None:
    """Runs on its own embedded broker: the point is that it forgets everything on restart."""
    port = free_port()
    broker = EmbeddedBroker(port, tmp_path / "broker.log")
    broker.start()
    h = Harness(database_url, broker.bootstrap)
    try:
        await h.start()
        consumer = h.consume(REFERRAL_RECEIVED)
        await consumer.start()
        before = await h.commit_events(50)

        async def first_batch() -> bool:
            return len(await h.effects()) >= 10

        await h.wait_for(first_batch)
        broker.kill()
        during = await h.commit_events(50)  # committed while the broker is down
        await asyncio.sleep(1)
        broker.start()
        after = await h.commit_events(50)
        expected = set(before + during + after)

        async def everything_arrived() -> bool:
            return expected <= set(await h.effects())

        await h.wait_for(everything_arrived, timeout=90)
        effects = await h.effects()
        assert {eid: n for eid, n in effects.items() if n != 1} == {}
        assert set(effects) == expected
    finally:
        await h.stop()
        broker.stop()
