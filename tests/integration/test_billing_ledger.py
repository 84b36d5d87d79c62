"""Shadow billing through its event handlers on a real database: order and redelivery do not matter, locked
lines only change by credit + rebill, and feed revisions add up."""

from __future__ import annotations

import asyncio
import random
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from services.billing_shadow import service
from services.billing_shadow.models import TABLES, PrestationLine
from services.coordination import events as coordination_events
from services.triage import events as triage_events
from services.triage.models import AcuteRequest
from shared.bus.envelope import Event
from shared.db import create_schema, make_engine, session_factory
from shared.runtime import BUS_TABLES
from shared.settings import CODESYSTEM_BASE

pytestmark = pytest.mark.integration
START = datetime(2026, 11, 10, 20, 0, tzinfo=UTC)
ORGS = {"VR": "http://fhir.nl/fhir/NamingSystem/ura|90000001", "HH": "http://fhir.nl/fhir/NamingSystem/ura|90000020",
        "AMB": "http://fhir.nl/fhir/NamingSystem/ura|90000001"}
CODE = {"VR": "ADV", "HH": "VIS", "AMB": "CON"}
RANK = {"ADV": 1, "VIS": 2, "CON": 3}


def request_events(n: int, *, disposition: str, uzovi: str | None, contacts: list[str]) -> list[Event]:
    request_id, pseudonym = f"req-{n}", f"p-{n:032d}"
    routed = AcuteRequest(id=request_id, pseudonym=pseudonym, channel="referral", submitted_by="x", received_at=START,
                          urgency="U3", disposition=disposition, assigned_org=ORGS["HH"], uzovi=uzovi,
                          due_at=START + timedelta(hours=3), triaged_at=START + timedelta(minutes=5))
    found = [triage_events.triage_completed(routed, note="", codesystem_base=CODESYSTEM_BASE, traceparent=None)]
    encounter_ids = []
    for i, act_class in enumerate(contacts):
        encounter_id = f"enc-{n}-{i}"
        encounter_ids.append(encounter_id)
        start = START + timedelta(minutes=30 + i)
        found.append(coordination_events.contact_delivered({
            "resourceType": "Encounter", "id": encounter_id, "status": "finished", "class": {"code": act_class},
            "subject": {"identifier": {"value": pseudonym}},
            "basedOn": [{"identifier": {"system": coordination_events.ACUTE_REQUEST_SYSTEM, "value": request_id}}],
            "serviceProvider": {"identifier": dict(zip(("system", "value"), ORGS[act_class].split("|"), strict=True))},
            "period": {"start": start.isoformat()}}, pseudonym=pseudonym, traceparent=None))
    found.append(coordination_events.acute_request_closed(request_id=request_id, pseudonym=pseudonym,
                                                          closed_at=START + timedelta(hours=1),
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
        await create_schema(self.engine, [*BUS_TABLES, *TABLES])
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


def expected_code(disposition: str, contacts: list[str]) -> str | None:
    if disposition == "hospital-referral":
        return None
    return max((CODE[c] for c in contacts), key=RANK.__getitem__, default="ADV")


request_plans = st.lists(st.tuples(st.sampled_from(["home-visit", "remote-advice", "onsite-consult",
                                                    "hospital-referral"]),
                                   st.sampled_from(["9001", "9002", None]),
                                   st.lists(st.sampled_from(["VR", "HH", "AMB"]), max_size=3)),
                         min_size=1, max_size=3)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans=request_plans, seed=st.integers(0, 10_000), duplicates=st.integers(0, 4))
def test_any_order_with_duplicates_gives_one_line_per_request_equal_to_the_rule(plans, seed, duplicates) -> None:
    async def run() -> None:
        with tempfile.TemporaryDirectory() as folder:
            books = await Books(f"sqlite+aiosqlite:///{Path(folder) / 'billing.db'}").open()
            try:
                stream = [e for n, (d, u, c) in enumerate(plans) for e in request_events(n, disposition=d, uzovi=u,
                                                                                       contacts=c)]
                shuffler = random.Random(seed)
                stream += [shuffler.choice(stream) for _ in range(duplicates)]
                shuffler.shuffle(stream)
                await books.apply(stream)
                for n, (disposition, uzovi, contacts) in enumerate(plans):
                    lines = await books.lines(f"req-{n}")
                    assert len(lines) == 1 and lines[0].kind == "original"
                    line = lines[0]
                    assert line.code == expected_code(disposition, contacts)
                    if disposition == "hospital-referral":
                        assert line.exclusion_reason == "delimited-dbc" and line.unit_price_cents is None
                    elif uzovi is None:
                        assert line.exclusion_reason == "no-dutch-insurer" and line.unit_price_cents is None
                    else:
                        assert line.exclusion_reason is None and line.unit_price_cents is not None
            finally:
                await books.engine.dispose()

    asyncio.run(run())


async def test_a_contact_arriving_after_the_line_locked_credits_and_rebills(database_url: str) -> None:
    books = await Books(database_url).open()
    try:
        triaged, contact, closed = request_events(1, disposition="home-visit", uzovi="9001", contacts=["HH"])
        closed_without_contact = coordination_events.acute_request_closed(
            request_id="req-1", pseudonym="p-" + "0" * 31 + "1", closed_at=START + timedelta(hours=1),
            encounter_ids=[], traceparent=None)
        await books.apply([triaged, closed_without_contact], grace=timedelta(0))
        await books.publish()
        before = await books.feed("9001")
        assert before["lines"] == [{"code": "ADV", "quantity": 1, "unit_price_cents": 3500, "amount_cents": 3500,
                                    "shadow_amount_cents": 650}]
        await books.apply([contact], grace=timedelta(0))
        lines = await books.lines("req-1")
        assert [(ln.kind, ln.quantity, ln.code) for ln in lines] == [("original", 1, "ADV"), ("credit", -1, "ADV"),
                                                                     ("rebill", 1, "VIS")]
        assert lines[1].corrects == lines[0].id and lines[2].reason == "facts changed after the line locked"
        await books.publish()
        after = await books.feed("9001")
        assert after["revision"] == before["revision"] + 1
        assert after["lines"] == [{"code": "VIS", "quantity": 1, "unit_price_cents": 11000, "amount_cents": 11000,
                                   "shadow_amount_cents": 8200}]
    finally:
        await books.engine.dispose()


async def test_correction_after_lock_makes_revisions_equal_old_minus_credit_plus_rebill(database_url: str) -> None:
    books = await Books(database_url).open()
    try:
        await books.apply(request_events(1, disposition="onsite-consult", uzovi="9001", contacts=["AMB"])
                          + request_events(2, disposition="home-visit", uzovi="9001", contacts=["HH"]),
                          grace=timedelta(0))
        await books.publish()
        old_9001, old_9002 = await books.feed("9001"), await books.feed("9002")
        standing = await books.standing("req-1")
        assert standing is not None and standing.code == "CON"
        async with books.sessions() as session, session.begin():
            with pytest.raises(ValueError, match="reason"):
                await service.correct(session, line_id=standing.id, reason=" ", uzovi="9002", withdraw=False,
                                      actor="declaratie", grace=timedelta(0))
        async with books.sessions() as session, session.begin():
            rebill = await service.correct(session, line_id=standing.id, reason="patient is insured with Zuid",
                                           uzovi="9002", withdraw=False, actor="declaratie", grace=timedelta(0))
        assert rebill.kind == "rebill" and rebill.uzovi == "9002" and rebill.created_by == "declaratie"
        await books.publish()
        new_9001, new_9002 = await books.feed("9001"), await books.feed("9002")
        assert new_9001["revision"] == old_9001["revision"] + 1 and new_9002["revision"] == old_9002["revision"] + 1
        # The service day is 10 November: Zuid's CON price before its change on 16 November is 7800 cents.
        assert new_9001["totals"]["amount_cents"] == old_9001["totals"]["amount_cents"] - 7500
        assert new_9002["totals"]["amount_cents"] == old_9002["totals"]["amount_cents"] + 7800
        assert [(ln.kind, ln.uzovi) for ln in await books.lines("req-1")] == [
            ("original", "9001"), ("credit", "9001"), ("rebill", "9002")]
        async with books.sessions() as session, session.begin():
            with pytest.raises(ValueError, match="standing line"):
                await service.correct(session, line_id=standing.id, reason="again", uzovi="9002", withdraw=False,
                                      actor="declaratie", grace=timedelta(0))
    finally:
        await books.engine.dispose()
