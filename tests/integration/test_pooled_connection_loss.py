"""Pooled PostgreSQL connections the server closed (a restart, `pg_terminate_backend`) do not fail a request: the
pool is not pinged on checkout (shared/db.py), so a closed connection is replaced at checkout, and intake retries
once when its connection breaks under it (services/triage/api/fhir.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import func, select

from infra.referrals import referral_bundle
from services.triage import service
from services.triage.models import AcuteRequest
from shared.audit import AuditRecord
from shared.bus.outbox import OutboxRecord
from tests.conftest import PostgresDatabases
from tests.integration.conftest import front_door_app, partner_headers

TERMINATE_OTHERS = ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()")


@pytest.fixture
def database(postgres: PostgresDatabases) -> str:
    return postgres.new("connloss")


@pytest.fixture
async def triage(database: str, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    async with front_door_app(database, tmp_path) as app, httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://triage.test",
            headers=partner_headers(app)) as http:
        yield http, app.state.runtime


async def _terminate(database: str, pids: list[int] | None = None) -> int:
    """Terminate the database's other backends (or only `pids`) and wait until they are gone; how many were."""
    connection = await asyncpg.connect(database, timeout=10)
    try:
        if pids is None:
            ended = len(await connection.fetch(TERMINATE_OTHERS))
        else:
            ended = len(await connection.fetch("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid",
                                               pids))
        for _ in range(500):
            left = await connection.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND (cardinality($1::int[]) = 0 OR pid = ANY($1::int[]))", pids or [])
            if left == 0:
                return ended
            await asyncio.sleep(0.01)
        raise AssertionError("terminated backends did not go away")
    finally:
        await connection.close()


def _bundle(n: int) -> bytes:
    return json.dumps(referral_bundle(bsn=("111222333", "123456782", "999999990")[n], referral_id=f"loss-{n}",
                                      bundle_id=f"loss-b{n}")).encode()


def _service_request_status(response: httpx.Response) -> str:
    return next(e["response"]["status"] for e in response.json()["entry"]
                if e["response"]["location"].startswith("ServiceRequest/"))


async def _stored(runtime: Any) -> tuple[int, int, int]:
    """Acute requests, audit events of a created ServiceRequest, outbox rows."""
    async with runtime.sessions() as session:
        requests = (await session.execute(select(func.count()).select_from(AcuteRequest))).scalar_one()
        audited = (await session.execute(select(func.count()).select_from(AuditRecord).where(
            AuditRecord.entity.like("ServiceRequest for acute request %")))).scalar_one()  # type: ignore[attr-defined]
        outbox = (await session.execute(select(func.count()).select_from(OutboxRecord))).scalar_one()
    return requests, audited, outbox


async def test_requests_after_the_servers_connections_were_terminated_succeed(
        triage: tuple[httpx.AsyncClient, Any], database: str) -> None:
    http, runtime = triage
    first = await http.post("/fhir", content=_bundle(0))
    assert first.status_code == 200, first.text
    assert runtime.engine.pool.checkedin() >= 1  # the pool holds the connection the next request would take

    assert await _terminate(database) >= 1

    second = await http.post("/fhir", content=_bundle(1))
    assert second.status_code == 200, second.text
    sr = next(location.split("/_history")[0] for location in
              (e["response"]["location"] for e in second.json()["entry"]) if location.startswith("ServiceRequest/"))
    assert await _terminate(database) >= 1
    read = await http.get(f"/fhir/{sr}")  # not intake: served by a fresh connection, not retried
    assert read.status_code == 200, read.text
    assert await _stored(runtime) == (2, 2, 4)  # each referral: its request, one audit event, two events


async def test_a_referral_whose_connection_breaks_before_its_first_statement_is_stored_once(
        triage: tuple[httpx.AsyncClient, Any], database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The break the client has not seen yet when it takes the connection (the server's goodbye still in flight):
    the first statement fails, and intake runs again on a new connection."""
    http, runtime = triage
    assert (await http.post("/fhir", content=_bundle(0))).status_code == 200
    lookup = service._lookup_receipts
    broken: list[int] = []

    async def lookup_on_a_broken_connection(session: Any, *args: Any, **kwargs: Any) -> None:
        if not broken:
            raw = await (await session.connection()).get_raw_connection()
            broken.append(raw.driver_connection.get_server_pid())
            await _terminate(database, broken)
        await lookup(session, *args, **kwargs)

    monkeypatch.setattr(service, "_lookup_receipts", lookup_on_a_broken_connection)
    response = await http.post("/fhir", content=_bundle(1))
    assert broken, "the connection was not broken"
    assert response.status_code == 200, response.text
    assert _service_request_status(response) == "201 Created"
    assert await _stored(runtime) == (2, 2, 4)
    again = await http.post("/fhir", content=_bundle(1))  # the pool serves on
    assert again.status_code == 200, again.text
    assert _service_request_status(again) == "200 OK"  # the retry of the Bundle: its first outcome
