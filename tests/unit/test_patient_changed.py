"""What the front door tells coordination of a patient (patient-changed), and how a later referral or call
updates what it knows; the patient data rides in the value only, never in the key or headers."""

from __future__ import annotations

from datetime import UTC, datetime

from services.triage import events
from services.triage.models import AcuteRequest
from services.triage.service import (
    Address,
    ContactInput,
    contact_patient_details,
    front_door_service_request,
    merged_patient,
)
from shared.bus.topics import PATIENT_CHANGED
from shared.fhir import validate_resource
from shared.identifiers import BSN_SYSTEM, PSEUDONYM_SYSTEM, UZOVI_SYSTEM

STORED = {"resourceType": "Patient", "id": "pat-1", "meta": {"versionId": "1", "lastUpdated": "2026-11-30T08:00:00Z"},
          "identifier": [{"system": BSN_SYSTEM, "value": "999990007"}],
          "name": [{"family": "de Vries", "given": ["Jan"], "text": "Jan de Vries"}], "birthDate": "1941-03-12",
          "address": [{"use": "home", "line": ["Dorpsstraat 1"], "postalCode": "1234 AB", "city": "Oost"}],
          "telecom": [{"system": "phone", "value": "0612345678"}]}


def contact(**changes: object) -> ContactInput:
    values: dict[str, object] = {"channel": "phone", "bsn": "999990007", "name": "J. de Vries",
                                 "birth_date": "1941-03-12", "uzovi": "9001", "complaint": "Koorts"}
    return ContactInput(**{**values, **changes})  # type: ignore[arg-type]


def test_a_later_referral_brings_a_new_address_and_keeps_the_bsn_and_what_it_leaves_out() -> None:
    newer = {"resourceType": "Patient", "id": "pat-1", "identifier": [{"system": "urn:oid:2.16.1", "value": "mrn-7"}],
             "name": [{"family": "de Vries", "given": ["Jan"]}],
             "address": [{"use": "home", "line": ["Nieuwe Weg 9"], "postalCode": "4321 BA", "city": "West"}]}
    merged = merged_patient(STORED, newer)
    assert merged["address"] == newer["address"] and merged["name"] == newer["name"]
    assert merged["telecom"] == STORED["telecom"] and merged["birthDate"] == "1941-03-12"
    assert merged["identifier"] == [{"system": BSN_SYSTEM, "value": "999990007"},
                                    {"system": "urn:oid:2.16.1", "value": "mrn-7"}]
    assert merged["meta"] == STORED["meta"] and merged["id"] == "pat-1"


def test_a_call_for_a_known_patient_adds_address_and_phone_but_does_not_rename_them() -> None:
    details = contact_patient_details(contact(callback_phone="020 123 45 67",
                                              address=Address("Kerkplein 2", "1111 AA", "Oost")))
    merged = merged_patient(STORED, details, only_if_missing=frozenset({"name", "birthDate"}))
    assert merged["name"] == STORED["name"]
    assert merged["telecom"] == [{"system": "phone", "value": "020 123 45 67"}]
    assert merged["address"] == [{"use": "home", "line": ["Kerkplein 2"], "postalCode": "1111 AA", "city": "Oost"}]


def test_a_relative_calling_is_a_contact_person_not_the_patients_own_phone() -> None:
    details = contact_patient_details(contact(caller="relative", callback_phone="0687654321",
                                              address=Address("", "", "")))
    assert "telecom" not in details and "address" not in details
    assert details["contact"] == [{"relationship": [{"text": "relative"}],
                                   "telecom": [{"system": "phone", "value": "0687654321"}]}]
    assert validate_resource({"resourceType": "Patient", "id": "x", **details}) == []


def test_the_front_door_keeps_a_service_request_of_its_own_for_a_phone_call() -> None:
    at = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    request = AcuteRequest(id="req-1", pseudonym="p-1", patient_id="pat-1", channel="phone", complaint="Koorts",
                           submitted_by="http://fhir.nl/fhir/NamingSystem/ura|90000001", received_at=at)
    resource = front_door_service_request(request, service_request_id="sr-9",
                                          caller_org="http://fhir.nl/fhir/NamingSystem/ura|90000001", at=at)
    assert validate_resource(resource) == []
    assert resource["subject"] == {"reference": "Patient/pat-1"} and resource["reasonCode"] == [{"text": "Koorts"}]
    assert resource["requester"]["display"] == "Spoedzorg Regio Demo"
    assert resource["identifier"] == [{"system": events.ACUTE_REQUEST_SYSTEM, "value": "req-1"}]


def test_patient_changed_carries_the_patient_in_the_value_only() -> None:
    event = events.patient_changed(STORED, pseudonym="p-" + "7" * 32, uzovi="9002", traceparent=None)
    assert event.topic == PATIENT_CHANGED and event.key == "p-" + "7" * 32 and event.subject == "Patient/pat-1"
    exposed = event.key.encode() + b" ".join(value for _, value in event.headers())
    for secret in (b"999990007", b"Vries", b"1941-03-12", b"Dorpsstraat", b"0612345678"):
        assert secret not in exposed and secret in event.data
    value = event.json()
    assert validate_resource(value) == []
    assert value["identifier"][0] == {"system": PSEUDONYM_SYSTEM, "value": "p-" + "7" * 32}
    assert value["extension"] == [{"url": events.INSURER_EXTENSION, "valueReference": {
        "identifier": {"system": UZOVI_SYSTEM, "value": "9002"}, "display": "Zorgverzekeraar Zuid"}}]
    again = events.patient_changed(value, pseudonym="p-" + "7" * 32, uzovi=None, traceparent=None).json()
    assert [i["system"] for i in again["identifier"]].count(PSEUDONYM_SYSTEM) == 1 and "extension" not in again
