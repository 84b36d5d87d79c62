"""The same referral posted twice at once, on PostgreSQL: both posts read that nothing is stored yet, one stores it
and the other's INSERT fails on a unique key (through asyncpg directly, shared/rows.py) and is answered with the
first outcome; nothing is stored twice."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from infra.referrals import referral_bundle
from services.triage import service
from services.triage.models import AcuteRequest, StoredResource
from shared.audit import AuditRecord
from tests.conftest import PostgresDatabases
from tests.integration.conftest import front_door_app, partner_headers


@pytest.fixture
def database(postgres: PostgresDatabases) -> str:
    return postgres.new("race")


@pytest.fixture
async def triage(database: str, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    async with front_door_app(database, tmp_path) as app, httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://triage.test",
            headers=partner_headers(app)) as http:
        yield http, app.state.runtime


async def test_a_referral_posted_twice_at_once_is_stored_once_and_both_get_its_ids(
        triage: tuple[httpx.AsyncClient, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    http, runtime = triage
    both_looked = asyncio.Barrier(2)
    lookup = service._lookup_receipts
    lookups = 0

    async def lookup_then_wait(*args: Any, **kwargs: Any) -> None:
        nonlocal lookups
        await lookup(*args, **kwargs)
        lookups += 1
        if lookups <= 2:  # the first look of each post waits for the other's; later ones (the retry) do not
            try:
                await asyncio.wait_for(both_looked.wait(), 10)
            except TimeoutError:
                await both_looked.abort()

    monkeypatch.setattr(service, "_lookup_receipts", lookup_then_wait)
    body = json.dumps(referral_bundle(bsn="111222333", referral_id="race-1", bundle_id="race-b1")).encode()
    first, second = await asyncio.gather(http.post("/fhir", content=body), http.post("/fhir", content=body))
    assert not both_looked.broken, "the two posts did not read the receipts at the same time"
    assert (first.status_code, second.status_code) == (200, 200), (first.text, second.text)
    locations = [[e["response"]["location"] for e in r.json()["entry"]] for r in (first, second)]
    assert locations[0] == locations[1]
    statuses = sorted({e["response"]["status"] for e in r.json()["entry"]} for r in (first, second))
    assert {"201 Created"} in statuses and {"200 OK"} in statuses
    async with runtime.sessions() as session:
        requests = (await session.execute(select(func.count()).select_from(AcuteRequest))).scalar_one()
        stored = (await session.execute(select(func.count()).select_from(StoredResource))).scalar_one()
        audited = (await session.execute(select(AuditRecord.entity).where(AuditRecord.subtype == "create"))).all()
    assert requests == 1
    assert stored == len(locations[0])
    assert sorted(entity for entity, in audited)[-1] == "transaction retry: the first result was returned"
    assert len(audited) == 2
