"""What partners and insurers get when they send something wrong: a precise 4xx, nothing half-written."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from infra.client import ApiClient, service_request_of
from infra.referrals import referral_bundle
from infra.stack import Stack
from tests.conftest import started_stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from started_stack(tmp_path_factory, "refusals")


def test_token_endpoint_refuses_wrong_secret_unknown_grant_and_scope_escalation(stack: Stack) -> None:
    token_url = f"{stack.url('triage')}/oauth/token"
    wrong = httpx.post(token_url, data={"grant_type": "client_credentials"}, auth=("ehr-delinde", "guess"))
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    grant = httpx.post(token_url, data={"grant_type": "password"}, auth=("ehr-delinde", "demo-ehr-delinde"))
    assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"
    escalate = httpx.post(token_url, data={"grant_type": "client_credentials", "scope": "system/Task.cruds"},
                          auth=("ehr-delinde", "demo-ehr-delinde"))
    assert escalate.status_code == 400 and escalate.json()["error"] == "invalid_scope"
    granted = httpx.post(token_url, data={"grant_type": "client_credentials"}, auth=("ehr-delinde", "demo-ehr-delinde"))
    body = granted.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] <= 300


def test_tampered_token_and_missing_scope_are_refused_with_an_operation_outcome(stack: Stack) -> None:
    ehr = stack.client("ehr-delinde")
    header, claims, signature = ehr.token().split(".")
    payload = json.loads(base64.urlsafe_b64decode(claims + "=="))
    payload["scope"] = "system/Task.cruds"
    forged = ".".join([header, base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("="), signature])
    tampered = httpx.get(f"{stack.url('coordination')}/fhir/Task", headers={"Authorization": f"Bearer {forged}"})
    assert tampered.status_code == 401
    assert tampered.json()["issue"][0]["code"] == "login"
    insurer = stack.client("insurer-9001")
    denied = httpx.get(f"{stack.url('coordination')}/fhir/Task", headers=insurer.headers())
    assert denied.status_code == 403
    assert denied.json()["issue"][0]["code"] == "forbidden"


def test_invalid_referral_is_refused_with_locations_and_nothing_is_stored(stack: Stack) -> None:
    ehr = stack.client("ehr-delinde")
    ops = stack.client("ops")
    before = ops.worklist("open,triaged,closed")
    bundle = referral_bundle(bsn="123456789", uzovi="9001")
    sr = bundle["entry"][-1]["resource"]
    sr["status"] = "bogus"
    del sr["intent"]
    response = ehr.post_referral(bundle)
    assert response.status_code == 422
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    found = {(i["expression"][0], i["diagnostics"]) for i in outcome["issue"]}
    locations = {location for location, _ in found}
    assert "Bundle.entry[0].resource.identifier[0].value" in locations
    assert "Bundle.entry[4].resource.status" in locations
    assert "Bundle.entry[4].resource.intent" in locations
    assert all("123456789" not in diagnostics for _, diagnostics in found)
    assert ops.worklist("open,triaged,closed") == before


@pytest.mark.parametrize(("body", "content_type", "status"), [
    (b"{not json", "application/fhir+json", 400),
    (b"<Bundle xmlns='http://hl7.org/fhir'><type value='transaction'/>", "application/fhir+xml", 400),
    (b"{}", "text/plain", 415),
    (b'{"resourceType": "Patient"}', "application/fhir+json", 422),
])
def test_unreadable_bodies_get_a_4xx_operation_outcome(stack: Stack, body: bytes, content_type: str,
                                                       status: int) -> None:
    ehr = stack.client("ehr-delinde")
    response = httpx.post(f"{stack.url('triage')}/fhir", content=body,
                          headers=ehr.headers({"Content-Type": content_type}))
    assert response.status_code == status
    assert response.json()["resourceType"] == "OperationOutcome"


def test_oversized_body_is_refused_with_413(stack: Stack) -> None:
    ehr = stack.client("ehr-delinde")
    response = httpx.post(f"{stack.url('triage')}/fhir", content=b" " * 3_000_000,
                          headers=ehr.headers({"Content-Type": "application/fhir+json"}))
    assert response.status_code == 413
    assert response.json()["issue"][0]["code"] == "too-long"


def test_task_moves_are_checked_versions_conflict_and_the_front_door_sees_the_request_close(stack: Stack) -> None:
    ehr, ops, wijk = stack.client("ehr-delinde"), stack.client("ops"), stack.client("ehr-wijk-oost")
    posted = ehr.post_referral(referral_bundle(bsn="999990020", uzovi="9002"))
    assert posted.status_code == 200
    sr = service_request_of(posted.json())
    request_id = ops.request_for(sr)["id"]
    assert ops.triage_request(request_id, urgency="U2", disposition="community-nursing",
                              organization="URA 90000020").status_code == 200
    tasks = [wijk.wait_for_task(request_id)]
    task = tasks[0]
    skip = wijk.patch_task(task["id"], [{"op": "replace", "path": "/status", "value": "completed"}])
    assert skip.status_code == 422 and skip.json()["issue"][0]["expression"] == ["Task.status"]
    foreign = stack.client("ehr-zuidrand").patch_task(task["id"], [{"op": "replace", "path": "/status",
                                                                     "value": "accepted"}])
    assert foreign.status_code == 404
    owner_change = wijk.patch_task(task["id"], [{"op": "replace", "path": "/owner/identifier/value", "value": "1"}])
    assert owner_change.status_code == 403  # only the requester or a case manager hands a Task on
    accepted = wijk.patch_task(task["id"], [{"op": "replace", "path": "/status", "value": "accepted"}],
                               if_match='W/"1"')
    assert accepted.status_code == 200 and accepted.headers["ETag"] == 'W/"2"'
    stale = wijk.patch_task(task["id"], [{"op": "replace", "path": "/status", "value": "in-progress"}],
                            if_match='W/"1"')
    assert stale.status_code == 412
    started = wijk.patch_task(task["id"], [{"op": "replace", "path": "/status", "value": "in-progress"}])
    assert started.status_code == 200
    wrong_code = wijk.patch_task(task["id"], [
        {"op": "replace", "path": "/status", "value": "completed"},
        {"op": "add", "path": "/output", "value": [{
            "type": {"coding": [{"system": "https://regiozorg.example/fhir/CodeSystem/task-output",
                                 "code": "delivered-contact"}]},
            "valueCoding": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EMER"}}]}])
    assert wrong_code.status_code == 422
    assert wrong_code.json()["issue"][0]["expression"] == ["Task.output[0].valueCoding"]
    done = wijk.patch_task(task["id"], [
        {"op": "replace", "path": "/status", "value": "completed"},
        {"op": "add", "path": "/executionPeriod", "value": {"start": datetime.now(UTC).isoformat()}},
        {"op": "add", "path": "/output", "value": [{
            "type": {"coding": [{"system": "https://regiozorg.example/fhir/CodeSystem/task-output",
                                 "code": "delivered-contact"}]},
            "valueCoding": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HH"}}]}])
    assert done.status_code == 200
    changed_afterwards = wijk.patch_task(task["id"], [{"op": "replace", "path": "/output/0/valueCoding/code",
                                                       "value": "VR"}])
    assert changed_afterwards.status_code == 422
    assert changed_afterwards.json()["issue"][0]["expression"] == ["Task.status"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and request_id not in [i["id"] for i in ops.worklist("closed")]:
        time.sleep(0.2)
    assert request_id in [i["id"] for i in ops.worklist("closed")]
    encounters = httpx.get(f"{stack.url('coordination')}/fhir/Encounter",
                           params={"patient": task["for"]["identifier"]["value"]}, headers=wijk.headers()).json()
    assert [e["resource"]["class"]["code"] for e in encounters["entry"]] == ["HH"]


def test_accesses_and_refusals_are_in_the_audit_log_and_reading_it_is_logged_too(stack: Stack) -> None:
    ehr, ops, insurer = stack.client("ehr-delinde"), stack.client("ops"), stack.client("insurer-9001")
    posted = ehr.post_referral(referral_bundle(bsn="999990081", uzovi="9001"))
    assert posted.status_code == 200
    sr = service_request_of(posted.json())
    patient = next(i["patient"] for i in ops.worklist() if i["service_request"] == sr)
    assert httpx.get(f"{stack.url('triage')}/fhir/{sr}", headers=ehr.headers()).status_code == 200
    assert httpx.get(f"{stack.url('coordination')}/fhir/Task", headers=insurer.headers()).status_code == 403

    def audit_events(service: str, **params: str) -> list[dict]:
        response = httpx.get(f"{stack.url(service)}/fhir/AuditEvent", params=params, headers=ops.headers())
        assert response.status_code == 200, response.text
        return [e["resource"] for e in response.json()["entry"]]

    triage_events = audit_events("triage", patient=patient)
    by_subtype = {e["subtype"][0]["code"]: e for e in triage_events}
    assert {"create", "read"} <= set(by_subtype)
    created = by_subtype["create"]
    assert created["agent"][0]["who"]["identifier"]["value"] == "ehr-delinde"
    assert created["agent"][0]["onBehalfOf"]["identifier"]["value"] == "01000001"
    assert created["outcome"] == "0"
    assert by_subtype["read"]["entity"][1]["what"]["display"] == sr

    refused = [e for e in audit_events("coordination") if e["outcome"] == "4"
               and e["agent"][0]["who"]["identifier"]["value"] == "insurer-9001"]
    assert refused and "403" in refused[0]["outcomeDesc"]
    unauthenticated = httpx.get(f"{stack.url('coordination')}/fhir/Task")
    assert unauthenticated.status_code == 401
    assert any(e["agent"][0]["who"]["identifier"]["value"] == "anonymous" and "401" in e["outcomeDesc"]
               for e in audit_events("coordination"))

    reads_of_the_log = [e for e in audit_events("triage")
                        if e["entity"][-1]["what"]["display"].startswith("AuditEvent")]
    assert reads_of_the_log and reads_of_the_log[0]["agent"][0]["who"]["identifier"]["value"] == "ops"
    assert httpx.get(f"{stack.url('triage')}/fhir/AuditEvent", headers=ehr.headers()).status_code == 403


def _signed(stack: Stack, **claims: object) -> str:
    """A token signed with the server's own current key (read from its data folder), with chosen claims."""
    key_file = sorted((stack.data_dir / "keys" / "signing").glob("*.json"))[-1]
    key = RSAKey.import_key(json.loads(key_file.read_text()))
    now = int(time.time())
    body = {"iss": stack.url("triage"), "sub": "ops", "aud": "regiozorg", "iat": now, "exp": now + 300,
            "jti": "t", "scope": "system/Task.cruds", "org": "http://fhir.nl/fhir/NamingSystem/ura|90000001", **claims}
    return jwt.encode({"alg": "RS256", "kid": key.kid}, body, key)


@pytest.mark.parametrize("claims", [{"exp": int(time.time()) - 60}, {"aud": "another-api"},
                                    {"iss": "https://somebody-else.example"}])
def test_expired_foreign_audience_or_foreign_issuer_tokens_are_refused(stack: Stack, claims: dict) -> None:
    url = f"{stack.url('coordination')}/fhir/Task"
    assert httpx.get(url, headers={"Authorization": f"Bearer {_signed(stack)}"}).status_code == 200
    refused = httpx.get(url, headers={"Authorization": f"Bearer {_signed(stack, **claims)}"})
    assert refused.status_code == 401 and refused.json()["issue"][0]["code"] == "login"


def test_token_signed_by_an_unknown_key_is_refused(stack: Stack) -> None:
    stranger = RSAKey.generate_key(2048, parameters={"kid": "stranger"})
    now = int(time.time())
    token = jwt.encode({"alg": "RS256", "kid": "stranger"}, {
        "iss": stack.url("triage"), "sub": "ops", "aud": "regiozorg", "exp": now + 300, "scope": "system/Task.cruds",
        "org": "http://fhir.nl/fhir/NamingSystem/ura|90000001"}, stranger)
    response = httpx.get(f"{stack.url('coordination')}/fhir/Task", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


@pytest.mark.parametrize(("service", "path", "params", "statuses"), [
    ("triage", "/fhir/ServiceRequest", {"status": "active' OR '1'='1"}, {200}),
    ("triage", "/fhir/ServiceRequest", {"patient": "x'; DROP TABLE fhir_resource; --"}, {200}),
    ("triage", "/api/v1/worklist", {"status": "open' OR 1=1 --"}, {400}),
    ("coordination", "/fhir/Task", {"status": "requested') OR ('a'='a"}, {200}),
    ("coordination", "/fhir/Task", {"owner": "'; DELETE FROM task; --"}, {400}),
    ("billing_shadow", "/api/v1/prestations", {"uzovi": "9001' OR '1'='1"}, {400}),
])
def test_sql_metacharacters_in_parameters_are_inert(stack: Stack, service: str, path: str, params: dict,
                                                    statuses: set[int]) -> None:
    ops = stack.client("ops")
    response = httpx.get(f"{stack.url(service)}{path}", params=params, headers=ops.headers())
    assert response.status_code in statuses, response.text
    if response.status_code == 200:
        assert response.json().get("total", 0) == 0
    assert len(ops.worklist("open,triaged,closed")) >= 1  # the tables are still there


def test_two_parties_racing_on_one_task_version_one_wins_the_other_gets_412(stack: Stack) -> None:
    ehr, ops, wijk = stack.client("ehr-delinde"), stack.client("ops"), stack.client("ehr-wijk-oost")
    posted = ehr.post_referral(referral_bundle(bsn="999990056", uzovi="9001"))
    sr = service_request_of(posted.json())
    request_id = ops.request_for(sr)["id"]
    assert ops.triage_request(request_id, urgency="U3", disposition="home-visit",
                              organization="URA 90000020").status_code == 200
    tasks = [wijk.wait_for_task(request_id)]
    task_id = tasks[0]["id"]
    moves = [(wijk, "accepted"), (ops, "cancelled")]
    barrier = threading.Barrier(len(moves))
    results: list[int] = []

    def move(party: ApiClient, status: str) -> None:
        barrier.wait()
        results.append(party.patch_task(task_id, [{"op": "replace", "path": "/status", "value": status}],
                                        if_match='W/"1"').status_code)

    threads = [threading.Thread(target=move, args=m) for m in moves]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [200, 412]
    final = httpx.get(f"{stack.url('coordination')}/fhir/Task/{task_id}", headers=wijk.headers())
    assert final.headers["ETag"] == 'W/"2"' and final.json()["status"] in ("accepted", "cancelled")
    if final.json()["status"] == "cancelled":
        # Its only Task is final, so the request closes: the front door hears it before the next test looks.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and request_id not in [i["id"] for i in ops.worklist("closed")]:
            time.sleep(0.2)
        assert request_id in [i["id"] for i in ops.worklist("closed")]


def test_replaying_every_event_after_a_broker_reset_creates_no_extra_task(stack: Stack) -> None:
    """Runs last in this module: the embedded broker is killed and restarted, so every service re-publishes
    its outbox and every consumer reads its topics again from the start."""
    ops = stack.client("ops")
    tasks_before = sorted(t["id"] for t in ops.tasks(_count="500"))
    requests_before = ops.worklist("open,triaged,closed")

    def duplicates_skipped() -> float:
        text = httpx.get(f"{stack.url('coordination')}/metrics").text
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith('regiozorg_events_duplicate_total{consumer="coordination.triage-completed"'))

    before = duplicates_skipped()
    assert stack.broker is not None
    stack.broker.kill()
    stack.broker.start()
    deadline = time.monotonic() + 60
    while duplicates_skipped() < before + len(tasks_before) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert duplicates_skipped() >= before + len(tasks_before), "the triage-completed topic was not replayed"
    assert sorted(t["id"] for t in ops.tasks(_count="500")) == tasks_before
    assert ops.worklist("open,triaged,closed") == requests_before
