"""Every rule of reading a referral, one row each, with the exact FHIRPath location a partner is told about."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from infra.referrals import referral_bundle
from services.triage.domain.referral import Referral, followed_references, read_referral, read_service_request
from shared.fhir import Issue
from shared.identifiers import AGB_SYSTEM, URA_SYSTEM, UZOVI_SYSTEM
from tests.conftest import NL_CORE

# The factory's entries: the patient, the requesting organisation, the payer, the Coverage, the ServiceRequest.
PATIENT, REQUESTER, PAYER, COVERAGE, SR = range(5)
VALID_BSN = "999990007"
PARTNER_BASE = "https://ehr.example.nl/fhir/"


def resource(bundle: dict[str, Any], index: int) -> dict[str, Any]:
    return bundle["entry"][index]["resource"]


def locations(issues: list[Issue]) -> set[str]:
    return {location for issue in issues for location in issue.expression}


def issues_of(outcome: Referral | list[Issue]) -> list[Issue]:
    assert isinstance(outcome, list), "the referral was accepted"
    return outcome


def without(element: str, index: int = SR) -> Callable[[dict[str, Any]], None]:
    def change(bundle: dict[str, Any]) -> None:
        del resource(bundle, index)[element]
    return change


def setting(element: str, value: Any, index: int = SR) -> Callable[[dict[str, Any]], None]:
    def change(bundle: dict[str, Any]) -> None:
        resource(bundle, index)[element] = value
    return change


def identifying(index: int, system: str, value: str) -> Callable[[dict[str, Any]], None]:
    return setting("identifier", [{"system": system, "value": value}], index)


def reference(url: str) -> dict[str, str]:
    return {"reference": url}


def urls(bundle: dict[str, Any]) -> list[str]:
    return [entry["fullUrl"] for entry in bundle["entry"]]


def pointing(element: str, at: int) -> Callable[[dict[str, Any]], None]:
    def change(bundle: dict[str, Any]) -> None:
        resource(bundle, SR)[element] = reference(urls(bundle)[at])
    return change


def entry_change(index: int, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(bundle: dict[str, Any]) -> None:
        bundle["entry"][index][key] = value
    return change


def appending(entry: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[dict[str, Any]], None]:
    def change(bundle: dict[str, Any]) -> None:
        bundle["entry"].append(entry(bundle))
    return change


def second_service_request(bundle: dict[str, Any]) -> dict[str, Any]:
    return {"fullUrl": "urn:uuid:5d2c1f0a-0000-4000-8000-000000000002",
            "resource": {k: v for k, v in resource(bundle, SR).items() if k != "identifier"},
            "request": {"method": "POST", "url": "ServiceRequest"}}


def condition_reusing_the_patients_full_url(bundle: dict[str, Any]) -> dict[str, Any]:
    return {"fullUrl": urls(bundle)[PATIENT],
            "resource": {"resourceType": "Condition", "subject": reference(urls(bundle)[PATIENT])},
            "request": {"method": "POST", "url": "Condition"}}


def basic_resource(_bundle: dict[str, Any]) -> dict[str, Any]:
    return {"fullUrl": "urn:uuid:5d2c1f0a-0000-4000-8000-000000000003",
            "resource": {"resourceType": "Basic", "code": {"text": "note"}},
            "request": {"method": "POST", "url": "Basic"}}


def drop_service_request(bundle: dict[str, Any]) -> None:
    del bundle["entry"][SR]


def logical_payor(value: str) -> Callable[[dict[str, Any]], None]:
    return setting("payor", [{"identifier": {"system": UZOVI_SYSTEM, "value": value}}], COVERAGE)


def logical_requester(system: str, value: str) -> Callable[[dict[str, Any]], None]:
    return setting("requester", {"identifier": {"system": system, "value": value}})


DANGLING = "urn:uuid:75ca5045-3136-4da5-8f17-03448485e22b"  # the fullUrl of no entry


def extended(index: int, extension: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    return setting("extension", [extension], index)


def patient_contact_at(url: str) -> Callable[[dict[str, Any]], None]:
    return setting("contact", [{"name": {"text": "Buurvrouw"}, "organization": reference(url)}], PATIENT)


def contained_condition_of(url: str) -> Callable[[dict[str, Any]], None]:
    return setting("contained", [{"resourceType": "Condition", "id": "c1", "subject": reference(url)}])


def observation_with_empty_elements(bundle: dict[str, Any]) -> dict[str, Any]:
    return {"fullUrl": "urn:uuid:5d2c1f0a-0000-4000-8000-000000000004",
            "resource": {"resourceType": "Observation", "status": "final", "identifier": [{}], "note": [], "code": {},
                         "subject": reference(urls(bundle)[PATIENT])},
            "request": {"method": "POST", "url": "Observation"}}


RULES: list[tuple[str, Callable[[dict[str, Any]], None], set[str]]] = [
    ("reasonReference is a urn:uuid no entry has", setting("reasonReference", [reference(DANGLING)]),
     {"Bundle.entry[4].resource.reasonReference[0]"}),
    ("a urn:oid no entry has", setting("supportingInfo", [reference("urn:oid:2.16.840.1.113883.2.4.6.1.99")]),
     {"Bundle.entry[4].resource.supportingInfo[0]"}),
    ("a dangling placeholder in an extension",
     extended(SR, {"url": "https://ehr.example.nl/fhir/ext/context", "valueReference": reference(DANGLING)}),
     {"Bundle.entry[4].resource.extension[0].valueReference"}),
    ("a dangling placeholder in a backbone element of another entry", patient_contact_at(DANGLING),
     {"Bundle.entry[0].resource.contact[0].organization"}),
    ("a dangling placeholder in a contained resource", contained_condition_of(DANGLING),
     {"Bundle.entry[4].resource.contained[0].subject"}),
    ("an Observation with an empty identifier, note and code", appending(observation_with_empty_elements),
     {"Bundle.entry[5].resource.identifier[0]", "Bundle.entry[5].resource.note",
      "Bundle.entry[5].resource.code"}),
    ("ServiceRequest.status missing", without("status"), {"Bundle.entry[4].resource.status"}),
    ("ServiceRequest.status not a request-status code", setting("status", "bogus"),
     {"Bundle.entry[4].resource.status"}),
    ("ServiceRequest.status not a string", setting("status", ["active"]), {"Bundle.entry[4].resource.status"}),
    ("ServiceRequest.intent missing", without("intent"), {"Bundle.entry[4].resource.intent"}),
    ("ServiceRequest.intent not a request-intent code", setting("intent", "command"),
     {"Bundle.entry[4].resource.intent"}),
    ("ServiceRequest.priority not a request-priority code", setting("priority", "whenever"),
     {"Bundle.entry[4].resource.priority"}),
    ("BSN fails the 11-proof", identifying(PATIENT, "http://fhir.nl/fhir/NamingSystem/bsn", "123456789"),
     {"Bundle.entry[0].resource.identifier[0].value"}),
    ("BSN is not 9 digits", identifying(PATIENT, "http://fhir.nl/fhir/NamingSystem/bsn", "99999000"),
     {"Bundle.entry[0].resource.identifier[0].value"}),
    ("AGB is not 8 digits", identifying(REQUESTER, AGB_SYSTEM, "0100001"),
     {"Bundle.entry[1].resource.identifier[0].value"}),
    ("URA is longer than 8 digits", identifying(REQUESTER, URA_SYSTEM, "900000010"),
     {"Bundle.entry[1].resource.identifier[0].value"}),
    ("UZOVI is not 4 digits", identifying(PAYER, UZOVI_SYSTEM, "900"),
     {"Bundle.entry[2].resource.identifier[0].value"}),
    ("identifier too long to store",
     setting("identifier", [{"system": AGB_SYSTEM, "value": "01000001"},
                            {"system": "https://ehr.example.nl/ids", "value": "x" * 191}], REQUESTER),
     {"Bundle.entry[1].resource.identifier[1]"}),
    ("subject missing", without("subject"), {"Bundle.entry[4].resource.subject"}),
    ("subject resolves to nothing in the Bundle", setting("subject", reference("urn:uuid:4f1e0000-0000-4000-8000-1")),
     {"Bundle.entry[4].resource.subject"}),
    ("subject is a local Patient not stored here", setting("subject", reference("Patient/unknown")),
     {"Bundle.entry[4].resource.subject"}),
    ("subject is not a Patient", pointing("subject", REQUESTER), {"Bundle.entry[4].resource.subject"}),
    ("subject is a string, not a Reference", setting("subject", "Patient/1"), {"Bundle.entry[4].resource.subject"}),
    ("requester organisation has neither AGB nor URA",
     identifying(REQUESTER, "http://fhir.nl/fhir/NamingSystem/kvk", "12345678"),
     {"Bundle.entry[4].resource.requester"}),
    ("requester missing", without("requester"), {"Bundle.entry[4].resource.requester"}),
    ("requester resolves to nothing", setting("requester", reference("urn:uuid:4f1e0000-0000-4000-8000-2")),
     {"Bundle.entry[4].resource.requester"}),
    ("requester is the Patient", pointing("requester", PATIENT), {"Bundle.entry[4].resource.requester"}),
    ("requester's logical AGB is not 8 digits", logical_requester(AGB_SYSTEM, "123"),
     {"Bundle.entry[4].resource.requester.identifier.value"}),
    ("Coverage.payor organisation has no UZOVI", identifying(PAYER, URA_SYSTEM, "90000010"),
     {"Bundle.entry[3].resource.payor[0]"}),
    ("Coverage.payor logical UZOVI is not 4 digits", logical_payor("12345"),
     {"Bundle.entry[3].resource.payor[0].identifier.value"}),
    ("Coverage.status missing", without("status", COVERAGE), {"Bundle.entry[3].resource.status"}),
    ("entry is not POST", entry_change(REQUESTER, "request", {"method": "PUT", "url": "Organization/1"}),
     {"Bundle.entry[1].request.method"}),
    ("entry has no request", entry_change(REQUESTER, "request", "POST"), {"Bundle.entry[1].request.method"}),
    ("entry has no resource", entry_change(PAYER, "resource", None),
     {"Bundle.entry[2].resource", "Bundle.entry[3].resource.payor[0]"}),
    ("resource type not accepted in a referral", appending(basic_resource), {"Bundle.entry[5].resource.resourceType"}),
    ("resource type not a string", setting("resourceType", ["Organization"], PAYER),
     {"Bundle.entry[2].resource.resourceType", "Bundle.entry[3].resource.payor[0]"}),
    ("two ServiceRequests", appending(second_service_request), {"Bundle.entry"}),
    ("no ServiceRequest", drop_service_request, {"Bundle.entry"}),
    ("fullUrl used twice", appending(condition_reusing_the_patients_full_url), {"Bundle.entry[5].fullUrl"}),
    ("fullUrl not a string", entry_change(PAYER, "fullUrl", 7),
     {"Bundle.entry[2].fullUrl", "Bundle.entry[3].resource.payor[0]"}),
    ("ifNoneExist not a string", entry_change(PATIENT, "request", {"method": "POST", "ifNoneExist": ["x"]}),
     {"Bundle.entry[0].request.ifNoneExist"}),
]


@pytest.mark.parametrize(("change", "expected"), [(change, expected) for _, change, expected in RULES],
                         ids=[name for name, _, _ in RULES])
def test_each_broken_rule_is_refused_at_its_fhirpath_location(change: Callable[[dict[str, Any]], None],
                                                               expected: set[str]) -> None:
    bundle = referral_bundle(bsn=VALID_BSN, uzovi="9001")
    assert isinstance(read_referral(bundle), Referral)  # the factory's Bundle is valid before the change
    change(bundle)
    assert locations(issues_of(read_referral(bundle))) == expected


@pytest.mark.parametrize(("bundle", "expected"), [
    ({"resourceType": "Parameters"}, "Bundle.resourceType"),
    ([], "Bundle.resourceType"),
    ({"resourceType": "Bundle", "type": "batch", "entry": []}, "Bundle.type"),
    ({"resourceType": "Bundle", "type": "transaction"}, "Bundle.entry"),
    ({"resourceType": "Bundle", "type": "transaction", "entry": {}}, "Bundle.entry"),
])
def test_what_is_not_a_transaction_bundle_is_refused_at_the_bundle(bundle: Any, expected: str) -> None:
    assert locations(issues_of(read_referral(bundle))) == {expected}


@pytest.mark.parametrize("identifier", [{"value": ["x"]}, {"system": "https://ehr.example.nl", "value": "x" * 191}])
def test_an_unusable_bundle_identifier_is_refused_at_bundle_identifier(identifier: dict[str, Any]) -> None:
    bundle = {**referral_bundle(bsn=VALID_BSN), "identifier": identifier}
    assert locations(issues_of(read_referral(bundle))) == {"Bundle.identifier"}


def test_entry_that_is_not_an_object_is_refused_at_the_entry() -> None:
    bundle = referral_bundle(bsn=VALID_BSN, requester_agb="01000001")
    bundle["entry"][PATIENT] = "Patient"
    # The Coverage's beneficiary pointed at that entry: with it gone, the placeholder names no entry.
    assert locations(issues_of(read_referral(bundle))) == {"Bundle.entry[0]", "Bundle.entry[4].resource.subject",
                                                           "Bundle.entry[3].resource.beneficiary"}


def test_every_problem_is_reported_at_once() -> None:
    bundle = referral_bundle(bsn="123456789", uzovi="900", requester_agb="1")
    del resource(bundle, SR)["intent"]
    assert locations(issues_of(read_referral(bundle))) == {
        "Bundle.entry[0].resource.identifier[0].value", "Bundle.entry[1].resource.identifier[0].value",
        "Bundle.entry[2].resource.identifier[0].value", "Bundle.entry[4].resource.intent"}


def test_failing_bsn_is_not_echoed_in_the_diagnostics() -> None:
    issues = issues_of(read_referral(referral_bundle(bsn="123456789")))
    assert all("123456789" not in issue.diagnostics for issue in issues)


def test_valid_bundle_yields_patient_bsn_uzovi_requester_and_priority() -> None:
    bundle = referral_bundle(bsn=VALID_BSN, uzovi="9002", requester_ura="90000010", priority="asap",
                             bundle_id="b-1")
    referral = read_referral(bundle)
    assert isinstance(referral, Referral)
    assert referral.patient is not None and referral.patient.index == PATIENT
    assert referral.service_request.path == "Bundle.entry[4].resource"
    assert (referral.bsn, referral.uzovi, referral.requester_org, referral.priority) == (
        VALID_BSN, "9002", f"{URA_SYSTEM}|90000010", "asap")
    assert referral.bundle_identifier.endswith("|b-1")  # type: ignore[union-attr]


def test_patient_without_bsn_and_without_coverage_is_accepted() -> None:
    referral = read_referral(referral_bundle(bsn=None, uzovi=None))
    assert isinstance(referral, Referral)
    assert (referral.bsn, referral.uzovi) == (None, None)


def test_requester_practitioner_role_is_identified_by_the_organization_it_works_for() -> None:
    bundle = referral_bundle(bsn=VALID_BSN)
    role_url = "urn:uuid:5d2c1f0a-0000-4000-8000-000000000004"
    bundle["entry"].append({"fullUrl": role_url, "resource": {
        "resourceType": "PractitionerRole", "organization": reference(urls(bundle)[REQUESTER])},
        "request": {"method": "POST", "url": "PractitionerRole"}})
    resource(bundle, SR)["requester"] = reference(role_url)
    referral = read_referral(bundle)
    assert isinstance(referral, Referral)
    assert referral.requester_org == f"{AGB_SYSTEM}|01000001"


def test_requester_practitioner_role_without_an_identified_organization_is_refused() -> None:
    bundle = referral_bundle(bsn=VALID_BSN)
    role_url = "urn:uuid:5d2c1f0a-0000-4000-8000-000000000005"
    bundle["entry"].append({"fullUrl": role_url, "resource": {"resourceType": "PractitionerRole"},
                            "request": {"method": "POST", "url": "PractitionerRole"}})
    resource(bundle, SR)["requester"] = reference(role_url)
    assert locations(issues_of(read_referral(bundle))) == {"Bundle.entry[4].resource.requester"}


def load(stem: str) -> dict[str, Any]:
    return json.loads((NL_CORE / f"{stem}.json").read_bytes(), parse_float=Decimal)


def nl_core_bundle(requester: str) -> dict[str, Any]:
    """The published examples as they are, under the partner's own base, referred to relatively."""
    entries = [{"fullUrl": f"{PARTNER_BASE}{r['resourceType']}/{r['id']}", "resource": r,
                "request": {"method": "POST", "url": r["resourceType"]}}
               for r in map(load, ("nl-core-Patient-01", "nl-core-HealthcareProvider-Organization-01",
                                   "nl-core-Payer-Organization-02", "nl-core-HealthProfessional-PractitionerRole-01"))]
    entries.append({"fullUrl": f"{PARTNER_BASE}Coverage/c1", "request": {"method": "POST", "url": "Coverage"},
                    "resource": {"resourceType": "Coverage", "status": "active",
                                 "beneficiary": reference("Patient/nl-core-Patient-01"),
                                 "payor": [reference("Organization/nl-core-Payer-Organization-02")]}})
    entries.append({"fullUrl": f"{PARTNER_BASE}ServiceRequest/s1",
                    "request": {"method": "POST", "url": "ServiceRequest"},
                    "resource": {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
                                 "subject": reference("Patient/nl-core-Patient-01"),
                                 "requester": reference(requester)}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def test_nl_core_examples_referred_to_relatively_under_absolute_full_urls_are_a_valid_referral() -> None:
    referral = read_referral(nl_core_bundle("Organization/nl-core-HealthcareProvider-Organization-01"))
    assert isinstance(referral, Referral)
    assert (referral.bsn, referral.uzovi, referral.requester_org) == ("111222333", "3332", f"{URA_SYSTEM}|06020806")


def test_relative_reference_from_an_urn_uuid_entry_does_not_reach_into_another_base() -> None:
    bundle = nl_core_bundle("Organization/nl-core-HealthcareProvider-Organization-01")
    bundle["entry"][-1]["fullUrl"] = "urn:uuid:5d2c1f0a-0000-4000-8000-000000000006"
    # Without a base of its own, "Patient/nl-core-Patient-01" means a Patient stored here, and there is none.
    assert locations(issues_of(read_referral(bundle))) == {"Bundle.entry[5].resource.subject",
                                                           "Bundle.entry[5].resource.requester"}


def test_nl_core_practitioner_role_as_requester_is_refused_because_it_names_no_organization() -> None:
    bundle = nl_core_bundle("PractitionerRole/nl-core-HealthProfessional-PractitionerRole-01")
    assert locations(issues_of(read_referral(bundle))) == {"Bundle.entry[5].resource.requester"}


def test_references_to_resources_stored_here_resolve_through_the_stored_map() -> None:
    bundle = referral_bundle(bsn=VALID_BSN)
    resource(bundle, SR)["subject"] = reference("Patient/p1")
    resource(bundle, SR)["requester"] = reference("PractitionerRole/r1")
    stored = {"Patient/p1": {"resourceType": "Patient"},
              "PractitionerRole/r1": {"resourceType": "PractitionerRole", "organization": reference("Organization/o1")},
              "Organization/o1": {"resourceType": "Organization",
                                  "identifier": [{"system": URA_SYSTEM, "value": "90000010"}]}}
    referral = read_referral(bundle, stored=stored)
    assert isinstance(referral, Referral)
    assert (referral.patient, referral.patient_reference) == (None, "Patient/p1")
    assert referral.requester_org == f"{URA_SYSTEM}|90000010"


def test_only_subject_requester_payor_and_role_organization_references_are_followed() -> None:
    resources = [
        {"resourceType": "ServiceRequest", "subject": reference("Patient/p1"),
         "requester": reference("Practitioner/d1"), "performer": [reference("Organization/ignored")]},
        {"resourceType": "Coverage", "payor": [reference("Organization/o1"), reference("urn:uuid:in-the-bundle")]},
        {"resourceType": "PractitionerRole", "organization": reference("Organization/o2")},
        {"resourceType": "EpisodeOfCare", "patient": reference("Patient/ignored")},
        {"resourceType": "ServiceRequest", "subject": reference("Patient/p2/_history/1"),
         "requester": reference("https://elsewhere.example/fhir/Organization/o3")},
        "not a resource",
    ]
    assert followed_references(resources) == {"Patient/p1", "Practitioner/d1", "Organization/o1", "Organization/o2"}


def service_request(**changes: Any) -> dict[str, Any]:
    return {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
            "subject": reference("Patient/p1"),
            "requester": {"identifier": {"system": AGB_SYSTEM, "value": "01000001"}}, **changes}


STORED_PATIENT = {"Patient/p1": {"resourceType": "Patient"}}


def test_service_request_posted_on_its_own_for_a_stored_patient_is_a_referral() -> None:
    referral = read_service_request(service_request(priority="stat"), if_none_exist="identifier=s|1",
                                    stored=STORED_PATIENT)
    assert isinstance(referral, Referral)
    assert referral.service_request.path == "ServiceRequest"
    assert (referral.patient_reference, referral.priority, referral.service_request.if_none_exist) == (
        "Patient/p1", "stat", "identifier=s|1")


@pytest.mark.parametrize(("body", "expected"), [
    (service_request(intent=None), {"ServiceRequest.intent"}),
    (service_request(status="bogus"), {"ServiceRequest.status"}),
    (service_request(subject=reference("Patient/someone-elses")), {"ServiceRequest.subject"}),
    (service_request(requester=reference("Organization/unknown")), {"ServiceRequest.requester"}),
    (service_request(requester={"identifier": {"system": URA_SYSTEM, "value": "123456789"}}),
     {"ServiceRequest.requester.identifier.value"}),
    (service_request(reasonReference=[reference(DANGLING)]), {"ServiceRequest.reasonReference[0]"}),
    ({"resourceType": "Patient"}, {"ServiceRequest.resourceType"}),
])
def test_service_request_posted_on_its_own_is_refused_at_locations_rooted_at_service_request(
        body: dict[str, Any], expected: set[str]) -> None:
    body = {k: v for k, v in body.items() if v is not None}
    assert locations(issues_of(read_service_request(body, if_none_exist=None, stored=STORED_PATIENT))) == expected


def test_a_directory_resource_found_valid_is_not_validated_again_and_a_broken_one_always_is(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from services.triage.domain import referral as module
    validated: list[str] = []
    validate = module.validate_resource

    def counting(data: dict[str, Any], *, path: str | None = None) -> list[Issue]:
        validated.append(data["resourceType"])
        return validate(data, path=path)

    monkeypatch.setattr(module, "validate_resource", counting)
    monkeypatch.setattr(module, "_VALID_DIRECTORY", {})
    bundle = referral_bundle(bsn=VALID_BSN, requester_ura="90000010")
    assert isinstance(read_referral(bundle), Referral)
    assert sorted(validated) == ["Coverage", "Organization", "Organization", "Patient", "ServiceRequest"]
    validated.clear()
    assert isinstance(read_referral(referral_bundle(bsn=VALID_BSN, requester_ura="90000010")), Referral)
    assert sorted(validated) == ["Coverage", "Patient", "ServiceRequest"]  # the same two Organizations: known
    broken = referral_bundle(bsn=VALID_BSN, requester_ura="90000010")
    resource(broken, REQUESTER)["active"] = "yes"
    for _ in range(2):
        assert "Bundle.entry[1].resource.active" in locations(issues_of(read_referral(broken)))
