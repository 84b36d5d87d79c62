"""The operator commands against the real broker and databases: dead letters listed and re-driven, an outbox
window replayed, the consumer's lag and trace context as an operator sees them."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client import REGISTRY
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel

from infra import ops
from shared import migrations
from shared.bus.consumer import EventConsumer, PoisonMessage, Subscriber
from shared.bus.envelope import Event
from shared.bus.outbox import PARKED, OutboxRecord, OutboxRelay, enqueue
from shared.bus.topics import CONTACT_DELIVERED, TASK_CHANGED, TASK_OVERDUE, dlq
from shared.bus.watch import BrokerWatch
from shared.db import make_engine, session_factory
from tests.conftest import ROOT, free_port
from tests.json_logs import json_lines

pytestmark = pytest.mark.integration

# Looks like a BSN: must never reach the operator's screen.
PATIENT_DATA = "999911120"


class OpsEffect(SQLModel, table=True):
    """One row per applied event: a second effect of one event would show as a second row."""

    __tablename__ = "test_ops_effect"
    pk: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=64)


class Bus:
    """A service's database and bus plumbing, started the way the service runtime starts them."""

    def __init__(self, database_url: str, bootstrap: str) -> None:
        self.database_url = database_url
        self.engine = make_engine(database_url)
        self.sessions = session_factory(self.engine)
        self.bootstrap = bootstrap
        self.watch = BrokerWatch(bootstrap, partitions=2, interval=0.5)
        self.relay: OutboxRelay | None = None
        self.consumers: list[EventConsumer] = []

    async def start(self) -> None:
        await migrations.migrate(self.engine, "triage")
        async with self.engine.begin() as conn:
            await conn.run_sync(OpsEffect.__table__.create, checkfirst=True)  # type: ignore[attr-defined]
        await self.watch.start()

    async def start_relay(self) -> OutboxRelay:
        self.relay = OutboxRelay(engine=self.engine, sessions=self.sessions, watch=self.watch, service="triage",
                                 poll_seconds=0.05)
        await self.relay.start()
        return self.relay

    async def start_consumer(self, topic: str, handler: Callable, **options: object) -> Subscriber:
        """A consumer with one subscription of `topic` (its group named like it) started; the subscription."""
        subscriber = Subscriber(name=f"ops-test-{uuid.uuid4().hex[:8]}", topics=[topic], handler=handler,
                                sessions=self.sessions, max_attempts=2, retry_seconds=0.01)
        consumer = EventConsumer(group=subscriber.name, subscribers=[subscriber], watch=self.watch,
                                 **options)  # type: ignore[arg-type]
        self.consumers.append(consumer)
        await consumer.start()
        return subscriber

    async def effects(self, event_id: str) -> int:
        async with self.sessions() as session:
            return int((await session.execute(
                select(func.count()).where(OpsEffect.event_id == event_id))).scalar_one())

    async def stop(self) -> None:
        for consumer in self.consumers:
            await consumer.stop()
        if self.relay is not None:
            await self.relay.stop()
        await self.watch.stop()
        await self.engine.dispose()


@pytest.fixture
async def bus(kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Bus]:
    b = Bus(f"sqlite+aiosqlite:///{tmp_path / 'triage.db'}", kafka_bootstrap)
    await b.start()
    monkeypatch.setenv("REGIOZORG_KAFKA_BOOTSTRAP", kafka_bootstrap)
    monkeypatch.setenv("TRIAGE_DATABASE_URL", b.database_url)
    yield b
    await b.stop()


async def wait_until(predicate: Callable[[], object], timeout: float = 15) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if await predicate():  # type: ignore[misc]
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


async def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`python -m infra.ops ARGV` in-process (on a thread: it runs its own event loop)."""
    capsys.readouterr()
    status = await asyncio.to_thread(ops.main, list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def publish(bootstrap: str, event: Event) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    await producer.start()
    try:
        await producer.send_and_wait(event.topic, event.data, key=event.key.encode(), headers=event.headers())
    finally:
        await producer.stop()


async def test_poison_event_is_listed_then_redriven_and_processed_once_after_the_fix(
        bus: Bus, capsys: pytest.CaptureFixture[str]) -> None:
    fixed = False
    log = logging.getLogger("regiozorg.test.handler")

    async def handler(session: AsyncSession, event: Event) -> None:
        log.info("handling %s", event.id)
        if not fixed:
            raise PoisonMessage("contact without a practitioner can never be processed")
        session.add(OpsEffect(event_id=event.id))

    poison = Event.of(topic=CONTACT_DELIVERED, key="p-" + "2" * 32, source="/test", subject="Encounter/1",
                      payload={"resourceType": "Encounter", "id": "1", "note": PATIENT_DATA})
    trace_id = poison.traceparent.split("-")[1]
    with json_lines("shared.bus.consumer", "regiozorg.test.handler") as lines:
        consumer = await bus.start_consumer(CONTACT_DELIVERED, handler)
        await publish(bus.bootstrap, poison)

        async def dead_lettered() -> bool:
            return sample("regiozorg_dead_letters_total", consumer=consumer.name, topic=CONTACT_DELIVERED) >= 1

        await wait_until(dead_lettered)
    # Every line about the event, the handler's and the dead-lettering's, is in the event's trace.
    about_it = [line for line in lines if poison.id in line["message"] or "dead-lettered" in line["message"]]
    assert len(about_it) == 2 and {line["trace_id"] for line in about_it} == {trace_id}

    status, out, _ = await run_cli(capsys, "dead-letters", "list", "--topic", CONTACT_DELIVERED, "--json")
    assert status == 0
    [letter] = [row for row in map(json.loads, out.splitlines()) if row["consumer"] == consumer.name]
    assert letter["ce_id"] == poison.id and letter["ce_type"] == poison.type and letter["attempts"] == 1
    assert letter["topic"] == dlq(CONTACT_DELIVERED) and letter["origin"].startswith(CONTACT_DELIVERED + "/")
    assert "can never be processed" in letter["error"]
    status, text, _ = await run_cli(capsys, "dead-letters", "list", "--limit", "1000")
    location = f"{dlq(CONTACT_DELIVERED)}/{letter['partition']}/{letter['offset']}"
    [line] = [line for line in text.splitlines() if line.startswith(location + " ")]
    assert f"consumer={consumer.name}" in line and "can never be processed" in line
    assert PATIENT_DATA not in out + text

    fixed = True
    offset = f"{letter['partition']}/{letter['offset']}"
    status, out, _ = await run_cli(capsys, "dead-letters", "redrive", "--topic", dlq(CONTACT_DELIVERED),
                                   "--offset", offset)
    assert status == 0 and out.startswith(f"re-driven {location} -> {CONTACT_DELIVERED}/")

    async def processed() -> bool:
        return await bus.effects(poison.id) == 1

    await wait_until(processed)
    duplicates_before = sample("regiozorg_events_duplicate_total", consumer=consumer.name, topic=CONTACT_DELIVERED)
    status, _, _ = await run_cli(capsys, "dead-letters", "redrive", "--topic", dlq(CONTACT_DELIVERED),
                                 "--offset", offset)
    assert status == 0

    async def skipped() -> bool:
        return sample("regiozorg_events_duplicate_total", consumer=consumer.name,
                      topic=CONTACT_DELIVERED) == duplicates_before + 1

    await wait_until(skipped)
    assert await bus.effects(poison.id) == 1
    # The re-driven record is the original event again, without the dead-letter bookkeeping.
    redriven = await read_record(bus.bootstrap, out.split(" -> ")[1].split()[0])
    assert {name for name, _ in redriven} >= {"ce_id", "ce_type", "traceparent"}
    assert not [name for name, _ in redriven if name.startswith("dlq_")]
    assert dict(redriven)["traceparent"] == poison.traceparent.encode()


async def read_record(bootstrap: str, location: str) -> list[tuple[str, bytes]]:
    topic, partition, offset = location.rsplit("/", 2)
    tp = TopicPartition(topic, int(partition))
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await reader.start()
    try:
        reader.assign([tp])
        reader.seek(tp, int(offset))
        record = await asyncio.wait_for(reader.getone(), 10)
        return list(record.headers)
    finally:
        await reader.stop()


async def test_redrive_names_what_it_cannot_find_and_refuses_other_topics(
        bus: Bus, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = await run_cli(capsys, "dead-letters", "redrive", "--topic", dlq(TASK_OVERDUE),
                                   "--offset", "3/99999999")
    assert status == 1 and "no dead letter at 3/99999999" in err
    status, _, err = await run_cli(capsys, "dead-letters", "redrive", "--topic", TASK_OVERDUE, "--all")
    assert status == 2 and f"did you mean {dlq(TASK_OVERDUE)}" in err
    status, _, err = await run_cli(capsys, "dead-letters", "redrive", "--topic", dlq(TASK_OVERDUE),
                                   "--offset", "first")
    assert status == 2 and "PARTITION/OFFSET" in err


async def count_on_topic(bootstrap: str, topic: str, ids: set[str],
                         enough: Callable[[dict[str, int]], bool]) -> dict[str, int]:
    """How often each of these event ids is on the topic, read from the start until `enough` holds."""
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await reader.start()
    counts = dict.fromkeys(ids, 0)
    try:
        partitions = [TopicPartition(topic, p) for p in reader.partitions_for_topic(topic) or ()]
        reader.assign(partitions)
        await reader.seek_to_beginning(*partitions)
        deadline = asyncio.get_running_loop().time() + 15
        while not enough(counts) and asyncio.get_running_loop().time() < deadline:
            for records in (await reader.getmany(timeout_ms=200)).values():
                for record in records:
                    event_id = dict(record.headers).get("ce_id", b"").decode()
                    if event_id in counts:
                        counts[event_id] += 1
        return counts
    finally:
        await reader.stop()


async def test_outbox_replay_republishes_only_the_window_in_utc_and_the_topic_asked(
        database_url: str, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    bus = Bus(database_url, kafka_bootstrap)
    monkeypatch.setenv("REGIOZORG_KAFKA_BOOTSTRAP", kafka_bootstrap)
    monkeypatch.setenv("TRIAGE_DATABASE_URL", database_url)
    created = {"early": "2020-01-01T09:59:59+00:00", "first": "2020-01-01T10:00:00+00:00",
               "last": "2020-01-01T22:59:59+00:00",
               # Before --until by the wall clock, after it in UTC:
               "late": "2020-01-01T23:30:00+00:00",
               "other-topic": "2020-01-01T12:00:00+00:00", "now": datetime.now(UTC).isoformat()}
    try:
        await bus.start()
        ids = {}
        async with bus.sessions() as session, session.begin():
            for name in created:
                event = Event.of(topic=TASK_CHANGED if name == "other-topic" else TASK_OVERDUE,
                                 key=f"p-{uuid.uuid4().hex}", source="/test", subject=f"Task/{name}",
                                 payload={"resourceType": "Task", "id": name})
                enqueue(session, event)
                ids[name] = event.id
        async with bus.sessions() as session, session.begin():
            for name, at in created.items():
                await session.execute(update(OutboxRecord).where(OutboxRecord.event_id == ids[name])
                                      .values(created_at=datetime.fromisoformat(at)))
        relay = await bus.start_relay()

        async def sent_at() -> dict[str, datetime | None]:
            async with bus.sessions() as session:
                rows = (await session.execute(select(OutboxRecord.event_id, OutboxRecord.sent_at).where(
                    OutboxRecord.event_id.in_(ids.values())))).all()  # type: ignore[attr-defined]
            return dict(rows)

        async def all_sent() -> bool:
            return None not in (await sent_at()).values() and len(await sent_at()) == len(ids)

        await wait_until(all_sent)
        first_sent = await sent_at()

        status, out, _ = await run_cli(capsys, "outbox", "replay", "--service", "triage", "--topic", TASK_OVERDUE,
                                       "--since", "2020-01-01T11:00:00+01:00", "--until", "2020-01-02T00:00:00+01:00")
        assert status == 0 and out.startswith("2 sent outbox event(s) of triage")
        relay.wake()

        async def republished() -> bool:
            now = await sent_at()
            return now[ids["first"]] != first_sent[ids["first"]] and now[ids["last"]] != first_sent[ids["last"]]

        await wait_until(republished)
        await asyncio.sleep(0.3)  # room for a wrongly replayed row to be sent as well
        again = await sent_at()
        assert [name for name in created if again[ids[name]] != first_sent[ids[name]]] == ["first", "last"]
        counts = await count_on_topic(kafka_bootstrap, TASK_OVERDUE, {ids[n] for n in created if n != "other-topic"},
                                      lambda c: c[ids["first"]] == 2 and c[ids["last"]] == 2)
        assert counts == {ids[n]: 2 if n in ("first", "last") else 1 for n in created if n != "other-topic"}
    finally:
        await bus.stop()


async def test_outbox_status_counts_and_names_parked_events(bus: Bus, capsys: pytest.CaptureFixture[str]) -> None:
    async with bus.sessions() as session, session.begin():
        for i in range(3):
            enqueue(session, Event.of(topic=TASK_OVERDUE, key=f"p-{i}", source="/test", subject=f"Task/{i}",
                                      payload={"note": PATIENT_DATA}))
    async with bus.sessions() as session, session.begin():
        parked_id = (await session.execute(select(OutboxRecord.event_id).limit(1))).scalar_one()
        await session.execute(update(OutboxRecord).where(OutboxRecord.event_id == parked_id).values(
            status=PARKED, last_error="MessageSizeTooLargeError('too large')"))
    status, out, _ = await run_cli(capsys, "outbox", "status", "--service", "triage")
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == "outbox of triage"
    assert lines[1].split() == ["pending", "2"] and lines[3].split() == ["parked", "1"]
    assert lines[4].startswith("  oldest pending: ")
    assert f"parked {parked_id} {TASK_OVERDUE}" in out and "MessageSizeTooLargeError" in out
    assert PATIENT_DATA not in out


async def test_usage_errors_exit_2_and_an_unreachable_broker_or_database_exits_1(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    window = ["outbox", "replay", "--service", "triage"]
    for argv, message in [
        ([*window, "--since", "2020-01-01T00:00:00", "--until", "2020-01-02T00:00:00Z"], "has no time zone"),
        ([*window, "--since", "yesterday", "--until", "2020-01-02T00:00:00Z"], "not an ISO 8601 time"),
        ([*window, "--since", "2020-01-02T00:00:00Z", "--until", "2020-01-01T00:00:00Z"], "before --until"),
        (["outbox", "status", "--service", "pharmacy"], "invalid choice"),
        (["dead-letters", "list", "--limit", "-1"], "zero or more"),
    ]:
        status, _, err = await run_cli(capsys, *argv)
        assert (status, message in err) == (2, True), err
    monkeypatch.setenv("REGIOZORG_KAFKA_BOOTSTRAP", f"127.0.0.1:{free_port()}")
    status, out, err = await run_cli(capsys, "dead-letters", "list")
    assert status == 1 and err.startswith("error: the broker at 127.0.0.1:") and "Traceback" not in err
    monkeypatch.setenv("REGIOZORG_DATA_DIR", str(tmp_path / "nowhere"))
    monkeypatch.delenv("COORDINATION_DATABASE_URL", raising=False)
    status, _, err = await run_cli(capsys, "outbox", "status", "--service", "coordination")
    assert status == 1 and "no database of coordination" in err and not (tmp_path / "nowhere").exists()


def test_the_module_runs_as_a_command() -> None:
    result = subprocess.run([sys.executable, "-m", "infra.ops", "--help"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0
    assert "dead-letters" in result.stdout and "outbox" in result.stdout


async def test_consumer_lag_counts_what_waits_behind_a_slow_handler_and_drops_to_zero(bus: Bus) -> None:
    entered, gate = asyncio.Event(), asyncio.Event()
    first = Event.of(topic=TASK_OVERDUE, key="p-lag", source="/test", subject="Task/lag", payload={})
    behind = [Event.of(topic=TASK_OVERDUE, key="p-lag", source="/test", subject=f"Task/lag-{i}", payload={})
              for i in range(5)]
    lags: list[float] = []

    async def slow(session: AsyncSession, event: Event) -> None:
        if event.id == first.id:
            entered.set()
            await gate.wait()
        session.add(OpsEffect(event_id=event.id))

    consumer: Subscriber | None = None

    def note_lag() -> None:
        assert consumer is not None
        lags.append(sample("regiozorg_consumer_lag", consumer=consumer.name, topic=TASK_OVERDUE))

    consumer = await bus.start_consumer(TASK_OVERDUE, slow, on_committed=note_lag)
    await publish(bus.bootstrap, first)

    await asyncio.wait_for(entered.wait(), 15)
    for event in behind:
        await publish(bus.bootstrap, event)
    await asyncio.sleep(1.5)  # the fetcher learns the new highwater meanwhile
    gate.set()

    async def all_done() -> bool:
        return all([await bus.effects(e.id) == 1 for e in [first, *behind]]) and lags[-1] == 0

    await wait_until(all_done)
    assert max(lags) >= len(behind)

