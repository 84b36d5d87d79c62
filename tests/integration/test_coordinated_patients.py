"""Coordination keeps the newest version of each patient the front door sends, whatever order the events come in,
gives open Tasks the patient's current phone, and finds patients by name and birth date or by BSN."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from services.coordination import patients, service
from services.coordination.models import TaskRecord, TaskVersion
from services.triage import events as triage_events
from services.triage.models import AcuteRequest
from shared import migrations
from shared.bus.consumer import PoisonMessage
from shared.bus.envelope import Event
from shared.bus.outbox import OutboxRecord
from shared.bus.topics import PATIENT_CHANGED, TASK_CHANGED
from shared.db import make_engine, session_factory
from shared.identifiers import BSN_SYSTEM
from shared.settings import CODESYSTEM_BASE

pytestmark = pytest.mark.integration

PSEUDONYM = "p-" + "5" * 32
AT = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def patient_event(version: int, *, city: str, phone: str | None) -> Event:
    patient: dict[str, Any] = {
        "resourceType": "Patient", "id": "pat-5",
        "meta": {"versionId": str(version), "lastUpdated": (AT + timedelta(minutes=version)).isoformat()},
        "identifier": [{"system": BSN_SYSTEM, "value": "999990019"}],
        "name": [{"family": "Bakker", "given": ["Aaltje"]}], "birthDate": "1937-11-02",
        "address": [{"use": "home", "line": ["Molenweg 3"], "postalCode": "1234 AB", "city": city}]}
    if phone:
        patient["telecom"] = [{"system": "phone", "value": phone}]
    return triage_events.patient_changed(patient, pseudonym=PSEUDONYM, uzovi="9001", traceparent=None)


def triage_event() -> Event:
    request = AcuteRequest(id="req-5", pseudonym=PSEUDONYM, patient_id="pat-5", channel="referral",
                           submitted_by="http://fhir.nl/fhir/NamingSystem/agb-z|01000001", received_at=AT,
                           urgency="U3", disposition="home-visit", service_request_id="sr-5",
                           assigned_org="http://fhir.nl/fhir/NamingSystem/ura|90000020",
                           due_at=AT + timedelta(hours=3), triaged_at=AT + timedelta(minutes=2))
    return triage_events.triage_completed(request, note="Wondzorg", codesystem_base=CODESYSTEM_BASE,
                                          traceparent=None, complaint="Wond lekt")


async def test_newest_patient_version_wins_and_open_tasks_get_the_current_phone(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        await migrations.migrate(engine, "coordination")
        sessions = session_factory(engine)

        async def handle(event: Event) -> None:
            async with sessions() as session, session.begin():
                if event.topic == PATIENT_CHANGED:
                    await service.on_patient_changed(session, event, codesystem_base=CODESYSTEM_BASE)
                else:
                    await service.on_triage_completed(session, event, codesystem_base=CODESYSTEM_BASE,
                                                      front_door_fhir_base="https://voordeur.example/fhir")

        # The Task before the patient (no order across topics): made without a phone, given one after.
        await handle(triage_event())
        await handle(patient_event(2, city="West", phone="0611111111"))
        await handle(patient_event(1, city="Oost", phone=None))  # older, arriving late: ignored
        await handle(patient_event(2, city="West", phone="0611111111"))  # the same version again: nothing
        async with sessions() as session:
            row = await patients.by_pseudonym(session, PSEUDONYM)
            assert row is not None and row.version == 2
            person = patients.person(row)
            assert (person.name, person.address, person.phone) == (
                "Aaltje Bakker", "Molenweg 3, 1234 AB West", "0611111111")
            task = (await session.execute(select(TaskRecord))).scalars().one()
            versions = (await session.execute(select(TaskVersion).where(TaskVersion.task_id == task.id))).all()
            changes = (await session.execute(select(OutboxRecord).where(OutboxRecord.topic == TASK_CHANGED))).all()
        content = json.loads(task.content)
        phones = [i["valueContactPoint"]["value"] for i in content["input"]
                  if i["type"]["coding"][0]["code"] == "contact-phone"]
        assert phones == ["0611111111"] and task.version == 2 == len(versions) == len(changes)
        assert content["for"]["reference"] == "https://voordeur.example/fhir/Patient/pat-5"

        await handle(patient_event(3, city="West", phone="0622222222"))
        async with sessions() as session:
            task = (await session.execute(select(TaskRecord))).scalars().one()
            assert task.version == 3 and "0622222222" in task.content and "0611111111" not in task.content
            found = await patients.search(session, name="bakker", birth_date="1937-11-02")
            assert [r.pseudonym for r in found] == [PSEUDONYM]
            assert [r.pseudonym for r in await patients.search(session, bsn="999990019")] == [PSEUDONYM]
            assert await patients.search(session, name="bakker", birth_date="1937-11-03") == []
            with pytest.raises(ValueError, match="birthdate"):
                await patients.search(session, name="bakker")
    finally:
        await engine.dispose()


@pytest.mark.parametrize("value", [{"resourceType": "Basic", "id": "x"},
                                   {"resourceType": "Patient", "id": "x", "meta": {"lastUpdated": "2026-11-30"}},
                                   {"resourceType": "Patient", "id": "x", "identifier": [
                                       {"system": "https://regiozorg.example/fhir/NamingSystem/patient-pseudonym",
                                        "value": PSEUDONYM}]}])
async def test_a_value_that_is_not_a_usable_patient_is_poison_and_names_nobody(database_url: str,
                                                                              value: dict[str, Any]) -> None:
    engine = make_engine(database_url)
    try:
        await migrations.migrate(engine, "coordination")
        event = Event.of(topic=PATIENT_CHANGED, key=PSEUDONYM, source="/test", subject="Patient/x",
                         payload={**value, "name": [{"text": "Geheime Naam"}]})
        async with session_factory(engine)() as session:
            with pytest.raises(PoisonMessage) as refused:
                await service.on_patient_changed(session, event, codesystem_base=CODESYSTEM_BASE)
        assert "Geheime" not in str(refused.value)
    finally:
        await engine.dispose()
