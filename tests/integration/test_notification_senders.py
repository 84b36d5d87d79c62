"""Two notification senders (two coordination processes) on one database, SQLite and PostgreSQL: every event of
a subscription reaches the receiver once and in event-number order, and a lease is only given back by its holder.
A sender wakes on the commit that adds a notification or a subscription (issue #17), and at the moment a retry
is due, not on its timer."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from services.coordination import notifications
from services.coordination.models import Notification, SubscriptionRecord
from services.coordination.notifications import RetryPolicy, Sender
from shared import migrations
from shared.auth import Caller
from shared.db import is_postgres, make_engine, session_factory
from shared.tasks import cancelled
from shared.writes import Writes

pytestmark = pytest.mark.integration

EVENTS = 30


@pytest.fixture
async def engines(database_url: str) -> AsyncIterator[list[AsyncEngine]]:
    made = [make_engine(database_url), make_engine(database_url)]
    await migrations.migrate(made[0], "coordination")
    yield made
    for engine in made:
        await engine.dispose()


async def subscription_with_events(engine: AsyncEngine, n: int) -> str:
    async with session_factory(engine)() as session, session.begin():
        session.add(SubscriptionRecord(id="sub-1", owner_org="urn:oid:2.16.528.1.1007.3.3|00000001", status="active",
                                       endpoint="http://receiver.test/hook", heartbeat_seconds=0, created_by="test",
                                       events_since_start=n,
                                       content=json.dumps({"resourceType": "Subscription", "channel": {}})))
        session.add_all([Notification(subscription_id="sub-1", event_number=i, focus=f"Task/t{i}")
                         for i in range(1, n + 1)])
    return "sub-1"


def sender(engine: AsyncEngine, received: list[int], *, fallback_seconds: float = 30.0, refuse_events: int = 0,
           kinds: list[str] | None = None) -> Sender:
    """A sender whose receiver notes the event numbers it takes (and the notification types in `kinds`), after
    answering 500 to the first `refuse_events` event notifications."""
    refused = [0]

    async def receive(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.005)  # a receiver that takes a moment: the two senders overlap
        body = json.loads(request.content)
        kind = next(p["valueCode"] for p in body["entry"][0]["resource"]["parameter"] if p["name"] == "type")
        if kind == "event-notification" and refused[0] < refuse_events:
            refused[0] += 1
            return httpx.Response(500)
        if kinds is not None:
            kinds.append(kind)
        for entry in body["entry"][1:]:
            received.append(int(entry["request"]["url"].removeprefix("Task/t")))
        return httpx.Response(200)

    return Sender(sessions=session_factory(engine), base_url="http://coordination.test",
                  policy=RetryPolicy(0.1, 1, 3600), fallback_seconds=fallback_seconds,
                  http=httpx.AsyncClient(transport=httpx.MockTransport(receive)))


async def test_two_senders_deliver_every_event_once_in_order(engines: list[AsyncEngine]) -> None:
    await subscription_with_events(engines[0], EVENTS)
    received: list[int] = []
    senders = [sender(engine, received) for engine in engines]

    async def work(one: Sender) -> None:
        deadline = asyncio.get_running_loop().time() + 60
        while len(received) < EVENTS and asyncio.get_running_loop().time() < deadline:
            await one.run_once()

    await asyncio.gather(*(work(one) for one in senders))
    assert received == list(range(1, EVENTS + 1))
    async with session_factory(engines[0])() as session:
        undelivered = (await session.execute(select(Notification.event_number).where(
            Notification.delivered_at.is_(None)))).scalars().all()  # type: ignore[union-attr]
    assert undelivered == []


async def test_a_lease_taken_over_after_it_expired_is_not_given_back_by_its_first_holder(
        engines: list[AsyncEngine]) -> None:
    subscription = await subscription_with_events(engines[0], 1)
    first, second = sender(engines[0], []), sender(engines[1], [])
    stale = await first.claim(subscription)
    assert stale is not None
    async with session_factory(engines[0])() as session, session.begin():  # the first holder outlived its lease
        await session.execute(update(SubscriptionRecord).values(lease_until=stale - timedelta(minutes=1)))
    current = await second.claim(subscription)
    assert current is not None
    await first.release(subscription, stale)  # the first holder is done at last
    assert await first.claim(subscription) is None  # still the second's
    await second.release(subscription, current)
    assert await first.claim(subscription) is not None


async def _serving(one: Sender) -> asyncio.Task[None]:
    """The sender's loop started, and (PostgreSQL) listening, with its first pass behind it."""
    task = asyncio.create_task(one.serve_forever())
    deadline = time.monotonic() + 10
    while one._listener is not None and not one.listening and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)
    return task


async def _until(check: list[int] | list[str], count: int, timeout: float) -> float:
    """Seconds until `check` holds `count` items (fails after `timeout`)."""
    started = time.monotonic()
    while len(check) < count:
        assert time.monotonic() - started < timeout, f"{len(check)} of {count} within {timeout}s"
        await asyncio.sleep(0.01)
    return time.monotonic() - started


async def test_a_notification_is_sent_on_its_commit_not_on_the_timer(engines: list[AsyncEngine]) -> None:
    """The fallback timer is 30 s; the event arrives well within a second. On PostgreSQL the Task change is
    committed by another process (engine) than the sender's, so only the trigger's NOTIFY can wake it; on
    SQLite by the sender's own session factory (the in-process signal)."""
    await subscription_with_events(engines[0], 0)
    received: list[int] = []
    one = sender(engines[0], received, fallback_seconds=30)
    writer = session_factory(engines[1]) if is_postgres(engines[0]) else one.sessions
    task = await _serving(one)
    try:
        for number in (1, 2):
            async with writer() as session, session.begin():
                writes = Writes()
                notifications.notify_in(writes, dialect=engines[0].dialect.name, task_id=f"t{number}",
                                        owner="urn:oid:2.16.528.1.1007.3.3|00000001", at=datetime.now(UTC))
                await writes.flush(session)
            assert await _until(received, number, timeout=5) < 1.0
        assert received == [1, 2]
    finally:
        await cancelled(task)


async def test_a_new_subscription_is_greeted_and_a_refused_event_retried_when_due(
        engines: list[AsyncEngine]) -> None:
    """The handshake goes out on the subscription's commit; an event the receiver refused once is sent again
    when its backoff (0.1 s) has passed, not at the 30 s timer."""
    received: list[int] = []
    kinds: list[str] = []
    one = sender(engines[0], received, fallback_seconds=30, refuse_events=1, kinds=kinds)
    writer = session_factory(engines[1]) if is_postgres(engines[0]) else one.sessions
    task = await _serving(one)
    try:
        owner = "http://fhir.nl/fhir/NamingSystem/ura|90000020"
        async with writer() as session, session.begin():
            await notifications.create(session, caller=Caller(subject="partner", kind="client", org=owner,
                                                              scopes=frozenset()), body={
                "resourceType": "Subscription", "status": "requested", "reason": "test",
                "criteria": f"Task?owner={owner}",
                "channel": {"type": "rest-hook", "endpoint": "http://receiver.test/hook",
                            "payload": "application/fhir+json"}})
        assert await _until(kinds, 1, timeout=5) < 1.0
        async with writer() as session, session.begin():
            await notifications.notify(session, task_id="t1", owner=owner)
        assert await _until(received, 1, timeout=5) < 1.0
        assert kinds == ["handshake", "event-notification"]
        deadline = time.monotonic() + 5
        while True:  # the receiver has it; the sender records the delivery after the answer
            async with session_factory(engines[0])() as session:
                rows = (await session.execute(select(Notification.attempts, Notification.delivered_at))).all()
            if rows[0].delivered_at is not None or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.02)
        assert [row.attempts for row in rows] == [2]
    finally:
        await cancelled(task)
