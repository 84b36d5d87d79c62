"""The Task API a partner EHR and the front door rely on: versions, history, PUT and FHIRPath Patch,
reassignment, paging."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from infra.client import ACT_CODE, TASK_OUTPUT, completion_patch, service_request_of
from infra.referrals import referral_bundle
from infra.stack import Stack
from tests.conftest import started_stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from started_stack(tmp_path_factory, "tasks")


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


def started_task(stack: Stack, bsn: str) -> tuple[dict[str, Any], str]:
    """A Task of Wijkverpleging Oost, accepted and in progress, and its URL."""
    wijk = stack.client("ehr-wijk-oost")
    task = new_task(stack, bsn, "URA 90000020", "ehr-wijk-oost")
    for status in ("accepted", "in-progress"):
        assert wijk.patch_task(task["id"], [{"op": "replace", "path": "/status", "value": status}]).status_code == 200
    return task, f"{stack.url('coordination')}/fhir/Task/{task['id']}"


def fhirpath_completion(start: str, end: str) -> dict[str, Any]:
    """The owner's completion as FHIRPath Patch: status, executionPeriod, and the delivered contact built from parts."""
    def operation(*parts: dict[str, Any]) -> dict[str, Any]:
        return {"name": "operation", "part": list(parts)}
    return {"resourceType": "Parameters", "parameter": [
        operation({"name": "type", "valueCode": "replace"}, {"name": "path", "valueString": "Task.status"},
                  {"name": "value", "valueCode": "completed"}),
        operation({"name": "type", "valueCode": "add"}, {"name": "path", "valueString": "Task"},
                  {"name": "name", "valueString": "executionPeriod"},
                  {"name": "value", "valuePeriod": {"start": start, "end": end}}),
        operation({"name": "type", "valueCode": "add"}, {"name": "path", "valueString": "Task"},
                  {"name": "name", "valueString": "output"},
                  {"name": "value", "part": [
                      {"name": "type", "valueCodeableConcept": {"coding": [{"system": TASK_OUTPUT,
                                                                             "code": "delivered-contact"}]}},
                      {"name": "value", "valueCoding": {"system": ACT_CODE, "code": "HH"}}]})]}


def test_fhirpath_patch_completes_a_task_with_its_delivered_contact_as_the_json_patch_does(stack: Stack) -> None:
    wijk = stack.client("ehr-wijk-oost")
    by_fhirpath, url = started_task(stack, "999990056")
    by_json, _ = started_task(stack, "999990068")
    now = datetime.now(UTC)
    start, end = (now - timedelta(seconds=1)).isoformat(), now.isoformat()
    completed = httpx.patch(url, headers=wijk.headers({"Content-Type": "application/fhir+json"}),
                            json=fhirpath_completion(start, end))
    assert completed.status_code == 200, completed.text
    assert completed.headers["ETag"] == 'W/"4"'
    reference = wijk.patch_task(by_json["id"], completion_patch(contact="HH", start=start, end=end))
    assert reference.status_code == 200, reference.text

    def outcome(task: dict[str, Any]) -> dict[str, Any]:
        return {key: task.get(key) for key in ("status", "executionPeriod", "output")}
    assert outcome(completed.json()) == outcome(reference.json())
    assert completed.json()["output"] == [{"type": {"coding": [{"system": TASK_OUTPUT, "code": "delivered-contact"}]},
                                           "valueCoding": {"system": ACT_CODE, "code": "HH"}}]
    for task in (by_fhirpath, by_json):
        encounters = httpx.get(f"{stack.url('coordination')}/fhir/Encounter", headers=wijk.headers(),
                               params={"patient": task["for"]["identifier"]["value"]}).json()
        assert [(e["resource"]["class"]["code"], e["resource"]["period"]["start"]) for e in encounters["entry"]] \
            == [("HH", start)]


def test_a_contact_before_the_request_was_received_is_422_on_patch_and_put_and_changes_nothing(stack: Stack) -> None:
    wijk = stack.client("ehr-wijk-oost")
    task, url = started_task(stack, "999990081")
    # As the README's walk-through once did: a home visit a week before the referral came in.
    week_before = datetime.now(UTC) - timedelta(days=8)
    start, end = week_before.isoformat(), (week_before + timedelta(minutes=30)).isoformat()
    patched = wijk.patch_task(task["id"], completion_patch(contact="HH", start=start, end=end))
    assert patched.status_code == 422, patched.text
    assert [i["expression"] for i in patched.json()["issue"]] == [["Task.executionPeriod.start"]]
    by_fhirpath = httpx.patch(url, headers=wijk.headers({"Content-Type": "application/fhir+json"}),
                              json=fhirpath_completion(start, end))
    assert by_fhirpath.status_code == 422
    assert [i["expression"] for i in by_fhirpath.json()["issue"]] == [["Task.executionPeriod.start"]]
    current = httpx.get(url, headers=wijk.headers())
    whole = {**current.json(), "status": "completed", "executionPeriod": {"start": start, "end": end}}
    put = httpx.put(url, headers=wijk.headers({"If-Match": current.headers["ETag"]}), json=whole)
    assert put.status_code == 422
    assert [i["expression"] for i in put.json()["issue"]] == [["Task.executionPeriod.start"]]
    assert httpx.get(url, headers=wijk.headers()).json()["status"] == "in-progress"
    assert httpx.get(url, headers=wijk.headers()).headers["ETag"] == current.headers["ETag"]


@pytest.mark.parametrize(("method", "content_type", "body", "status"), [
    ("PATCH", "application/fhir+json", b'{"resourceType": "Parameters", "parameter": []}', 400),
    ("PATCH", "application/fhir+json", b'{"resourceType": "Parameters", "parameter": [{"name": "operation", '
                                       b'"part": [{"name": "type", "valueCode": "add"}, {"name": "path", '
                                       b'"valueString": "Task"}, {"name": "name", "valueString": "note"}, '
                                       b'{"name": "value", "part": [{"name": "text", "valueMarkdown": ""}]}]}]}', 400),
    ("PATCH", "application/fhir+json", b'{"resourceType": "Parameters", "parameter": "add"}', 400),
    ("PATCH", "application/fhir+json", b"[1]", 400),
    ("PATCH", "application/json-patch+json", b'[{"op": "add", "path": "/businessStatus", "value": {}}]', 400),
    ("PATCH", "application/json-patch+json", b'[{"op": "add", "path": "/statusReason", "value": "busy"}]', 422),
    ("PATCH", "application/json-patch+json", b'[{"op": "add", "path": "/output", "value": "HH"}]', 422),
    ("PATCH", "application/json-patch+json", b'[{"op": "replace", "path": "", "value": 1}]', 422),
    ("PATCH", "application/fhir+xml", b"<Parameters xmlns='http://hl7.org/fhir'/>", 415),
    ("PUT", "application/fhir+json", b'{"resourceType": "Task", "note": []}', 400),
    ("PUT", "application/fhir+json", b"[]", 400),
])
def test_task_writes_that_are_not_valid_fhir_get_a_4xx_operation_outcome(stack: Stack, requested_task: str,
                                                                         method: str, content_type: str, body: bytes,
                                                                         status: int) -> None:
    wijk = stack.client("ehr-wijk-oost")
    response = httpx.request(method, f"{stack.url('coordination')}/fhir/Task/{requested_task}", content=body,
                             headers=wijk.headers({"Content-Type": content_type, "If-Match": 'W/"1"'}))
    assert response.status_code == status, response.text
    assert response.json()["resourceType"] == "OperationOutcome"
    assert httpx.get(f"{stack.url('coordination')}/fhir/Task/{requested_task}",
                     headers=wijk.headers()).headers["ETag"] == 'W/"1"'


@pytest.fixture(scope="module")
def requested_task(stack: Stack) -> str:
    return str(new_task(stack, "999990093", "URA 90000020", "ehr-wijk-oost")["id"])
