"""contact-linked: a later call linked to an open request, as billing's evaluation receives it — valid FHIR, the
request and the running count, and nothing that names the patient or the caller."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from services.triage import events
from services.triage.models import AcuteRequest
from shared.bus.topics import CONTACT_LINKED
from shared.fhir import validate_resource


def test_a_linked_call_names_the_request_and_its_count_and_no_patient_data() -> None:
    request = AcuteRequest(id="req-1", pseudonym="p-abc", channel="referral", submitted_by="x",
                           complaint="Valt steeds, dochter belt", received_at=datetime(2026, 11, 30, 6, 0, tzinfo=UTC))
    called = datetime(2026, 11, 30, 7, 21, tzinfo=ZoneInfo("Europe/Amsterdam"))
    event = events.contact_linked(request, channel="phone", received_at=called, linked_so_far=2, traceparent=None)

    value = event.json()
    assert event.topic == CONTACT_LINKED and event.key == "p-abc"
    assert validate_resource(value) == []
    assert value["basedOn"] == [{"identifier": {"system": events.ACUTE_REQUEST_SYSTEM, "value": "req-1"}}]
    assert value["subject"]["identifier"]["value"] == "p-abc"
    assert value["sent"] == "2026-11-30T06:21:00+00:00" and value["medium"] == [{"text": "phone"}]
    assert value["extension"] == [{"url": events.LINKED_CONTACTS_EXTENSION, "valueInteger": 2}]
    assert "Valt steeds" not in event.data.decode()  # the complaint stays at the front door
