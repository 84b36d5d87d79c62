"""Task-based access at the front door on SQLite and PostgreSQL: the grants kept from `task-changed` (repeats, late
and out-of-order versions, reassignment, an ended Task, the window), what a grant opens of an acute request and
nothing more, and the search that applies the same decision."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from infra.referrals import referral_bundle
from services.triage import access, service
from services.triage.domain.grants import ACUTE_REQUEST_SYSTEM
from services.triage.models import AcuteRequest, StoredResource, TaskOwnership, TreatmentGrant
from shared import audit, migrations, search
from shared.auth import Caller
from shared.bus.consumer import PoisonMessage
from shared.bus.envelope import Event
from shared.bus.topics import TASK_CHANGED
from shared.db import make_engine, session_factory
from shared.fhir import FhirError, Issue, dumps
from shared.identifiers import AGB_SYSTEM, URA_SYSTEM
from shared.region import FRONT_DOOR
from tests.migrations import region

pytestmark = pytest.mark.integration

KEY = b"test-pseudonym-key"
WEEK = timedelta(days=7)


def by_patient(patient_id: str) -> search.Search:
    """`GET /fhir/ServiceRequest?patient=<id>` as the API reads it."""
    return search.parse([("patient", patient_id)], parameters=service.SERVICE_REQUEST_SEARCH, prefer=None,
                        now=datetime.now(UTC), default_count=50, max_count=500)


def client(org: str, subject: str) -> Caller:
    return Caller(subject=subject, kind="client", org=org, scopes=frozenset({"system/ServiceRequest.cruds"}))


DELINDE = client(f"{AGB_SYSTEM}|01000001", "ehr-delinde")
WIJK = client(f"{URA_SYSTEM}|90000020", "ehr-wijk-oost")
ZUIDRAND = client(f"{URA_SYSTEM}|90000010", "ehr-zuidrand")
OPS = client(FRONT_DOOR.token, "ops")


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(database_url)
    try:
        await migrations.migrate(engine, "triage")
        yield session_factory(engine)
    finally:
        await engine.dispose()


@dataclass
class Referral:
    request_id: str
    resources: dict[str, str]  # resource type -> id, of what the Bundle stored


def with_supporting_resources(bundle: dict[str, Any]) -> dict[str, Any]:
    """The factory's referral with a Condition, an Observation, a QuestionnaireResponse and an AllergyIntolerance
    about its patient."""
    patient_url = next(e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    subject = {"reference": patient_url}
    for resource in ({"resourceType": "Condition", "subject": subject, "code": {"text": "Dyspneu"}},
                     {"resourceType": "Observation", "status": "final", "subject": subject,
                      "code": {"text": "Saturatie"}, "valueString": "89%"},
                     {"resourceType": "QuestionnaireResponse", "status": "completed", "subject": subject,
                      "item": [{"linkId": "1", "text": "Benauwd?", "answer": [{"valueBoolean": True}]}]},
                     {"resourceType": "AllergyIntolerance", "patient": subject, "code": {"text": "Penicilline"}}):
        bundle["entry"].append({"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": resource,
                                "request": {"method": "POST", "url": resource["resourceType"]}})
    return bundle


async def refer(sessions: async_sessionmaker[AsyncSession], bsn: str, caller: Caller = DELINDE) -> Referral:
    bundle = with_supporting_resources(referral_bundle(bsn=bsn))
    async with sessions() as session, session.begin():
        result = await service.accept_referral(session, bundle=bundle, caller=caller, traceparent=None,
                                               pseudonym_key=KEY)
        request = (await session.execute(select(AcuteRequest).where(
            AcuteRequest.pseudonym == result.pseudonym).order_by(AcuteRequest.received_at.desc()))).scalars().first()
    assert request is not None
    stored = {e["response"]["location"].split("/")[0]: e["response"]["location"].split("/")[1]
              for e in result.response["entry"]}
    return Referral(request_id=request.id, resources=stored)


async def close(sessions: async_sessionmaker[AsyncSession], request_id: str) -> None:
    async with sessions() as session, session.begin():
        await session.execute(update(AcuteRequest).where(AcuteRequest.id == request_id).values(status="closed"))


def task_changed(task_id: str, request_id: str, *, version: int, owner: str, status: str, at: datetime) -> Event:
    system, _, value = owner.partition("|")
    task = {"resourceType": "Task", "id": task_id, "status": status, "intent": "order",
            "meta": {"versionId": str(version), "lastUpdated": at.isoformat()},
            "basedOn": [{"identifier": {"system": ACUTE_REQUEST_SYSTEM, "value": request_id}}],
            "owner": {"identifier": {"system": system, "value": value}}}
    return Event.of(topic=TASK_CHANGED, key="p-test", source="/test", subject=f"Task/{task_id}", payload=task)


async def deliver(sessions: async_sessionmaker[AsyncSession], *events: Event) -> None:
    for event in events:
        async with sessions() as session, session.begin():
            await access.on_task_changed(session, event)


async def read(sessions: async_sessionmaker[AsyncSession], caller: Caller, resource_type: str, resource_id: str,
               window: timedelta = WEEK) -> str | None:
    """The grant a read was allowed on ("" for the submitter or the front door); None when refused with 404."""
    async with sessions() as session:
        try:
            found = await service.read_resource(session, resource_type=resource_type, resource_id=resource_id,
                                                caller=caller, treatment_window=window)
        except FhirError as refused:
            assert refused.status_code == 404
            # The same answer as for an id nobody has (an id's nine-digit runs are masked like a BSN).
            unknown = Issue("error", "not-found", f"{resource_type}/{resource_id} is not known")
            assert refused.issues == [unknown]
            return None
    assert found.resource["id"] == resource_id
    return found.grant or ""


async def grants(sessions: async_sessionmaker[AsyncSession],
                 task_id: str) -> list[tuple[str, datetime | None, datetime | None]]:
    """(organisation, since, ended) of a Task's grants, in UTC."""
    def utc(moment: datetime | None) -> datetime | None:
        return None if moment is None else (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)

    async with sessions() as session:
        rows = (await session.execute(select(TreatmentGrant).where(TreatmentGrant.task_id == task_id)
                                      .order_by(TreatmentGrant.since, TreatmentGrant.pk))).scalars()
        return [(r.org, utc(r.since), utc(r.ended_at)) for r in rows]


PATIENT_DATA = ("Patient", "ServiceRequest", "Coverage", "Condition", "Observation", "QuestionnaireResponse")


async def test_the_task_owner_reads_its_requests_data_and_nothing_else_of_the_patient(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    first = await refer(sessions, "999990007")
    await close(sessions, first.request_id)
    second = await refer(sessions, "999990007")  # the same patient, a new acute request
    assert second.request_id != first.request_id and second.resources["Patient"] == first.resources["Patient"]
    now = datetime.now(UTC)
    await deliver(sessions, task_changed("t1", first.request_id, version=1, owner=WIJK.org, status="requested",
                                         at=now - timedelta(minutes=5)))

    for kind in PATIENT_DATA:
        assert await read(sessions, WIJK, kind, first.resources[kind]) == "Task/t1", kind
        assert await read(sessions, ZUIDRAND, kind, first.resources[kind]) is None, kind
        assert await read(sessions, DELINDE, kind, first.resources[kind]) == "", kind
        assert await read(sessions, OPS, kind, first.resources[kind]) == "", kind
    for kind in ("ServiceRequest", "Coverage", "Condition", "Observation", "QuestionnaireResponse"):
        assert await read(sessions, WIJK, kind, second.resources[kind]) is None, kind  # another request's
    # Directory data and types beyond the treatment types stay the submitter's, even when they came along.
    assert await read(sessions, WIJK, "Organization", first.resources["Organization"]) is None
    assert await read(sessions, WIJK, "AllergyIntolerance", first.resources["AllergyIntolerance"]) is None
    assert await read(sessions, DELINDE, "AllergyIntolerance", first.resources["AllergyIntolerance"]) == ""

    async with sessions() as session:
        mine = await service.search_service_requests(
            session, caller=WIJK, request=by_patient(first.resources["Patient"]), treatment_window=WEEK)
        theirs = await service.search_service_requests(
            session, caller=ZUIDRAND, request=by_patient(first.resources["Patient"]), treatment_window=WEEK)
        submitter = await service.search_service_requests(
            session, caller=DELINDE, request=by_patient(first.resources["Patient"]), treatment_window=WEEK)
    assert [r["id"] for r in mine.resources] == [first.resources["ServiceRequest"]] and mine.total == 1
    assert mine.grants == ["Task/t1"]
    assert theirs.resources == [] and theirs.total == 0 and theirs.grants == []
    assert {r["id"] for r in submitter.resources} == {first.resources["ServiceRequest"],
                                                     second.resources["ServiceRequest"]}
    assert submitter.grants == []


async def test_linked_referrals_and_the_front_doors_own_service_request_are_the_requests_too(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    first = await refer(sessions, "999990019")
    linked = await refer(sessions, "999990019", caller=ZUIDRAND)  # while the first is open: linked to it
    assert linked.request_id == first.request_id
    phone_sr = uuid.uuid4().hex
    async with sessions() as session, session.begin():
        # A phone contact's request with a ServiceRequest the front door made for it (stored as any other).
        request, _ = await service.record_contact(session, contact=service.ContactInput(
            channel="phone", bsn="999990020", name="Mohamed El Amrani", birth_date="1968-06-21", uzovi="9002",
            complaint="Valpartij"), caller=OPS, pseudonym_key=KEY)
        session.add(StoredResource(resource_type="ServiceRequest", id=phone_sr, patient_id=request.patient_id,
                                   owner_org=FRONT_DOOR.token, status="active", content=dumps(
                                       {"resourceType": "ServiceRequest", "id": phone_sr, "status": "active",
                                        "intent": "order", "subject": {"reference": f"Patient/{request.patient_id}"},
                                        "meta": {"versionId": "1"}})))
        request.service_request_id = phone_sr
        session.add(request)
        phone_request, phone_patient = request.id, request.patient_id
    now = datetime.now(UTC)
    await deliver(sessions,
                  task_changed("t-linked", first.request_id, version=1, owner=WIJK.org, status="requested", at=now),
                  task_changed("t-phone", phone_request, version=1, owner=WIJK.org, status="requested", at=now))

    for kind in ("ServiceRequest", "Coverage", "Condition"):
        assert await read(sessions, WIJK, kind, linked.resources[kind]) == "Task/t-linked", kind
    assert await read(sessions, WIJK, "ServiceRequest", phone_sr) == "Task/t-phone"
    assert await read(sessions, WIJK, "Patient", phone_patient) == "Task/t-phone"
    assert await read(sessions, ZUIDRAND, "ServiceRequest", phone_sr) is None
    assert await read(sessions, ZUIDRAND, "Coverage", linked.resources["Coverage"]) == ""  # its own submission


async def test_grants_follow_reassignment_and_the_end_of_the_task_whatever_order_and_repeats(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    referral = await refer(sessions, "999990032")
    sr = referral.resources["ServiceRequest"]
    t0 = datetime.now(UTC) - timedelta(hours=3)
    v1 = task_changed("t2", referral.request_id, version=1, owner=WIJK.org, status="requested", at=t0)
    v2 = task_changed("t2", referral.request_id, version=2, owner=WIJK.org, status="rejected",
                      at=t0 + timedelta(minutes=10))
    v3 = task_changed("t2", referral.request_id, version=3, owner=ZUIDRAND.org, status="requested",
                      at=t0 + timedelta(minutes=20))
    v4 = task_changed("t2", referral.request_id, version=4, owner=ZUIDRAND.org, status="accepted",
                      at=t0 + timedelta(minutes=30))
    v5 = task_changed("t2", referral.request_id, version=5, owner=ZUIDRAND.org, status="in-progress",
                      at=t0 + timedelta(minutes=40))
    v6 = task_changed("t2", referral.request_id, version=6, owner=ZUIDRAND.org, status="completed",
                      at=t0 + timedelta(minutes=50))

    await deliver(sessions, v1)
    # The same version again, as a redelivery under another event id would bring it: nothing changes.
    await deliver(sessions, v1, task_changed("t2", referral.request_id, version=1, owner=WIJK.org,
                                             status="requested", at=t0))
    async with sessions() as session:
        assert len((await session.execute(select(TaskOwnership).where(TaskOwnership.task_id == "t2"))).all()) == 1
    assert await grants(sessions, "t2") == [(WIJK.org, t0, None)]

    # The reassignment arrives before the rejection it followed: Wijkverpleging Oost's grant ends there for now...
    await deliver(sessions, v3)
    assert await grants(sessions, "t2") == [(WIJK.org, t0, v3_at := t0 + timedelta(minutes=20)),
                                            (ZUIDRAND.org, v3_at, None)]
    # ...and at the rejection once that arrives late; the late version does not undo the reassignment.
    await deliver(sessions, v2)
    assert await grants(sessions, "t2") == [(WIJK.org, t0, t0 + timedelta(minutes=10)), (ZUIDRAND.org, v3_at, None)]

    # Ended 2 h 50 min ago: read within a three-hour window, not within a two-hour one.
    assert await read(sessions, WIJK, "ServiceRequest", sr, window=timedelta(hours=3)) == "Task/t2"
    assert await read(sessions, WIJK, "ServiceRequest", sr, window=timedelta(hours=2)) is None
    # A running grant needs no window.
    assert await read(sessions, ZUIDRAND, "Patient", referral.resources["Patient"], window=timedelta(0)) == "Task/t2"

    await deliver(sessions, v6, v4, v5, v4)
    assert await grants(sessions, "t2") == [(WIJK.org, t0, t0 + timedelta(minutes=10)),
                                            (ZUIDRAND.org, v3_at, t0 + timedelta(minutes=50))]
    assert await read(sessions, ZUIDRAND, "Patient", referral.resources["Patient"], window=timedelta(0)) is None
    assert await read(sessions, ZUIDRAND, "Patient", referral.resources["Patient"]) == "Task/t2"


async def test_a_value_that_is_no_task_is_poison_and_leaves_nothing(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    event = Event.of(topic=TASK_CHANGED, key="p-test", source="/test", subject="Task/x",
                     payload={"resourceType": "Task", "id": "x", "status": "requested"})
    with pytest.raises(PoisonMessage, match="acute request"):
        await deliver(sessions, event)
    async with sessions() as session:
        assert (await session.execute(select(TaskOwnership))).first() is None


async def test_a_read_on_a_grant_is_audited_with_purpose_treat_and_the_task(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        await audit.record(session, service="triage", caller=WIJK, subtype="read", entity="Patient/1",
                           patient="p-" + "b" * 32, granted_by=["Task/t9"])
    async with sessions() as session:
        event, = await audit.search(session, patient="p-" + "b" * 32, count=10)
    assert event["agent"][0]["purposeOfUse"][0]["coding"][0]["code"] == "TREAT"
    task = next(e for e in event["entity"] if e["what"].get("reference") == "Task/t9")
    assert task["role"]["code"] == "13" and "treatment relationship" in task["description"]


async def test_referrals_stored_before_the_migration_are_linked_to_what_came_with_them(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        assert (await migrations.migrate(engine, "triage", revision=migrations.BASELINE)).after == "0001"
        dumped = region.region()["databases"]["triage"]
        await region.load(engine, dumped)
        await migrations.migrate(engine, "triage")
        async with session_factory(engine)() as session:
            linked = {(e.resource_type, e.resource_id, e.service_request_id) for e in (await session.execute(
                select(access.ReferralEntry))).scalars()}
    finally:
        await engine.dispose()
    rows = [dict(zip(dumped["fhir_resource"]["columns"], row, strict=True)) for row in dumped["fhir_resource"]["rows"]]
    sr = next(r["id"] for r in rows if r["resource_type"] == "ServiceRequest")
    assert linked == {(r["resource_type"], r["id"], sr) for r in rows if r["resource_type"] in ("Patient", "Coverage")}
