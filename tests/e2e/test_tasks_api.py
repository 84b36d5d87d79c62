"""The Task API a partner EHR and the front door rely on: versions, history, PUT and FHIRPath Patch,
reassignment, paging."""

from __future__ import annotations

from collections.abc import Iterator
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
