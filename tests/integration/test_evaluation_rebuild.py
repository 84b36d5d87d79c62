"""The evaluation read model fed by the events triage and coordination publish (their own event builders), and
rebuilt by replaying the topics into an empty database: the same figures, on SQLite and PostgreSQL.

Twelve requests in November 2026, received at 09:00 + i hours (Amsterdam), triaged 10 min later:
i = 0..3 referral, 4..7 phone, 8..11 walk-in; urgency U(i % 6); request 0 re-triaged (U0 → U2, home-visit);
request 1 carries 2 linked contacts at its triage, request 2 gets 1 linked after its triage (contact-linked, 40 min
after receipt); request 11 is a hospital referral; requests 0..9 have one delivered contact
(home visit, HH) 30 min after receipt; patient of request 5 returns (request 12, received 13 h after request 5,
which closed 1 h after receipt, so within 72 h). 9001 for even i, 9002 for odd i.
Hand-computed: 13 requests; linked 3 of 16 contacts; re-triaged 1; outside hospital 12/13; returns 1/13;
prestations VIS 10 (requests 0..9), ADV 2 (10 and 12, triage only), request 11 delimited.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from services.billing_shadow import evaluation
from services.billing_shadow.domain.evaluation import Experiment, suppress
from services.coordination import events as coordination_events
from services.triage import events as triage_events
from services.triage.models import AcuteRequest
from shared.bus.envelope import Event
from shared.settings import CODESYSTEM_BASE
from tests.billing_books import HANDLERS, ORGS, Books

pytestmark = pytest.mark.integration
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
EXPERIMENT = Experiment(start=datetime(2026, 1, 1).date(), insurers=("9001", "9002"))
CHANNELS = ["referral"] * 4 + ["phone"] * 4 + ["walk-in"] * 4


def _request(i: int, *, pseudonym: str, received: datetime, urgency: str, disposition: str, contact: bool,
             retriage_to: str | None = None, linked: int = 0) -> list[Event]:
    request_id = f"eval-{i}"
    triaged = AcuteRequest(id=request_id, pseudonym=pseudonym, channel=CHANNELS[i % 12], submitted_by="x",
                           received_at=received, urgency=urgency, disposition=disposition, assigned_org=ORGS["HH"],
                           uzovi="9001" if i % 2 == 0 else "9002", due_at=received + timedelta(hours=3),
                           triaged_at=received + timedelta(minutes=10))
    found = [triage_events.triage_completed(triaged, note="", codesystem_base=CODESYSTEM_BASE, traceparent=None,
                                            linked_contacts=linked)]
    if retriage_to:
        again = triaged.model_copy(update={"urgency": retriage_to, "triaged_at": received + timedelta(minutes=20)})
        found.append(triage_events.triage_completed(again, note="", codesystem_base=CODESYSTEM_BASE,
                                                    traceparent=None, retriage_reason="worse"))
    encounters = []
    if contact:
        encounters.append(f"enc-eval-{i}")
        system, value = ORGS["HH"].split("|")
        found.append(coordination_events.contact_delivered({
            "resourceType": "Encounter", "id": encounters[0], "status": "finished", "class": {"code": "HH"},
            "subject": {"identifier": {"value": pseudonym}},
            "basedOn": [{"identifier": {"system": coordination_events.ACUTE_REQUEST_SYSTEM, "value": request_id}}],
            "serviceProvider": {"identifier": {"system": system, "value": value}},
            "period": {"start": (received + timedelta(minutes=30)).isoformat()}}, pseudonym=pseudonym,
            traceparent=None))
    found.append(coordination_events.acute_request_closed(request_id=request_id, pseudonym=pseudonym,
                                                          closed_at=received + timedelta(hours=1),
                                                          encounter_ids=encounters, traceparent=None))
    return found


def stream() -> list[Event]:
    events = []
    for i in range(12):
        received = datetime(2026, 11, 10, 9 + i, 0, tzinfo=AMSTERDAM)
        events += _request(i, pseudonym=f"p-eval-{i}", received=received, urgency=f"U{i % 6}",
                           disposition="hospital-referral" if i == 11 else "home-visit", contact=i < 10,
                           retriage_to="U2" if i == 0 else None, linked=2 if i == 1 else 0)
    called_again = AcuteRequest(id="eval-2", pseudonym="p-eval-2", channel="referral", submitted_by="x",
                                received_at=datetime(2026, 11, 10, 11, 0, tzinfo=AMSTERDAM))
    events.append(triage_events.contact_linked(called_again, channel="phone", linked_so_far=1, traceparent=None,
                                               received_at=datetime(2026, 11, 10, 11, 40, tzinfo=AMSTERDAM)))
    events += _request(12, pseudonym="p-eval-5", received=datetime(2026, 11, 11, 3, 0, tzinfo=AMSTERDAM),
                       urgency="U3", disposition="remote-advice", contact=False)
    return events


async def _apply(books: Books, events: list[Event]) -> None:
    for event in events:
        async with books.sessions() as session, session.begin():
            if event.topic in HANDLERS:  # contact-linked feeds the evaluation only
                await HANDLERS[event.topic](session, event, grace=timedelta(hours=72))
            await evaluation.on_event(session, event)


async def _document(books: Books, uzovi: str | None = None) -> dict:
    async with books.sessions() as session:
        return await evaluation.document(session, first="2026-10", last="2026-12", experiment=EXPERIMENT,
                                         uzovi=uzovi)


@pytest.fixture
def rebuilt_url(database_url: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A second, empty database on the same backend."""
    if database_url.startswith("sqlite"):
        return f"sqlite+aiosqlite:///{tmp_path / 'rebuilt.db'}"
    return request.getfixturevalue("postgres").new("rebuilt")


async def test_replaying_the_topics_into_an_empty_read_model_gives_the_same_figures(database_url: str,
                                                                                    rebuilt_url: str) -> None:
    live, rebuilt = await Books(database_url).open(), await Books(rebuilt_url).open()
    try:
        events = stream()
        await _apply(live, events)
        await _apply(live, random.Random(7).sample(events, len(events)))  # redelivered, in another order
        await _apply(rebuilt, random.Random(11).sample(events, len(events)))
        first, second = await _document(live), await _document(rebuilt)
        noord, zuid = await _document(live, "9001"), await _document(live, "9002")
    finally:
        await live.engine.dispose()
        await rebuilt.engine.dispose()

    assert first == second
    october, november, december = first["months"]
    assert october["requests"] == december["requests"] == 0
    assert november["requests"] == 13
    assert november["by_channel"] == {"referral": 5, "phone": 4, "walk-in": 4}
    assert november["by_urgency"] == {"U0": 1, "U1": 2, "U2": 3, "U3": 3, "U4": 2, "U5": 2}
    assert november["linked_contacts"] == 3
    assert november["ratios"]["linked_contact_share"] == {"numerator": 3, "denominator": 16}
    assert november["ratios"]["retriage_share"] == {"numerator": 1, "denominator": 13}
    assert november["ratios"]["outside_hospital_share"] == {"numerator": 12, "denominator": 13}
    assert november["ratios"]["recontact_72h_share"] == {"numerator": 1, "denominator": 13}
    # The ledger side: 10 home visits (VIS), requests 10 and 12 triage only (ADV), request 11 delimited.
    assert november["prestations"] == {"ADV": 2, "VIS": 10, "CON": 0}
    assert november["exclusions"]["delimited-dbc"] == 1
    assert november["measures"]["minutes_to_triage"] == {"p50": 10.0, "p90": 10.0}
    assert november["measures"]["minutes_to_first_contact"] == {"p50": 30.0, "p90": 30.0}
    # Noord has the even requests (0..10 and 12): 7, with both ADV; Zuid the odd ones: 6, its one delimited
    # request a small cell.
    assert noord["months"][1]["requests"] == 7 and noord["months"][1]["prestations"]["ADV"] == 2
    assert suppress(noord)["months"][1]["prestations"]["ADV"] == "<5"
    assert zuid["months"][1]["requests"] == 6 and zuid["months"][1]["exclusions"]["delimited-dbc"] == 1
    assert suppress(zuid)["months"][1]["exclusions"]["delimited-dbc"] == "<5"
