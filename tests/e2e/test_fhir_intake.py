"""The FHIR front door as a partner EHR meets it: nl-core data in JSON and XML, read, vread, search and paging,
formats, refusals that store nothing, and a real FHIR client library against the running service."""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from itertools import count
from typing import Any

import httpx
import pytest
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome as FhirpyOperationOutcome

from infra.client import ApiClient
from infra.referrals import referral_bundle
from infra.stack import Stack
from shared.fhir import FHIR_JSON, FHIR_XML, loads, parse_body, to_xml
from shared.identifiers import AGB_SYSTEM, is_valid_bsn
from tests.conftest import NL_CORE, started_stack

pytestmark = pytest.mark.e2e

PARTNER_BASE = "https://ehr.example.nl/fhir/"  # the partner's own server: the examples' references are relative to it
REFERRAL_SYSTEM = "https://ehr.example.nl/fhir/NamingSystem/verwijzing"
NL_CORE_EXAMPLES = ("nl-core-Patient-01", "nl-core-HealthcareProvider-Organization-01", "nl-core-Payer-Organization-02",
                    "nl-core-HealthProfessional-Practitioner-01", "nl-core-HealthProfessional-PractitionerRole-01",
                    "nl-core-CareTeam-01", "nl-core-Encounter-01", "nl-core-EpisodeOfCare-01")
# Fresh BSNs that pass the 11-proof, so each referral of this module is for a patient of its own.
_BSNS = (bsn for bsn in (f"{n:09d}" for n in count(900100000)) if is_valid_bsn(bsn))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from started_stack(tmp_path_factory, "fhir-intake")


def fhir_get(stack: Stack, who: ApiClient, path: str, headers: dict[str, str] | None = None,
             **params: str) -> httpx.Response:
    return who.http.get(f"{stack.url('triage')}/fhir/{path}", params=params, headers=who.headers(headers))


def located(response: httpx.Response) -> list[str]:
    """The "Type/id" of every entry of a transaction-response, in the order of the request."""
    return [e["response"]["location"].rsplit("/_history/", 1)[0] for e in response.json()["entry"]]


def as_sent(stored: dict[str, Any]) -> dict[str, Any]:
    """The stored resource without what the server assigns: its id, version and time."""
    copied = copy.deepcopy(stored)
    del copied["id"]
    meta = copied.pop("meta")
    meta.pop("versionId")
    meta.pop("lastUpdated")
    return {**copied, "meta": meta} if meta else copied


def without_id(resource: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k != "id"}


def stripped_of_references(node: Any) -> Any:
    if isinstance(node, list):
        return [stripped_of_references(item) for item in node]
    if isinstance(node, dict):
        return {k: stripped_of_references(v) for k, v in node.items() if k != "reference"}
    return node


@dataclass
class NlCoreReferral:
    """One referral built from the published nl-core examples: what was sent and the transaction-response."""

    sent: dict[str, dict[str, Any]]  # by example name, plus "Coverage" and "ServiceRequest"
    response: httpx.Response

    def location(self, name: str) -> str:
        return located(self.response)[list(self.sent).index(name)]


def nl_core_resources(referral_id: str, parse: Any) -> dict[str, dict[str, Any]]:
    """The examples as `parse` reads them, a Coverage with the payer, and a ServiceRequest of the patient by the
    healthcare provider; all under the partner's base and referred to relatively, as its server would."""
    sent = {name: parse(name) for name in NL_CORE_EXAMPLES}
    sent["Coverage"] = {"resourceType": "Coverage", "id": f"cov-{referral_id}", "status": "active",
                        "beneficiary": {"reference": "Patient/nl-core-Patient-01"},
                        "payor": [{"reference": "Organization/nl-core-Payer-Organization-02"}]}
    sent["ServiceRequest"] = {
        "resourceType": "ServiceRequest", "id": referral_id,
        "identifier": [{"system": REFERRAL_SYSTEM, "value": referral_id}],
        "status": "active", "intent": "order", "priority": "urgent",
        "code": {"text": "Beoordeling acute zorg"}, "reasonCode": [{"text": "Pijn op de borst sinds een uur"}],
        "subject": {"reference": "Patient/nl-core-Patient-01"},
        "requester": {"reference": "Organization/nl-core-HealthcareProvider-Organization-01"},
        "insurance": [{"reference": f"Coverage/cov-{referral_id}"}],
        "authoredOn": "2026-11-22T10:00:00+01:00"}
    return sent


def full_url(resource: dict[str, Any]) -> str:
    return f"{PARTNER_BASE}{resource['resourceType']}/{resource['id']}"


def json_bundle(sent: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": full_url(r), "resource": r, "request": {"method": "POST", "url": r["resourceType"]}}
        for r in sent.values()]}


def xml_bundle(sent: dict[str, dict[str, Any]]) -> bytes:
    """A Bundle document around the published XML files as they are (comments, namespace declarations), and
    around the XML of the Coverage and ServiceRequest written for this referral."""
    entries = []
    for name, resource in sent.items():
        published = NL_CORE / f"{name}.xml"
        xml = published.read_bytes() if published.exists() else to_xml(resource)
        if xml.startswith(b"<?xml"):
            xml = xml.split(b"?>", 1)[1]
        entries.append(b'<entry><fullUrl value="%s"/><resource>%s</resource><request><method value="POST"/>'
                       b'<url value="%s"/></request></entry>' % (full_url(resource).encode(), xml,
                                                                  resource["resourceType"].encode()))
    return b'<?xml version="1.0" encoding="UTF-8"?>\n<Bundle xmlns="http://hl7.org/fhir">' \
           b'<type value="transaction"/>' + b"".join(entries) + b"</Bundle>"


def published_json(name: str) -> dict[str, Any]:
    return json.loads((NL_CORE / f"{name}.json").read_bytes(), parse_float=Decimal)


def published_xml(name: str) -> dict[str, Any]:
    return parse_body((NL_CORE / f"{name}.xml").read_bytes(), FHIR_XML)


@pytest.fixture(scope="module")
def xml_referral(stack: Stack) -> NlCoreReferral:
    sent = nl_core_resources("nl-core-xml-1", published_xml)
    ehr = stack.client("ehr-delinde")
    response = ehr.http.post(f"{stack.url('triage')}/fhir", content=xml_bundle(sent),
                             headers=ehr.headers({"Content-Type": FHIR_XML, "Accept": FHIR_JSON}))
    return NlCoreReferral(sent, response)


@pytest.fixture(scope="module")
def json_referral(stack: Stack, xml_referral: NlCoreReferral) -> NlCoreReferral:
    """Posted after the XML referral, so the patient, provider, payer and practitioner are known by then."""
    sent = nl_core_resources("nl-core-json-1", published_json)
    response = stack.client("ehr-delinde").post_referral(json_bundle(sent))
    return NlCoreReferral(sent, response)


def read(stack: Stack, who: ApiClient, location: str) -> dict[str, Any]:
    response = fhir_get(stack, who, location)
    assert response.status_code == 200, response.text
    return loads(response.content)


def test_nl_core_examples_posted_as_published_xml_are_stored_and_read_back_as_sent(
        stack: Stack, xml_referral: NlCoreReferral) -> None:
    assert xml_referral.response.status_code == 200, xml_referral.response.text
    statuses = [e["response"]["status"] for e in xml_referral.response.json()["entry"]]
    assert statuses == ["201 Created"] * len(xml_referral.sent)
    ehr = stack.client("ehr-delinde")
    patient = read(stack, ehr, xml_referral.location("nl-core-Patient-01"))
    assert as_sent(patient) == without_id(xml_referral.sent["nl-core-Patient-01"])
    assert patient["identifier"] == [{"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": "111222333"}]

    sr = read(stack, ehr, xml_referral.location("ServiceRequest"))
    expected = {**without_id(xml_referral.sent["ServiceRequest"]),
                "subject": {"reference": xml_referral.location("nl-core-Patient-01")},
                "requester": {"reference": xml_referral.location("nl-core-HealthcareProvider-Organization-01")},
                "insurance": [{"reference": xml_referral.location("Coverage")}]}
    assert as_sent(sr) == expected

    episode = read(stack, ehr, xml_referral.location("nl-core-EpisodeOfCare-01"))
    assert episode["patient"]["reference"] == xml_referral.location("nl-core-Patient-01")
    for name in ("nl-core-Encounter-01", "nl-core-CareTeam-01"):
        stored = read(stack, ehr, xml_referral.location(name))
        assert stripped_of_references(as_sent(stored)) == stripped_of_references(without_id(xml_referral.sent[name]))
    # References to resources the partner did not send keep pointing at the partner's server.
    care_team = read(stack, ehr, xml_referral.location("nl-core-CareTeam-01"))
    assert care_team["participant"][0]["member"]["reference"] == (
        f"{PARTNER_BASE}RelatedPerson/nl-core-CareTeam-01-RelatedPerson-01")


def test_nl_core_examples_posted_as_json_reuse_the_known_patient_provider_payer_and_practitioner(
        stack: Stack, xml_referral: NlCoreReferral, json_referral: NlCoreReferral) -> None:
    assert json_referral.response.status_code == 200, json_referral.response.text
    statuses = dict(zip(json_referral.sent, (e["response"]["status"] for e in json_referral.response.json()["entry"]),
                        strict=True))
    known = {"nl-core-Patient-01", "nl-core-HealthcareProvider-Organization-01", "nl-core-Payer-Organization-02",
             "nl-core-HealthProfessional-Practitioner-01"}  # identified by BSN, URA, UZOVI and BIG
    assert {name for name, status in statuses.items() if status == "200 OK"} == known
    assert {name for name, status in statuses.items() if status == "201 Created"} == set(json_referral.sent) - known
    for name in known:
        assert json_referral.location(name) == xml_referral.location(name)

    ehr = stack.client("ehr-delinde")
    sr = read(stack, ehr, json_referral.location("ServiceRequest"))
    provider = xml_referral.location("nl-core-HealthcareProvider-Organization-01")
    assert as_sent(sr) == {**without_id(json_referral.sent["ServiceRequest"]),
                           "subject": {"reference": xml_referral.location("nl-core-Patient-01")},
                           "requester": {"reference": provider},
                           "insurance": [{"reference": json_referral.location("Coverage")}]}
    # The published JSON, converter comments included, is kept as it came (references aside).
    encounter = read(stack, ehr, json_referral.location("nl-core-Encounter-01"))
    assert stripped_of_references(as_sent(encounter)) == stripped_of_references(
        without_id(json_referral.sent["nl-core-Encounter-01"]))
    assert encounter["_status"] == json_referral.sent["nl-core-Encounter-01"]["_status"]
    ops = stack.client("ops")
    open_requests = [i for i in ops.worklist("open,triaged") if i["service_request"] in (
        xml_referral.location("ServiceRequest"), json_referral.location("ServiceRequest"))]
    assert len(open_requests) == 1, "the second referral of the same patient is linked, not a second request"


def test_read_answers_with_etag_and_last_modified_and_if_none_match_gives_304(
        stack: Stack, xml_referral: NlCoreReferral) -> None:
    ehr = stack.client("ehr-delinde")
    location = xml_referral.location("ServiceRequest")
    first = fhir_get(stack, ehr, location)
    assert first.status_code == 200
    assert first.headers["ETag"] == 'W/"1"' and first.headers["Last-Modified"].endswith("GMT")
    same = fhir_get(stack, ehr, location, {"If-None-Match": 'W/"1"'})
    assert same.status_code == 304 and same.content == b"" and same.headers["ETag"] == 'W/"1"'
    assert fhir_get(stack, ehr, location, {"If-None-Match": '"1"'}).status_code == 304
    assert fhir_get(stack, ehr, location, {"If-None-Match": "1"}).status_code == 304  # as fhirpy's refresh sends it
    other = fhir_get(stack, ehr, location, {"If-None-Match": 'W/"2"'})
    assert other.status_code == 200 and other.json() == first.json()


def test_vread_gives_the_stored_version_and_404_for_a_version_that_never_existed(
        stack: Stack, xml_referral: NlCoreReferral) -> None:
    ehr = stack.client("ehr-delinde")
    location = xml_referral.location("ServiceRequest")
    version = fhir_get(stack, ehr, f"{location}/_history/1")
    assert version.status_code == 200 and version.headers["ETag"] == 'W/"1"'
    assert version.json() == fhir_get(stack, ehr, location).json()
    missing = fhir_get(stack, ehr, f"{location}/_history/2")
    assert missing.status_code == 404 and missing.json()["issue"][0]["code"] == "not-found"


def test_format_parameter_and_accept_choose_xml_or_json_for_reads_and_searches(
        stack: Stack, xml_referral: NlCoreReferral) -> None:
    ehr = stack.client("ehr-delinde")
    patient_location = xml_referral.location("nl-core-Patient-01")
    as_json = fhir_get(stack, ehr, patient_location).json()
    as_xml = fhir_get(stack, ehr, patient_location, _format="xml")
    assert as_xml.headers["content-type"].startswith(FHIR_XML)
    assert parse_body(as_xml.content, FHIR_XML) == as_json
    by_accept = fhir_get(stack, ehr, patient_location, {"Accept": FHIR_XML})
    assert by_accept.headers["content-type"].startswith(FHIR_XML)
    json_wins = fhir_get(stack, ehr, patient_location, {"Accept": FHIR_XML}, _format="json")
    assert json_wins.headers["content-type"].startswith(FHIR_JSON) and json_wins.json() == as_json

    searched = fhir_get(stack, ehr, "ServiceRequest", _format="application/fhir+xml",
                        identifier=f"{REFERRAL_SYSTEM}|nl-core-xml-1")
    bundle = parse_body(searched.content, FHIR_XML)
    assert bundle["total"] == 1
    assert bundle["entry"][0]["resource"]["id"] == xml_referral.location("ServiceRequest").split("/")[1]
    unsupported = fhir_get(stack, ehr, patient_location, _format="html")
    assert unsupported.status_code == 406 and unsupported.json()["resourceType"] == "OperationOutcome"


def search(stack: Stack, who: ApiClient, **params: str) -> dict[str, Any]:
    response = fhir_get(stack, who, "ServiceRequest", **params)
    assert response.status_code == 200, response.text
    return dict(response.json())


def ids(bundle: dict[str, Any]) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", [])]


def test_search_by_identifier_patient_status_and_last_updated(stack: Stack, xml_referral: NlCoreReferral) -> None:
    ehr = stack.client("ehr-delinde")
    sr_location = xml_referral.location("ServiceRequest")
    sr_id = sr_location.split("/")[1]
    sr = read(stack, ehr, sr_location)
    assert ids(search(stack, ehr, identifier=f"{REFERRAL_SYSTEM}|nl-core-xml-1")) == [sr_id]
    assert ids(search(stack, ehr, identifier="nl-core-xml-1")) == [sr_id]
    assert search(stack, ehr, identifier=f"{REFERRAL_SYSTEM}|no-such-referral")["total"] == 0
    assert search(stack, ehr, identifier="https://other.example/ids|nl-core-xml-1")["total"] == 0
    patient = xml_referral.location("nl-core-Patient-01")
    assert sr_id in ids(search(stack, ehr, patient=patient, status="active"))
    assert sr_id in ids(search(stack, ehr, patient=patient.split("/")[1], status="draft,active"))
    assert search(stack, ehr, patient=patient, status="completed")["total"] == 0
    stored_at = sr["meta"]["lastUpdated"]
    day = stored_at[:10]
    assert sr_id in ids(search(stack, ehr, identifier="nl-core-xml-1", _lastUpdated=day))
    assert sr_id in ids(search(stack, ehr, identifier="nl-core-xml-1", _lastUpdated=f"ge{stored_at}"))
    assert search(stack, ehr, identifier="nl-core-xml-1", _lastUpdated=f"lt{stored_at}")["total"] == 0
    assert search(stack, ehr, identifier="nl-core-xml-1", _lastUpdated=f"gt{day}")["total"] == 0


def test_date_prefixes_an_offset_sent_unencoded_and_the_not_modifier_find_what_the_specification_says(
        stack: Stack, xml_referral: NlCoreReferral) -> None:
    ehr = stack.client("ehr-delinde")
    sr_id = xml_referral.location("ServiceRequest").split("/")[1]
    stored_at = datetime.fromisoformat(read(stack, ehr, f"ServiceRequest/{sr_id}")["meta"]["lastUpdated"])

    def unencoded(query: str) -> dict[str, Any]:
        # As clients send it: the "+" of the offset is not percent-encoded, so it arrives as a space.
        response = ehr.http.get(f"{stack.url('triage')}/fhir/ServiceRequest?identifier=nl-core-xml-1&{query}",
                                headers=ehr.headers())
        assert response.status_code == 200, response.text
        return dict(response.json())

    in_amsterdam_winter = stored_at.astimezone(timezone(timedelta(hours=1))).isoformat()
    assert ids(unencoded("_lastUpdated=ge2026-11-01T00:00:00+01:00")) == [sr_id]
    assert ids(unencoded(f"_lastUpdated=ge{in_amsterdam_winter}")) == [sr_id]
    later = (stored_at + timedelta(microseconds=1)).astimezone(timezone(timedelta(hours=1))).isoformat()
    assert unencoded(f"_lastUpdated=ge{later}")["total"] == 0
    assert unencoded(f"_lastUpdated=lt{later}")["total"] == 1
    self_link = next(link["url"] for link in unencoded(f"_lastUpdated=ge{later}")["link"] if link["relation"] == "self")
    assert "_lastUpdated=ge" + later.replace("+", "%2B") in self_link  # read, and named, as "+01:00"

    everything = search(stack, ehr)["total"]
    assert everything >= 1
    before_2000 = search(stack, ehr, _lastUpdated="lt2000-01-01")
    assert (before_2000["type"], before_2000["total"], ids(before_2000)) == ("searchset", 0, [])
    assert search(stack, ehr, _lastUpdated="ge2000-01-01")["total"] == everything
    assert search(stack, ehr, _lastUpdated="sa2000")["total"] == everything
    assert search(stack, ehr, _lastUpdated="eb2000")["total"] == 0
    assert ids(search(stack, ehr, identifier="nl-core-xml-1", _lastUpdated=f"ap{stored_at.isoformat()}")) == [sr_id]
    assert search(stack, ehr, identifier="nl-core-xml-1", **{"status:not": "active"})["total"] == 0
    assert ids(search(stack, ehr, identifier="nl-core-xml-1", **{"status:not": "completed,revoked"})) == [sr_id]
    assert ids(search(stack, ehr, identifier="nl-core-xml-1", **{"patient:missing": "false"})) == [sr_id]
    assert search(stack, ehr, **{"identifier:not": "nl-core-xml-1"})["total"] == everything - 1


def test_unknown_parameters_are_ignored_and_left_out_of_the_self_link_unless_handling_is_strict(
        stack: Stack, xml_referral: NlCoreReferral) -> None:
    ehr = stack.client("ehr-delinde")
    sr_id = xml_referral.location("ServiceRequest").split("/")[1]
    lenient = search(stack, ehr, identifier="nl-core-xml-1", subject="Patient/1", _sort="-_lastUpdated")
    assert ids(lenient) == [sr_id]
    self_link = next(link["url"] for link in lenient["link"] if link["relation"] == "self")
    assert "identifier=nl-core-xml-1" in self_link and "subject" not in self_link and "_sort" not in self_link
    strict = fhir_get(stack, ehr, "ServiceRequest", {"Prefer": "handling=strict"}, identifier="nl-core-xml-1",
                      subject="Patient/1", _sort="-_lastUpdated")
    assert strict.status_code == 400
    assert strict.json()["issue"][0]["expression"] == ["subject", "_sort"]
    unsupported = fhir_get(stack, ehr, "ServiceRequest", {"Prefer": "handling=lenient"}, **{"status:text": "x"})
    assert unsupported.status_code == 400
    assert unsupported.json()["issue"][0]["expression"] == ["status:text"]
    assert ":text" in unsupported.json()["issue"][0]["diagnostics"]


def test_count_pages_through_all_matches_with_next_links_and_a_total(stack: Stack) -> None:
    zuidrand = stack.client("ehr-zuidrand")  # the only partner that refers in this module's paging test
    posted = []
    for _ in range(5):
        response = zuidrand.post_referral(referral_bundle(bsn=next(_BSNS), requester_ura="90000010", uzovi="9002"))
        assert response.status_code == 200, response.text
        posted.append(next(loc for loc in located(response) if loc.startswith("ServiceRequest/")).split("/")[1])
    page = search(stack, zuidrand, _count="2")
    seen, sizes = [], []
    while True:
        assert page["total"] == 5
        seen += ids(page)
        sizes.append(len(ids(page)))
        following = [link["url"] for link in page["link"] if link["relation"] == "next"]
        if not following:
            break
        assert following[0].startswith(f"{stack.url('triage')}/fhir/ServiceRequest?")
        response = zuidrand.http.get(following[0], headers=zuidrand.headers())
        assert response.status_code == 200, response.text
        page = response.json()
    assert sizes == [2, 2, 1]
    assert sorted(seen) == sorted(posted)
    only_total = search(stack, zuidrand, _count="0")
    assert only_total["total"] == 5 and ids(only_total) == []


def test_partner_finds_and_reads_only_its_own_referrals_and_the_front_door_sees_all(
        stack: Stack, xml_referral: NlCoreReferral) -> None:
    zuidrand, ops = stack.client("ehr-zuidrand"), stack.client("ops")
    delinde_sr = xml_referral.location("ServiceRequest")
    assert fhir_get(stack, zuidrand, delinde_sr).status_code == 404
    assert fhir_get(stack, zuidrand, f"{delinde_sr}/_history/1").status_code == 404
    assert fhir_get(stack, zuidrand, xml_referral.location("nl-core-Patient-01")).status_code == 404
    assert search(stack, zuidrand, identifier="nl-core-xml-1")["total"] == 0
    assert ids(search(stack, ops, identifier="nl-core-xml-1")) == [delinde_sr.split("/")[1]]
    assert fhir_get(stack, ops, delinde_sr).status_code == 200


def test_same_referral_identifier_from_another_organisation_is_refused_without_revealing_the_first(
        stack: Stack, xml_referral: NlCoreReferral) -> None:
    bundle = referral_bundle(bsn=next(_BSNS), requester_ura="90000010")
    bundle["entry"][-1]["resource"]["identifier"] = [{"system": REFERRAL_SYSTEM, "value": "nl-core-xml-1"}]
    response = stack.client("ehr-zuidrand").post_referral(bundle)
    assert response.status_code == 409
    assert xml_referral.location("ServiceRequest").split("/")[1] not in response.text


def _bsn_failing_eleven_proof(bundle: dict[str, Any]) -> None:
    bundle["entry"][0]["resource"]["identifier"][0]["value"] = "123456789"
    bundle["entry"][0]["request"].pop("ifNoneExist")


def _batch(bundle: dict[str, Any]) -> None:
    bundle["type"] = "batch"


def _requester_without_agb_or_ura(bundle: dict[str, Any]) -> None:
    bundle["entry"][1]["resource"]["identifier"] = [{"system": "http://fhir.nl/fhir/NamingSystem/kvk",
                                                      "value": "12345678"}]
    bundle["entry"][1]["request"].pop("ifNoneExist")


def _second_service_request(bundle: dict[str, Any]) -> None:
    extra = copy.deepcopy(bundle["entry"][-1])
    extra["fullUrl"] = "urn:uuid:0f0e0d0c-0000-4000-8000-000000000001"
    bundle["entry"].append(extra)


def _put_entry(bundle: dict[str, Any]) -> None:
    bundle["entry"][3]["request"] = {"method": "PUT", "url": "Coverage/1"}


@pytest.mark.parametrize(("change", "location"), [
    (_bsn_failing_eleven_proof, "Bundle.entry[0].resource.identifier[0].value"),
    (_batch, "Bundle.type"),
    (_requester_without_agb_or_ura, "Bundle.entry[4].resource.requester"),
    (_second_service_request, "Bundle.entry"),
    (_put_entry, "Bundle.entry[3].request.method"),
])
def test_invalid_referral_gets_422_with_the_location_and_stores_nothing(stack: Stack, change: Any,
                                                                        location: str) -> None:
    ehr, ops = stack.client("ehr-delinde"), stack.client("ops")
    before = ops.worklist("open,triaged,closed")
    referral_id = f"refused-{location}"
    bundle = referral_bundle(bsn=next(_BSNS), referral_id=referral_id)
    change(bundle)
    response = ehr.post_referral(bundle)
    assert response.status_code == 422, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert location in {i["expression"][0] for i in outcome["issue"]}
    assert ops.worklist("open,triaged,closed") == before
    assert search(stack, ops, identifier=referral_id)["total"] == 0


DANGLING = "urn:uuid:75ca5045-3136-4da5-8f17-03448485e22b"


def test_a_placeholder_no_entry_has_fails_the_transaction_at_its_reference_and_stores_nothing(stack: Stack) -> None:
    ehr, ops = stack.client("ehr-delinde"), stack.client("ops")
    before = ops.worklist("open,triaged,closed")
    bundle = referral_bundle(bsn=next(_BSNS), referral_id="dangling-reason")
    bundle["entry"][4]["resource"]["reasonReference"] = [{"reference": DANGLING}]
    response = ehr.post_referral(bundle)
    assert response.status_code == 422, response.text
    assert [issue["expression"] for issue in response.json()["issue"]] == [
        ["Bundle.entry[4].resource.reasonReference[0]"]]
    assert ops.worklist("open,triaged,closed") == before
    assert search(stack, ops, identifier="dangling-reason")["total"] == 0


def observation_entry(bundle: dict[str, Any], **empty: Any) -> dict[str, Any]:
    observation = {"resourceType": "Observation", "status": "final", "code": {"text": "Ademfrequentie"},
                   "subject": {"reference": bundle["entry"][0]["fullUrl"]}, **empty}
    return {"fullUrl": "urn:uuid:3a7d0c52-0000-4000-8000-000000000001", "resource": observation,
            "request": {"method": "POST", "url": "Observation"}}


@pytest.mark.parametrize(("empty", "as_xml", "locations"), [
    ({"identifier": [{}]}, False, ["Bundle.entry[5].resource.identifier[0]"]),
    ({"note": []}, False, ["Bundle.entry[5].resource.note"]),
    ({"code": {}}, False, ["Bundle.entry[5].resource.code"]),
    ({"identifier": [{}], "code": {}, "note": [{"text": ""}]}, True,
     ["Bundle.entry[5].resource.identifier[0]", "Bundle.entry[5].resource.code",
      "Bundle.entry[5].resource.note[0].text"]),
], ids=["identifier", "note", "code", "xml"])
def test_an_empty_element_anywhere_is_400_naming_each_and_stores_nothing(stack: Stack, empty: dict[str, Any],
                                                                       as_xml: bool, locations: list[str]) -> None:
    ehr, ops = stack.client("ehr-delinde"), stack.client("ops")
    before = ops.worklist("open,triaged,closed")
    referral_id = f"empty-{'-'.join(empty)}-{as_xml}"
    bundle = referral_bundle(bsn=next(_BSNS), referral_id=referral_id)
    bundle["entry"].append(observation_entry(bundle, **empty))
    response = ehr.http.post(f"{stack.url('triage')}/fhir", content=to_xml(bundle) if as_xml else json.dumps(bundle),
                             headers=ehr.headers({"Content-Type": FHIR_XML if as_xml else FHIR_JSON}))
    assert response.status_code == 400, response.text
    assert sorted(issue["expression"][0] for issue in response.json()["issue"]) == sorted(locations)
    assert ops.worklist("open,triaged,closed") == before
    assert search(stack, ops, identifier=referral_id)["total"] == 0


BILLION_LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
                  b'<Bundle xmlns="http://hl7.org/fhir"><type value="&lol2;"/></Bundle>')
EXTERNAL_ENTITY = (b'<?xml version="1.0"?><!DOCTYPE b [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                   b'<Bundle xmlns="http://hl7.org/fhir"><type value="&x;"/></Bundle>')


@pytest.mark.parametrize(("path", "body", "content_type", "status"), [
    ("", b"{not json", FHIR_JSON, 400),
    ("", b"[1, 2]", FHIR_JSON, 400),
    ("", b'{"a": 1, "a": 2}', FHIR_JSON, 400),
    ("", b"\xff\xfe{}", FHIR_JSON, 400),
    ("", b"[" * 100_000, FHIR_JSON, 400),
    ("", b"<Bundle xmlns='http://hl7.org/fhir'><type value='transaction'/>", FHIR_XML, 400),
    ("", BILLION_LAUGHS, FHIR_XML, 400),
    ("", EXTERNAL_ENTITY, FHIR_XML, 400),
    ("", b"<Bundle xmlns='urn:not-fhir'/>", FHIR_XML, 400),
    ("", b"{}", "text/plain", 415),
    ("", b'{"resourceType": "Bundle", "type": "transaction", "entry": ["x", {"request": "POST"}]}', FHIR_JSON, 422),
    ("", b'{"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": {"resourceType": "ServiceRequest",'
         b' "status": "active", "intent": "order", "subject": "Patient/1", "requester": ["x"]}}]}', FHIR_JSON, 422),
    ("/ServiceRequest", b"{not json", FHIR_JSON, 400),
    ("/ServiceRequest", b'{"resourceType": "Patient"}', FHIR_JSON, 422),
    ("/ServiceRequest", b"<ServiceRequest xmlns='http://hl7.org/fhir'><status value='active'/></ServiceRequest>",
     FHIR_XML, 422),
    ("/ServiceRequest", b"<x/>", "application/xml", 400),
    ("/ServiceRequest", b'{"resourceType": "ServiceRequest", "note": [{"text": "nul \\u0000"}]}', FHIR_JSON, 400),
    # Parsed fine, but deeper than validating can walk: refused, not a 500.
    ("/ServiceRequest", b'{"resourceType": "ServiceRequest", "extension": ['
     + b'{"url": "http://x", "extension": [' * 400 + b'{"url": "http://x", "valueString": "a"}' + b"]}" * 400 + b"]}",
     FHIR_JSON, 422),
])
def test_unreadable_or_unusable_bodies_get_a_4xx_operation_outcome(stack: Stack, path: str, body: bytes,
                                                                   content_type: str, status: int) -> None:
    ehr = stack.client("ehr-delinde")
    response = ehr.http.post(f"{stack.url('triage')}/fhir{path}", content=body,
                             headers=ehr.headers({"Content-Type": content_type}))
    assert response.status_code == status, response.text
    assert response.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(("path", "params", "status"), [
    ("ServiceRequest", {"status:text": "active"}, 400),
    ("ServiceRequest", {"identifier:of-type": "x"}, 400),
    ("ServiceRequest", {"_lastUpdated:not": "2026"}, 400),
    ("ServiceRequest", {"patient:missing": "maybe"}, 400),
    ("ServiceRequest", {"_count": "-1"}, 400),
    ("ServiceRequest", {"_count": "many"}, 400),
    ("ServiceRequest", {"_offset": "1.5"}, 400),
    ("ServiceRequest", {"_offset": "99999999999999999999999"}, 400),
    ("ServiceRequest", {"identifier": "a\x00b"}, 400),
    ("ServiceRequest", {"_lastUpdated": "yesterday"}, 400),
    ("ServiceRequest", {"_lastUpdated": "2026-02-30"}, 400),
    ("ServiceRequest", {"_lastUpdated": "ge2026-11-01T00:00:00+25:00"}, 400),
    ("ServiceRequest", {"_format": "text/html"}, 406),
    ("ServiceRequest/x/_history/%00", {}, 404),
    ("Basic/1", {}, 404),
    ("Patient/does-not-exist", {}, 404),
])
def test_unknown_or_malformed_search_and_read_parameters_get_a_4xx_operation_outcome(
        stack: Stack, path: str, params: dict[str, str], status: int) -> None:
    response = fhir_get(stack, stack.client("ehr-delinde"), path, **params)
    assert response.status_code == status, response.text
    assert response.json()["resourceType"] == "OperationOutcome"


def test_service_request_posted_on_its_own_is_created_once_and_only_for_a_patient_the_partner_may_see(
        stack: Stack) -> None:
    ehr = stack.client("ehr-delinde")
    transaction = ehr.post_referral(referral_bundle(bsn=next(_BSNS)))
    patient = located(transaction)[0]
    request = {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
               "subject": {"reference": patient},
               "requester": {"identifier": {"system": AGB_SYSTEM, "value": "01000001"}}}
    url = f"{stack.url('triage')}/fhir/ServiceRequest"
    created = ehr.http.post(url, content=to_xml({**request, "identifier": [{"system": REFERRAL_SYSTEM,
                                                                              "value": "own-1"}]}),
                            headers=ehr.headers({"Content-Type": FHIR_XML}))
    assert created.status_code == 201, created.text
    assert created.headers["content-type"].startswith(FHIR_XML)  # answered in the format it was posted in
    stored = parse_body(created.content, FHIR_XML)
    assert created.headers["Location"] == f"{stack.url('triage')}/fhir/ServiceRequest/{stored['id']}/_history/1"
    assert created.headers["ETag"] == 'W/"1"' and stored["subject"] == {"reference": patient}

    conditional = {"Content-Type": FHIR_JSON, "If-None-Exist": f"identifier={REFERRAL_SYSTEM}|own-1"}
    retried = ehr.http.post(url, json=request, headers=ehr.headers(conditional))
    assert retried.status_code == 200 and retried.json()["id"] == stored["id"]
    assert search(stack, ehr, identifier=f"{REFERRAL_SYSTEM}|own-1")["total"] == 1

    zuidrand = stack.client("ehr-zuidrand")
    foreign = zuidrand.http.post(url, json={"resourceType": "ServiceRequest", "status": "active", "intent": "order",
                                            "subject": {"reference": patient},
                                            "requester": {"identifier": {"system": AGB_SYSTEM, "value": "01000002"}}},
                                 headers=zuidrand.headers({"Content-Type": FHIR_JSON}))
    assert foreign.status_code == 422
    assert [i["expression"] for i in foreign.json()["issue"]] == [["ServiceRequest.subject"]]


def test_capability_statement_states_the_interactions_and_search_parameters_served(stack: Stack) -> None:
    statement = httpx.get(f"{stack.url('triage')}/fhir/metadata").json()
    rest = statement["rest"][0]
    assert [i["code"] for i in rest["interaction"]] == ["transaction"]
    resources = {r["type"]: r for r in rest["resource"]}
    sr = resources["ServiceRequest"]
    assert [i["code"] for i in sr["interaction"]] == ["create", "read", "vread", "search-type"]
    assert sorted(p["name"] for p in sr["searchParam"]) == ["_id", "_lastUpdated", "identifier", "patient", "status"]
    documented = {p["name"]: p["documentation"] for p in sr["searchParam"]}
    assert "Modifiers: :not, :missing;" in documented["status"]
    assert "Modifiers: :not, :missing;" in documented["identifier"]
    assert "Modifiers: :missing;" in documented["patient"]
    assert "Prefixes: eq ne gt lt ge le sa eb ap" in documented["_lastUpdated"]
    assert {p["name"]: p["type"] for p in resources["AuditEvent"]["searchParam"]} == {"patient": "reference",
                                                                                     "date": "date"}
    assert "handling=strict" in sr["documentation"] and "_count 0 to 500" in sr["documentation"]
    assert sr["conditionalRead"] == "not-match" and sr["conditionalCreate"] is True
    assert [i["code"] for i in resources["Patient"]["interaction"]] == ["read", "vread"]
    as_xml = httpx.get(f"{stack.url('triage')}/fhir/metadata", params={"_format": "xml"})
    assert ET.fromstring(as_xml.content).tag == "{http://hl7.org/fhir}CapabilityStatement"


def test_fhirpy_creates_reads_refreshes_and_searches_service_requests(stack: Stack) -> None:
    ehr = stack.client("ehr-delinde")
    fhir = SyncFHIRClient(f"{stack.url('triage')}/fhir", authorization=f"Bearer {ehr.token()}")
    transaction = fhir.execute("/", method="post", data=referral_bundle(bsn=next(_BSNS)))
    locations = [e["response"]["location"].rsplit("/_history/", 1)[0] for e in transaction["entry"]]
    patient, organization = locations[0], locations[1]

    created = fhir.resource("ServiceRequest", identifier=[{"system": REFERRAL_SYSTEM, "value": "fhirpy-1"}],
                            status="active", intent="order", priority="asap",
                            code={"text": "Visite aan huis"}, subject={"reference": patient},
                            requester={"reference": organization})
    created.save()
    assert created.id and created["meta"]["versionId"] == "1"
    fetched = fhir.reference("ServiceRequest", created.id).to_resource()
    assert fetched.serialize() == created.serialize()
    fetched.refresh()  # fhirpy sends If-None-Match and keeps its copy on 304
    assert fetched.serialize() == created.serialize()

    again = fhir.resource("ServiceRequest", **{k: v for k, v in created.serialize().items()
                                               if k not in ("id", "meta")})
    again.save()
    assert again.id == created.id, "the same identifier is the same referral"

    found = fhir.resources("ServiceRequest").search(identifier=f"{REFERRAL_SYSTEM}|fhirpy-1").fetch()
    assert [r.id for r in found] == [created.id]
    assert fhir.resources("ServiceRequest").search(patient=patient).count() == 2  # _count=0 and fhirpy's own extra
    assert fhir.resources("ServiceRequest").search(patient=patient, _lastUpdated="lt2000-01-01").count() == 0
    of_patient = fhir.resources("ServiceRequest").search(patient=patient).limit(1).fetch_all()
    assert len(of_patient) == 2 and created.id in [r.id for r in of_patient]

    with pytest.raises(FhirpyOperationOutcome) as refused:
        fhir.resource("ServiceRequest", status="active", subject={"reference": patient},
                      requester={"identifier": {"system": AGB_SYSTEM, "value": "01000001"}}).save()
    assert refused.value.resource["issue"][0]["expression"] == ["ServiceRequest.intent"]
    other = SyncFHIRClient(f"{stack.url('triage')}/fhir",
                           authorization=f"Bearer {stack.client('ehr-zuidrand').token()}")
    assert other.resources("ServiceRequest").search(identifier=f"{REFERRAL_SYSTEM}|fhirpy-1").fetch() == []
