"""The services' FHIR searches give the same matches and totals on SQLite and PostgreSQL: date prefixes on stored
instants, :not and :missing, the focus read out of the stored Task, the identifier subquery, paging by COUNT."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from services.coordination import service as coordination
from services.coordination.models import TaskRecord
from services.triage import service as triage
from services.triage.models import ResourceIdentifier, StoredResource
from shared import audit, migrations, search
from shared.auth import Caller
from shared.db import make_engine, session_factory
from shared.region import FRONT_DOOR

pytestmark = pytest.mark.integration
OPS = Caller(subject="ops", kind="client", org=FRONT_DOOR.token, scopes=frozenset({"system/Task.cruds"}))
WIJK = "http://fhir.nl/fhir/NamingSystem/ura|90000020"
ZUIDRAND = "http://fhir.nl/fhir/NamingSystem/ura|90000010"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
# Five Tasks: changed an hour apart from 2026-10-31T21:00Z, so two before and three after 2026-11-01 in Amsterdam.
TASKS = [("t0", "completed", WIJK, {"reference": "ServiceRequest/sr0"}),
         ("t1", "requested", WIJK, {"reference": "https://triage.example/fhir/ServiceRequest/sr1"}),
         ("t2", "in-progress", ZUIDRAND, {"identifier": {"value": "acute-2"}}),
         ("t3", "requested", ZUIDRAND, {"reference": "ServiceRequest/sr3"}),
         ("t4", "cancelled", WIJK, {"reference": "ServiceRequest/xsr3"})]


def request(*items: tuple[str, str], parameters: dict[str, search.SearchParameter],
            prefer: str | None = None) -> search.Search:
    return search.parse(items, parameters=parameters, prefer=prefer, now=NOW, default_count=50, max_count=500)


async def test_task_search_matches_and_counts_alike_on_both_backends(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        await migrations.migrate(engine, "coordination")
        sessions = session_factory(engine)
        first = datetime(2026, 10, 31, 21, 0, tzinfo=UTC)
        async with sessions() as session, session.begin():
            for n, (task_id, status, owner, focus) in enumerate(TASKS):
                session.add(TaskRecord(id=task_id, status=status, owner=owner, requester=FRONT_DOOR.token,
                                       acute_request_id=f"a{n}", source_event_id=f"e{n}", pseudonym=f"p-{n}",
                                       due_at=first, last_updated=first + timedelta(hours=n),
                                       content=json.dumps({"resourceType": "Task", "id": task_id, "focus": focus})))

        async def found(*items: tuple[str, str]) -> tuple[list[str], int]:
            async with sessions() as session:
                tasks, total = await coordination.search_tasks(
                    session, caller=OPS, request=request(*items, parameters=coordination.TASK_SEARCH))
            return [t["id"] for t in tasks], total

        newest_first = ["t4", "t3", "t2", "t1", "t0"]
        assert await found(("_lastUpdated", "ge2026-11-01T00:00:00 01:00")) == (["t4", "t3", "t2"], 3)
        assert await found(("_lastUpdated", "lt2026-11-01")) == (["t1", "t0"], 2)
        assert await found(("_lastUpdated", "lt2000-01-01")) == ([], 0)
        assert await found(("_lastUpdated", "2026-10-31T23:00Z")) == (["t2"], 1)
        assert await found(("_lastUpdated", "ne2026-10-31T23:00Z")) == (["t4", "t3", "t1", "t0"], 4)
        assert await found(("_lastUpdated", "ge2026-10-31T22:00Z"), ("_lastUpdated", "le2026-10-31T23:00Z")) == (
            ["t2", "t1"], 2)
        assert await found(("_lastUpdated", "sa2026-10-31T23:00:00Z,eb2026-10-31T22:00Z")) == (["t4", "t3", "t0"], 3)
        assert await found(("_count", "1")) == (["t4"], 5)
        assert await found(("_count", "2"), ("_offset", "2")) == (["t2", "t1"], 5)
        assert await found(("_count", "0")) == ([], 5)
        assert await found(("status:not", "completed,cancelled")) == (["t3", "t2", "t1"], 3)
        assert await found(("status", "http://hl7.org/fhir/task-status|requested")) == (["t3", "t1"], 2)
        assert await found(("owner:missing", "false")) == (newest_first, 5)
        assert await found(("owner:missing", "true")) == ([], 0)
        assert await found(("owner:identifier", WIJK), ("status:not", "cancelled")) == (["t1", "t0"], 2)
        assert await found(("focus", "ServiceRequest/sr3")) == (["t3"], 1)
        assert await found(("focus", "sr1,sr0")) == (["t1", "t0"], 2)
        assert await found(("focus", "https://triage.example/fhir/ServiceRequest/sr1")) == (["t1"], 1)
        assert await found(("patient", "p-2")) == (["t2"], 1)
        assert await found(("_id", "t1,t3"), ("status:not", "in-progress")) == (["t3", "t1"], 2)
        assert await found(("_id:not", "t1,t3")) == (["t4", "t2", "t0"], 3)
        assert await found(("patient:identifier", "https://other.example/ids|p-2")) == ([], 0)
    finally:
        await engine.dispose()


async def test_service_request_identifier_and_audit_date_searches_on_both_backends(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        await migrations.migrate(engine, "triage")
        sessions = session_factory(engine)
        async with sessions() as session, session.begin():
            for n in range(3):
                session.add(StoredResource(resource_type="ServiceRequest", id=f"sr{n}", patient_id="pat",
                                           status="active" if n else "completed", owner_org=WIJK,
                                           last_updated=NOW - timedelta(days=n),
                                           content=json.dumps({"resourceType": "ServiceRequest", "id": f"sr{n}"})))
            session.add(ResourceIdentifier(resource_type="ServiceRequest", system="https://ehr.example/ids",
                                           value="ref-1", resource_id="sr1"))
        before = datetime.now(UTC)
        for patient in ("p-a", None, "p-a"):
            await audit.record_now(sessions, service="triage", caller=OPS, subtype="read", entity="x",
                                   patient=patient)

        async def requests(*items: tuple[str, str]) -> tuple[list[str], int]:
            async with sessions() as session:
                page = await triage.search_service_requests(
                    session, caller=OPS, request=request(*items, parameters=triage.SERVICE_REQUEST_SEARCH),
                    treatment_window=timedelta(days=7))
            return [r["id"] for r in page.resources], page.total

        assert await requests(("identifier", "https://ehr.example/ids|ref-1")) == (["sr1"], 1)
        assert await requests(("identifier:not", "ref-1")) == (["sr0", "sr2"], 2)
        assert await requests(("identifier:missing", "true")) == (["sr0", "sr2"], 2)
        assert await requests(("status:not", "active")) == (["sr0"], 1)
        assert await requests(("_id", "sr2,sr0")) == (["sr0", "sr2"], 2)
        assert await requests(("patient", "Patient/pat"), ("_count", "1"), ("_offset", "1")) == (["sr1"], 3)
        assert await requests(("patient", "Practitioner/pat")) == ([], 0)
        assert await requests(("_lastUpdated", f"ge{(NOW - timedelta(days=1)).isoformat()}")) == (["sr0", "sr1"], 2)

        async def events(*items: tuple[str, str]) -> int:
            async with sessions() as session:
                return (await audit.find(session, request=request(*items, parameters=audit.SEARCH)))[1]

        assert await events() == 3
        assert await events(("date", f"ge{before.isoformat()}")) == 3
        assert await events(("date", f"lt{before.isoformat()}")) == 0
        assert await events(("date", "lt2026-01-01")) == 0
        assert await events(("patient", "p-a")) == 2
        assert await events(("patient:missing", "true")) == 1
    finally:
        await engine.dispose()
