"""Two notification senders (two coordination processes) on one database, SQLite and PostgreSQL: every event of
a subscription reaches the receiver once and in event-number order, and a lease is only given back by its holder."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from services.coordination.models import Notification, SubscriptionRecord
from services.coordination.notifications import RetryPolicy, Sender
from shared import migrations
from shared.db import make_engine, session_factory

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


def sender(engine: AsyncEngine, received: list[int]) -> Sender:
    async def receive(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.005)  # a receiver that takes a moment: the two senders overlap
        for entry in json.loads(request.content)["entry"][1:]:
            received.append(int(entry["request"]["url"].removeprefix("Task/t")))
        return httpx.Response(200)

    return Sender(sessions=session_factory(engine), base_url="http://coordination.test",
                  policy=RetryPolicy(0.1, 1, 3600),
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
