"""The Task API a partner EHR and the front door rely on: versions, history, PUT and FHIRPath Patch,
reassignment, paging."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from infra.client import service_request_of
from infra.referrals import referral_bundle
from infra.stack import Stack
from tests.conftest import started_stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from started_stack(tmp_path_factory, "tasks")


def wait_until(check: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.25)


def new_task(stack: Stack, bsn: str, organisation: str, owner_client: str) -> dict[str, Any]:
    ops = stack.client("ops")
    posted = stack.client("ehr-delinde").post_referral(referral_bundle(bsn=bsn))
    sr = service_request_of(posted.json())
    request_id = ops.request_for(sr)["id"]
    ops.triage_request(request_id, urgency="U3", disposition="home-visit", organization=organisation) \
        .raise_for_status()
    return stack.client(owner_client).wait_for_task(request_id)


def test_fhirpath_patch_put_with_if_match_history_and_vread(stack: Stack) -> None:
    wijk = stack.client("ehr-wijk-oost")
    task = new_task(stack, "999990007", "URA 90000020", "ehr-wijk-oost")
    base = f"{stack.url('coordination')}/fhir/Task/{task['id']}"
    accepted = httpx.patch(base, headers=wijk.headers({"Content-Type": "application/fhir+json"}), json={
        "resourceType": "Parameters", "parameter": [{"name": "operation", "part": [
            {"name": "type", "valueCode": "replace"}, {"name": "path", "valueString": "Task.status"},
            {"name": "value", "valueCode": "accepted"}]}]})
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    current = httpx.get(base, headers=wijk.headers())
    assert current.headers["ETag"] == 'W/"2"'
    body = {**current.json(), "status": "in-progress", "businessStatus": {"text": "onderweg"}}
    assert httpx.put(base, headers=wijk.headers(), json=body).status_code == 428
    assert httpx.put(base, headers=wijk.headers({"If-Match": 'W/"1"'}), json=body).status_code == 412
    updated = httpx.put(base, headers=wijk.headers({"If-Match": 'W/"2"'}), json=body)
    assert updated.status_code == 200 and updated.json()["businessStatus"]["text"] == "onderweg"
    sneaky = {**updated.json(), "priority": "stat"}
    assert httpx.put(base, headers=wijk.headers({"If-Match": 'W/"3"'}), json=sneaky).status_code == 422
    history = httpx.get(f"{base}/_history", headers=wijk.headers()).json()
    assert [e["resource"]["status"] for e in history["entry"]] == ["in-progress", "accepted", "requested"]
    first = httpx.get(f"{base}/_history/1", headers=wijk.headers())
    assert first.json()["status"] == "requested" and first.headers["ETag"] == 'W/"1"'


def test_front_door_reassigns_a_rejected_task_and_the_new_owner_finds_it(stack: Stack) -> None:
    wijk, ops, zuidrand = stack.client("ehr-wijk-oost"), stack.client("ops"), stack.client("ehr-zuidrand")
    task = new_task(stack, "999990019", "URA 90000020", "ehr-wijk-oost")
    rejected = wijk.patch_task(task["id"], [
        {"op": "replace", "path": "/status", "value": "rejected"},
        {"op": "add", "path": "/statusReason", "value": {"text": "geen capaciteit"}}])
    assert rejected.status_code == 200
    move = [{"op": "replace", "path": "/owner", "value": {"identifier": {
        "system": "http://fhir.nl/fhir/NamingSystem/ura", "value": "90000010"}}}]
    assert wijk.patch_task(task["id"], move).status_code == 403  # the owner cannot hand it on
    moved = ops.patch_task(task["id"], move)
    assert moved.status_code == 200, moved.text
    assert moved.json()["status"] == "requested" and moved.json()["owner"]["identifier"]["value"] == "90000010"
    assert task["id"] in [t["id"] for t in zuidrand.tasks(status="requested")]
    assert task["id"] not in [t["id"] for t in wijk.tasks()]


def test_search_pages_with_a_next_link(stack: Stack) -> None:
    ops = stack.client("ops")
    for bsn in ("999990020", "999990032", "999990044"):
        new_task(stack, bsn, "URA 90000020", "ehr-wijk-oost")
    first = httpx.get(f"{stack.url('coordination')}/fhir/Task", params={"_count": "2"}, headers=ops.headers()).json()
    assert len(first["entry"]) == 2
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    second = httpx.get(next_url, headers=ops.headers()).json()
    seen = [e["resource"]["id"] for e in first["entry"] + second["entry"]]
    assert len(seen) == len(set(seen)) and len(second["entry"]) >= 1


def included(stack: Stack, client: str, task_id: str) -> httpx.Response:
    api = stack.client(client)
    return httpx.get(f"{stack.url('coordination')}/fhir/Task", headers=api.headers(), params=[
        ("_id", task_id), ("_include", "Task:patient"), ("_include", "Task:focus")])


def test_the_owner_reads_what_to_do_and_for_whom_and_a_stranger_gets_nothing(stack: Stack) -> None:
    triage, coordination = stack.url("triage"), stack.url("coordination")
    ops, wijk, zuidrand = stack.client("ops"), stack.client("ehr-wijk-oost"), stack.client("ehr-zuidrand")
    posted = stack.client("ehr-delinde").post_referral(referral_bundle(
        bsn="999990056", given="Fatma", family="Yılmaz", birth_date="1990-04-17", gender="female",
        address=("Lindelaan 12", "1234 AB", "Oostdorp"), phone="06-11223344", reason="Koorts en rillingen, wond rood"))
    sr = service_request_of(posted.json())
    request_id = ops.request_for(sr)["id"]
    ops.triage_request(request_id, urgency="U2", disposition="home-visit", organization="URA 90000020",
                       note="Wond beoordelen, zo nodig huisarts bellen").raise_for_status()
    found = wijk.wait_for_task(request_id)

    def with_phone() -> dict[str, Any] | None:  # the patient and the routing order come on different topics
        task = httpx.get(f"{coordination}/fhir/Task/{found['id']}", headers=wijk.headers()).json()
        return task if any(i["type"]["coding"][0]["code"] == "contact-phone" for i in task["input"]) else None

    task = wait_until(with_phone)
    patient_url = task["for"]["reference"]
    assert patient_url.startswith(f"{triage}/fhir/Patient/") and task["for"]["identifier"]["value"].startswith("p-")
    assert task["focus"] == {"reference": f"{triage}/fhir/{sr}"}
    assert task["description"] == "Koorts en rillingen, wond rood"
    assert task["note"] == [{"text": "Wond beoordelen, zo nodig huisarts bellen"}]
    inputs = {i["type"]["coding"][0]["code"]: i for i in task["input"]}
    assert inputs["urgency"]["valueCodeableConcept"]["coding"][0]["code"] == "U2"
    assert inputs["target-time"]["valueDateTime"] == task["restriction"]["period"]["end"]
    assert inputs["referrer"]["valueReference"] == {
        "identifier": {"system": "http://fhir.nl/fhir/NamingSystem/agb-z", "value": "01000001"},
        "display": "Huisartsenpraktijk De Linde"}
    assert inputs["contact-phone"]["valueContactPoint"] == {"system": "phone", "value": "06-11223344"}

    bundle = included(stack, "ehr-wijk-oost", task["id"])
    assert bundle.status_code == 200, bundle.text
    entries = {e["fullUrl"]: e for e in bundle.json()["entry"]}
    assert [e["search"]["mode"] for e in bundle.json()["entry"]] == ["match", "include", "include"]
    patient = entries[patient_url]["resource"]
    assert patient["resourceType"] == "Patient" and patient["name"][0]["family"] == "Yılmaz"
    assert patient["address"][0]["line"] == ["Lindelaan 12"] and patient["telecom"][0]["value"] == "06-11223344"
    referral = entries[task["focus"]["reference"]]["resource"]
    assert referral["resourceType"] == "ServiceRequest" and f"ServiceRequest/{referral['id']}" == sr
    assert referral["reasonCode"] == [{"text": "Koorts en rillingen, wond rood"}]

    # Ziekenhuis Zuidrand neither owns nor requested it: the Task is not there, and neither is the patient.
    refused = httpx.get(f"{coordination}/fhir/Task/{task['id']}", headers=zuidrand.headers())
    assert refused.status_code == 404 and refused.json()["resourceType"] == "OperationOutcome"
    stranger = included(stack, "ehr-zuidrand", task["id"])
    assert stranger.status_code == 200 and stranger.json()["total"] == 0 and stranger.json()["entry"] == []
    assert "Yılmaz" not in stranger.text and "06-11223344" not in stranger.text
    unknown = httpx.get(f"{coordination}/fhir/Task", params={"_include": "Task:owner"}, headers=wijk.headers())
    assert unknown.status_code == 400 and unknown.json()["issue"][0]["expression"] == ["_include"]
    stated = next(r for r in httpx.get(f"{coordination}/fhir/metadata").json()["rest"][0]["resource"]
                  if r["type"] == "Task")
    assert stated["searchInclude"] == ["Task:patient", "Task:focus"] and "_id" in [p["name"] for p in
                                                                                  stated["searchParam"]]

    audit = httpx.get(f"{coordination}/fhir/AuditEvent", headers=ops.headers(),
                      params={"patient": task["for"]["identifier"]["value"], "_count": "200"}).json()
    reads = [e["resource"] for e in audit["entry"] if "_include of Task/" in e["resource"]["entity"][-1]["what"]
             .get("display", "")]
    assert {r["entity"][-1]["what"]["display"].split(" ")[0] for r in reads} == {
        patient_url.split("/fhir/")[1], sr}
    assert all(r["agent"][0]["onBehalfOf"]["identifier"]["value"] == "90000020" and
               r["agent"][0]["purposeOfUse"][0]["coding"][0]["code"] == "TREAT" for r in reads)

    # A later referral with a new address: the request is linked, and coordination knows the patient anew.
    again = stack.client("ehr-delinde").post_referral(referral_bundle(
        bsn="999990056", given="Fatma", family="Yılmaz", birth_date="1990-04-17", gender="female",
        address=("Nieuwe Haven 3", "4321 BA", "Westdorp"), reason="Koorts stijgt"))
    assert again.status_code == 200, again.text

    def moved() -> dict[str, Any] | None:
        body = included(stack, "ehr-wijk-oost", task["id"]).json()
        person = next(e["resource"] for e in body["entry"] if e["resource"]["resourceType"] == "Patient")
        return person if person["address"][0]["line"] == ["Nieuwe Haven 3"] else None

    person = wait_until(moved)
    assert person["meta"]["versionId"] == "2" and person["telecom"][0]["value"] == "06-11223344"
    listed = httpx.get(f"{coordination}/api/v1/patients", headers=ops.headers(),
                       params={"name": "yılmaz", "birthdate": "1990-04-17"}).json()["items"]
    assert [(p["name"], p["address"], p["phone"], p["age"] >= 36) for p in listed] == [
        ("Fatma Yılmaz", "Nieuwe Haven 3, 4321 BA Westdorp", "06-11223344", True)]


def test_a_phone_call_gets_a_service_request_of_the_front_door_as_the_tasks_focus(stack: Stack) -> None:
    ops, wijk = stack.client("ops"), stack.client("ehr-wijk-oost")
    response = ops.http.post(f"{stack.url('triage')}/api/v1/requests", headers=ops.headers(), json={
        "channel": "phone", "patient": {"bsn": "999990068", "name": "Kees Meijer", "birth_date": "1946-12-19"},
        "uzovi": "9002", "complaint": "Verward sinds gisteren", "caller": "relative", "callback_phone": "0201234567",
        "address": {"line": "Kerkstraat 5", "postal_code": "1111 AA", "city": "Oostdorp"}})
    assert response.status_code == 201, response.text
    item = response.json()["request"]
    assert item["service_request"] and item["service_request"].startswith("ServiceRequest/")
    own = httpx.get(f"{stack.url('triage')}/fhir/{item['service_request']}", headers=ops.headers())
    assert own.status_code == 200 and own.json()["reasonCode"] == [{"text": "Verward sinds gisteren"}]
    ops.triage_request(item["id"], urgency="U3", disposition="home-visit", organization="URA 90000020") \
        .raise_for_status()
    task = wait_until(lambda: next((t for t in wijk.tasks(status="requested")
                                    if t["basedOn"][0]["identifier"]["value"] == item["id"]
                                    and any(i["type"]["coding"][0]["code"] == "contact-phone" for i in t["input"])),
                                   None))
    assert task["focus"]["reference"] == f"{stack.url('triage')}/fhir/{item['service_request']}"
    referrer = next(i for i in task["input"] if i["type"]["coding"][0]["code"] == "referrer")
    assert referrer["valueReference"]["display"] == "Spoedzorg Regio Demo"
    phone = next(i for i in task["input"] if i["type"]["coding"][0]["code"] == "contact-phone")
    assert phone["valueContactPoint"]["value"] == "0201234567"  # the relative who called
    bad = ops.http.post(f"{stack.url('triage')}/api/v1/requests", headers=ops.headers(), json={
        "channel": "phone", "patient": {"name": "X"}, "callback_phone": "bel me"})
    assert bad.status_code == 422 and bad.json()["issue"][0]["expression"] == ["callback_phone"]
