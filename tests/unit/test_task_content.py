"""A Task says what to do and for whom (SPEC §7): built from the front door's own routing order, valid FHIR R4,
with absolute references on the front door's base, the complaint, the triage note and typed inputs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.coordination.domain import task_content
from services.triage import events as triage_events
from services.triage.models import AcuteRequest
from shared.fhir import validate_resource
from shared.identifiers import PSEUDONYM_SYSTEM
from shared.settings import CODESYSTEM_BASE

FRONT_DOOR = "https://voordeur.example/fhir"
NOW = datetime(2026, 11, 30, 20, 0, tzinfo=UTC)


def routing_order(*, channel: str = "referral", service_request_id: str | None = "sr-1",
                  note: str = "Visite binnen het uur", complaint: str = "Benauwd sinds vanochtend,\n  bekend met COPD",
                  submitted_by: str = "http://fhir.nl/fhir/NamingSystem/agb-z|01000001") -> dict[str, Any]:
    """The triage-completed value as the front door builds it (its own event builder)."""
    request = AcuteRequest(id="req-1", pseudonym="p-" + "1" * 32, patient_id="pat-1", channel=channel,
                           submitted_by=submitted_by, received_at=NOW - timedelta(minutes=20), urgency="U2",
                           disposition="home-visit", assigned_org="http://fhir.nl/fhir/NamingSystem/ura|90000020",
                           due_at=NOW + timedelta(minutes=40), triaged_at=NOW, uzovi="9001",
                           service_request_id=service_request_id)
    return triage_events.triage_completed(request, note=note, codesystem_base=CODESYSTEM_BASE, traceparent=None,
                                          complaint=complaint).json()


def task(order: dict[str, Any], phone: str | None = "06-12345678") -> dict[str, Any]:
    return task_content.task_content(task_content.read_order(order), task_id="t-1", at=NOW,
                                     front_door_fhir_base=FRONT_DOOR + "/", codesystem_base=CODESYSTEM_BASE,
                                     contact_phone=phone)


def inputs(resource: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["type"]["coding"][0]["code"]: i for i in resource["input"]}


def test_the_routing_order_carries_what_the_task_needs_and_nothing_that_names_the_patient() -> None:
    order = routing_order()
    routing = task_content.read_order(order)
    assert (routing.patient_id, routing.service_request_id, routing.urgency) == ("pat-1", "sr-1", "U2")
    assert routing.complaint.startswith("Benauwd") and routing.note == "Visite binnen het uur"
    assert routing.referrer == {"identifier": {"system": "http://fhir.nl/fhir/NamingSystem/agb-z",
                                               "value": "01000001"}, "display": "Huisartsenpraktijk De Linde"}
    # Billing reads this topic: only references and the pseudonym identify the patient.
    assert order["subject"] == {"reference": "Patient/pat-1",
                                "identifier": {"system": PSEUDONYM_SYSTEM, "value": "p-" + "1" * 32}}
    assert validate_resource(order) == []


def test_the_task_names_patient_and_request_by_absolute_url_and_says_what_to_do() -> None:
    made = task(routing_order())
    assert validate_resource(made) == []
    assert made["for"] == {"reference": f"{FRONT_DOOR}/Patient/pat-1",
                           "identifier": {"system": PSEUDONYM_SYSTEM, "value": "p-" + "1" * 32}}
    assert made["focus"] == {"reference": f"{FRONT_DOOR}/ServiceRequest/sr-1"}
    assert made["description"] == "Benauwd sinds vanochtend, bekend met COPD"
    assert made["note"] == [{"text": "Visite binnen het uur"}]
    given = inputs(made)
    assert set(given) == {"urgency", "target-time", "referrer", "contact-phone"}
    assert all(i["type"]["coding"][0]["system"] == f"{CODESYSTEM_BASE}task-input" for i in made["input"])
    assert given["urgency"]["valueCodeableConcept"]["coding"] == [{"system": f"{CODESYSTEM_BASE}urgency",
                                                                   "code": "U2"}]
    assert given["target-time"]["valueDateTime"] == made["restriction"]["period"]["end"] == \
        (NOW + timedelta(minutes=40)).isoformat()
    assert given["referrer"]["valueReference"]["display"] == "Huisartsenpraktijk De Linde"
    assert given["contact-phone"]["valueContactPoint"] == {"system": "phone", "value": "06-12345678"}


def test_a_phone_contact_is_referred_by_the_front_door_and_a_task_without_phone_has_no_phone_input() -> None:
    made = task(routing_order(channel="phone", submitted_by="http://fhir.nl/fhir/NamingSystem/ura|90000001",
                              note=""), phone=None)
    assert validate_resource(made) == []
    assert inputs(made)["referrer"]["valueReference"]["display"] == "Spoedzorg Regio Demo"
    assert "contact-phone" not in inputs(made) and "note" not in made


def test_a_request_from_before_the_front_door_kept_its_own_service_request_is_focused_by_identifier() -> None:
    made = task(routing_order(service_request_id=None))
    assert made["focus"] == {"identifier": {"system": task_content.ACUTE_REQUEST_SYSTEM, "value": "req-1"}}
    assert task_content.referral_summary(task_content.read_order(routing_order(service_request_id=None)),
                                         front_door_fhir_base=FRONT_DOOR, closed=False) is None


def test_a_long_complaint_becomes_one_line_of_at_most_two_hundred_characters() -> None:
    made = task(routing_order(complaint="pijn " * 100))
    assert "\n" not in made["description"] and len(made["description"]) == 200
    assert made["description"].endswith("…")


@pytest.mark.parametrize(("phone", "expected"), [("06-11112222", "06-11112222"), (None, None)])
def test_the_contact_phone_input_follows_the_patient(phone: str | None, expected: str | None) -> None:
    made = task(routing_order())
    updated = task_content.with_contact_phone(made, phone, CODESYSTEM_BASE)
    assert updated is not None and validate_resource(updated) == []
    found = inputs(updated).get("contact-phone")
    assert (found["valueContactPoint"]["value"] if found else None) == expected
    assert [i for i in updated["input"] if i["type"]["coding"][0]["code"] == "urgency"] == \
        [inputs(made)["urgency"]]
    assert task_content.with_contact_phone(made, "06-12345678", CODESYSTEM_BASE) is None  # nothing changes


def test_the_included_focus_is_a_subsetted_service_request_at_the_tasks_focus() -> None:
    summary = task_content.referral_summary(task_content.read_order(routing_order()),
                                            front_door_fhir_base=FRONT_DOOR, closed=True)
    assert summary is not None and validate_resource(summary) == []
    assert summary["id"] == "sr-1" and summary["status"] == "completed"
    assert summary["meta"]["tag"][0]["code"] == "SUBSETTED"
    assert summary["reasonCode"] == [{"text": "Benauwd sinds vanochtend,\n  bekend met COPD"}]
    assert summary["subject"]["reference"] == f"{FRONT_DOOR}/Patient/pat-1"


@pytest.mark.parametrize("broken", [{"subject": {}}, {"category": []}, {"occurrenceDateTime": "tomorrow"}])
def test_a_value_that_is_not_a_routing_order_is_refused(broken: dict[str, Any]) -> None:
    order = {**routing_order(), **broken}
    with pytest.raises((KeyError, IndexError, TypeError, ValueError)):
        task_content.read_order(json.loads(json.dumps(order)))
