"""Coordination keeps every linked call's words once, whatever the order and however often the front door's
events arrive, and reassigns a Task only where the directory allows: an organisation that does not provide the
follow-up action is refused (422), one closed at the due time only with an explicit reason, which is recorded."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.coordination import service
from services.coordination.models import LinkedCall, TaskRecord, TaskTransition, TimelineEntry
from services.triage import events as triage_events
from services.triage.models import AcuteRequest
from shared.bus.consumer import PoisonMessage
from shared.bus.envelope import Event
from shared.bus.topics import LINKED_CONTACT_RECORDED
from shared.fhir import FhirError
from shared.region import FRONT_DOOR
from shared.settings import CODESYSTEM_BASE

pytestmark = pytest.mark.integration
Reassign = Callable[..., Awaitable[dict]]  # the `reassign` fixture of conftest.py

PSEUDONYM = "p-" + "6" * 32
WIJK = "http://fhir.nl/fhir/NamingSystem/ura|90000020"
# Saturday 5 December 2026, 11:00 in Amsterdam: the GP practices (working days 08:00-17:00) are closed.
SATURDAY = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


def request(request_id: str = "req-6", *, due: datetime = SATURDAY) -> AcuteRequest:
    return AcuteRequest(id=request_id, pseudonym=PSEUDONYM, patient_id="pat-6", channel="phone",
                        submitted_by=FRONT_DOOR.token, received_at=due - timedelta(hours=3), urgency="U3",
                        disposition="home-visit", assigned_org=WIJK, due_at=due,
                        triaged_at=due - timedelta(hours=2, minutes=50))


def call(number: int, *, minutes: int, complaint: str, caller: str = "relative") -> Event:
    return triage_events.linked_contact_recorded(
        request(), channel="phone", received_at=SATURDAY - timedelta(hours=3) + timedelta(minutes=minutes),
        linked_so_far=number, complaint=complaint, caller=caller, callback_phone=f"06-1111000{number}",
        traceparent=None)


async def deliver(sessions: async_sessionmaker[AsyncSession], *events: Event) -> None:
    for event in events:
        async with sessions() as session, session.begin():
            if event.topic == LINKED_CONTACT_RECORDED:
                await service.on_linked_contact_recorded(session, event)
            else:
                await service.on_triage_completed(session, event, codesystem_base=CODESYSTEM_BASE,
                                                  front_door_fhir_base="https://voordeur.example/fhir")


async def test_each_call_is_kept_once_in_the_order_it_was_made_whatever_order_it_arrives_in(
        coordination_sessions: async_sessionmaker[AsyncSession]) -> None:
    first = call(1, minutes=10, complaint="Dochter belt: vader valt steeds")
    second = call(2, minutes=40, complaint="Buurvrouw belt: vader is verward", caller="carer")
    triaged = triage_events.triage_completed(request(), note="", codesystem_base=CODESYSTEM_BASE, traceparent=None,
                                             complaint="Valt steeds")
    # The second call before the first and before the triage; then each again, as a redelivery or a replay brings
    # it (the replay under a new event id).
    replayed = Event.of(topic=first.topic, key=first.key, source=first.source, subject=first.subject,
                        payload=first.json())
    assert replayed.id != first.id
    await deliver(coordination_sessions, second, first, triaged, second, replayed, first)
    async with coordination_sessions() as session:
        calls = list((await session.execute(select(LinkedCall).order_by(LinkedCall.received_at))).scalars())
        entries = list((await session.execute(select(TimelineEntry).where(
            TimelineEntry.pseudonym == PSEUDONYM).order_by(TimelineEntry.at))).scalars())
    assert [(c.number, c.caller, c.callback_phone, c.complaint) for c in calls] == [
        (1, "relative", "06-11110001", "Dochter belt: vader valt steeds"),
        (2, "carer", "06-11110002", "Buurvrouw belt: vader is verward")]
    assert all(c.acute_request_id == "req-6" and c.channel == "phone" for c in calls)
    told = [e for e in entries if e.kind == "call"]
    assert [e.reference for e in told] == ["Communication/req-6-1", "Communication/req-6-2"]
    assert [json.loads(e.facts or "{}")["complaint"] for e in told] == [c.complaint for c in calls]
    assert told[0].text == ("gekoppeld contact (telefoon, naaste, terugbellen 06-11110001): "
                            "Dochter belt: vader valt steeds")
    assert [e.kind for e in entries].count("triage") == 1


async def test_a_value_that_is_not_a_linked_call_is_poison_and_names_nobody(
        coordination_sessions: async_sessionmaker[AsyncSession]) -> None:
    value = {**call(1, minutes=0, complaint="Geheime klacht").json(), "basedOn": []}
    event = Event.of(topic=LINKED_CONTACT_RECORDED, key=PSEUDONYM, source="/test", subject="Communication/x",
                     payload=value)
    async with coordination_sessions() as session:
        with pytest.raises(PoisonMessage) as refused:
            await service.on_linked_contact_recorded(session, event)
    assert "Geheime" not in str(refused.value) and "06-1111" not in str(refused.value)


async def test_reassignment_to_a_practice_closed_at_the_due_time_needs_a_reason_that_is_recorded(
        coordination_sessions: async_sessionmaker[AsyncSession], reassign: Reassign) -> None:
    await deliver(coordination_sessions, triage_events.triage_completed(
        request(), note="", codesystem_base=CODESYSTEM_BASE, traceparent=None, complaint="Valt steeds"))
    async with coordination_sessions() as session:
        task = (await session.execute(select(TaskRecord))).scalars().one()
    linde = "http://fhir.nl/fhir/NamingSystem/agb-z|01000001"

    with pytest.raises(FhirError) as refused:
        await reassign(task.id, "http://fhir.nl/fhir/NamingSystem/ura|90000030")
    assert refused.value.status_code == 422
    assert "Regionaal Transferpunt does not provide Visite aan huis (home-visit)" in refused.value.issues[0].diagnostics

    with pytest.raises(FhirError) as closed:
        await reassign(task.id, linde)
    assert closed.value.status_code == 422
    assert closed.value.issues[0].diagnostics.startswith(
        "Huisartsenpraktijk De Linde is closed at the due time 05-12 11:00 (hours 08:00-17:00, working days only)")
    assert closed.value.issues[0].expression == ("Task.statusReason",)
    async with coordination_sessions() as session:
        unchanged = await session.get(TaskRecord, task.id)
        assert unchanged is not None and (unchanged.owner, unchanged.version) == (WIJK, 1)

    moved = await reassign(task.id, linde, reason="huisarts kent patiënt, belt zaterdag zelf")
    assert moved["owner"]["identifier"]["value"] == "01000001" and moved["status"] == "requested"
    assert moved["statusReason"] == {"text": "huisarts kent patiënt, belt zaterdag zelf"}
    async with coordination_sessions() as session:
        transition = (await session.execute(select(TaskTransition))).scalars().one()
        entry = (await session.execute(select(TimelineEntry).where(
            TimelineEntry.reference == f"Task/{task.id}", TimelineEntry.kind == "task"))).scalars().one()
    assert transition.reason == (f"reassigned from {WIJK} to {linde} (closed at the due time): "
                                 "huisarts kent patiënt, belt zaterdag zelf")
    assert json.loads(entry.facts or "{}") == {"event": "reassigned", "from": WIJK, "to": linde,
                                               "reason": "huisarts kent patiënt, belt zaterdag zelf",
                                               "closed_at_due": True}

    # Open at the due time: no reason needed.
    back = await reassign(task.id, WIJK)
    assert back["owner"]["identifier"]["value"] == "90000020"
