"""Shadow billing's books driven by the same events the other services publish (integration tests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from services.billing_shadow import service
from services.billing_shadow.models import PrestationLine
from services.coordination import events as coordination_events
from services.triage import events as triage_events
from services.triage.models import AcuteRequest
from shared import migrations
from shared.bus.envelope import Event
from shared.db import make_engine, session_factory
from shared.settings import CODESYSTEM_BASE

START = datetime(2026, 11, 10, 20, 0, tzinfo=UTC)
ORGS = {"VR": "http://fhir.nl/fhir/NamingSystem/ura|90000001", "HH": "http://fhir.nl/fhir/NamingSystem/ura|90000020",
        "AMB": "http://fhir.nl/fhir/NamingSystem/ura|90000001"}


def request_events(n: int, *, disposition: str, uzovi: str | None, contacts: list[str],
                   start: datetime = START, open_dbc: bool = False) -> list[Event]:
    """The events triage and coordination publish for one acute request, made by their own event builders:
    triaged at `start` + 5 min, contact i at `start` + 30 + i min, closed at `start` + 1 h."""
    request_id, pseudonym = f"req-{n}", f"p-{n:032d}"
    routed = AcuteRequest(id=request_id, pseudonym=pseudonym, channel="referral", submitted_by="x", received_at=start,
                          urgency="U3", disposition=disposition, assigned_org=ORGS["HH"], uzovi=uzovi,
                          due_at=start + timedelta(hours=3), triaged_at=start + timedelta(minutes=5),
                          open_dbc=open_dbc)
    found = [triage_events.triage_completed(routed, note="", codesystem_base=CODESYSTEM_BASE, traceparent=None)]
    encounter_ids = []
    for i, act_class in enumerate(contacts):
        encounter_id = f"enc-{n}-{i}"
        encounter_ids.append(encounter_id)
        system, value = ORGS[act_class].split("|")
        found.append(coordination_events.contact_delivered({
            "resourceType": "Encounter", "id": encounter_id, "status": "finished", "class": {"code": act_class},
            "subject": {"identifier": {"value": pseudonym}},
            "basedOn": [{"identifier": {"system": coordination_events.ACUTE_REQUEST_SYSTEM, "value": request_id}}],
            "serviceProvider": {"identifier": {"system": system, "value": value}},
            "period": {"start": (start + timedelta(minutes=30 + i)).isoformat()}}, pseudonym=pseudonym,
            traceparent=None))
    found.append(coordination_events.acute_request_closed(request_id=request_id, pseudonym=pseudonym,
                                                          closed_at=start + timedelta(hours=1),
                                                          encounter_ids=encounter_ids, traceparent=None))
    return found


HANDLERS = {"regiozorg.triage.triage-completed.v1": service.on_triage_completed,
            "regiozorg.coordination.contact-delivered.v1": service.on_contact_delivered,
            "regiozorg.coordination.acute-request-closed.v1": service.on_acute_request_closed}


class Books:
    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self.sessions = session_factory(self.engine)

    async def open(self) -> Books:
        await migrations.migrate(self.engine, "billing_shadow")
        async with self.sessions() as session, session.begin():
            await service.seed_tariffs(session)
        return self

    async def apply(self, events: list[Event], grace: timedelta = timedelta(hours=72)) -> None:
        for event in events:
            async with self.sessions() as session, session.begin():
                await HANDLERS[event.topic](session, event, grace=grace)

    async def lines(self, request_id: str) -> list[PrestationLine]:
        async with self.sessions() as session:
            return list((await session.execute(select(PrestationLine).where(
                PrestationLine.acute_request_id == request_id).order_by(PrestationLine.sequence))).scalars())

    async def standing(self, request_id: str) -> PrestationLine | None:
        async with self.sessions() as session:
            return await service.effective_line(session, request_id)

    async def publish(self) -> None:
        async with self.sessions() as session, session.begin():
            await service.publish_dirty_feeds(session)

    async def feed(self, uzovi: str, period: str = "2026-11") -> dict[str, Any]:
        async with self.sessions() as session:
            return await service.current_feed(session, uzovi=uzovi, period=period)


