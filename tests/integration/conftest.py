"""The harness of the integration tests that drive coordination's use cases on its own database, the same on both
backends (`database_url`: SQLite and PostgreSQL): coordination's migrated database, the front door's seeded one on
the same backend, and a case manager's reassignment of a Task through coordination's service; and the front
door's app in this process for the intake tests (`front_door_app`, `partner_headers`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.coordination import service
from services.triage import configuration
from shared import migrations
from shared.auth import Caller
from shared.db import make_engine, session_factory
from shared.region import DEMO_CLIENTS, FRONT_DOOR
from shared.settings import CODESYSTEM_BASE

Sessions = async_sessionmaker[AsyncSession]
Reassign = Callable[..., Awaitable[dict[str, Any]]]
CASE_MANAGER = Caller(subject="casemanager", kind="user", org=FRONT_DOOR.token, scopes=frozenset(),
                      role="casemanager")


@asynccontextmanager
async def migrated(url: str, service_name: str) -> AsyncIterator[Sessions]:
    """Sessions on the database at `url`, migrated to the head of `service_name`'s revisions; the engine is
    disposed of afterwards."""
    engine = make_engine(url)
    try:
        await migrations.migrate(engine, service_name)
        yield session_factory(engine)
    finally:
        await engine.dispose()


@pytest.fixture
async def coordination_sessions(database_url: str) -> AsyncIterator[Sessions]:
    """Coordination's database, migrated, on each backend in turn."""
    async with migrated(database_url, "coordination") as made:
        yield made


@pytest.fixture
def front_door_url(database_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A database for the front door on the same backend as coordination's (made outside the event loop: the
    PostgreSQL one is created with a loop of its own)."""
    if database_url.startswith("sqlite"):
        return f"sqlite+aiosqlite:///{tmp_path / 'triage.db'}"
    return str(request.getfixturevalue("postgres").new("triage"))


@pytest.fixture
async def front_door(front_door_url: str) -> AsyncIterator[Sessions]:
    """The front door's own database, migrated and seeded with the region's configuration (its directory among
    it)."""
    async with migrated(front_door_url, "triage") as made:
        async with made() as session, session.begin():
            await configuration.seed(session)
        yield made


@pytest.fixture
def reassign(coordination_sessions: Sessions) -> Reassign:
    """`await reassign(task_id, owner, reason=None)`: the case manager moves a Task to `owner` ("system|value"),
    with `reason` as its statusReason when given, through coordination's patch_task in one transaction; returns
    the Task. Raises FhirError as patch_task does (a refusal: 422)."""
    async def reassign(task_id: str, owner: str, reason: str | None = None) -> dict[str, Any]:
        system, _, value = owner.partition("|")
        operations: list[dict[str, Any]] = [{"op": "replace", "path": "/owner",
                                             "value": {"identifier": {"system": system, "value": value}}}]
        if reason:
            operations.append({"op": "add", "path": "/statusReason", "value": {"text": reason}})
        async with coordination_sessions() as session, session.begin():
            return await service.patch_task(session, task_id=task_id, operations=operations, if_match=None,
                                            caller=CASE_MANAGER, codesystem_base=CODESYSTEM_BASE,
                                            clock_tolerance=timedelta(minutes=5), traceparent=None)

    return reassign


@asynccontextmanager
async def front_door_app(database: str | None, data_dir: Path) -> AsyncIterator[Any]:
    """The front door's app in this process on `database` (None: its SQLite default under `data_dir`), migrated,
    seeded with the demo region and its machine clients, without a broker (events stay in the outbox)."""
    from services.triage import clients
    from services.triage.app import create_app
    from services.triage.settings import TriageSettings

    settings = TriageSettings(TRIAGE_DATABASE_URL=database, REGIOZORG_DATA_DIR=data_dir, REGIOZORG_ENV="demo")
    app = create_app(settings)
    runtime = app.state.runtime
    await runtime.start_database()
    async with runtime.sessions() as session, session.begin():
        await configuration.seed(session)
        await clients.seed_demo_clients(session, settings.data_dir)
    runtime.relay = SimpleNamespace(wake=lambda: None)
    try:
        yield app
    finally:
        await runtime.engine.dispose()


def partner_headers(app: Any, client_id: str = "ehr-delinde") -> dict[str, str]:
    """A bearer token the app's own issuer made for a demo machine client, with its scopes, plus FHIR JSON."""
    client = next(c for c in DEMO_CLIENTS if c.client_id == client_id)
    token = app.state.issuer.issue(client_id=client.client_id, org=client.org.token, scopes=client.scopes)
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
