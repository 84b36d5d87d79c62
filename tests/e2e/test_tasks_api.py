"""The Task API a partner EHR and the front door rely on: versions, history, PUT and FHIRPath Patch,
reassignment, paging; and coordination's searches as the FHIR search specification reads (dates, modifiers,
unknown parameters, totals) on Task, Encounter, EpisodeOfCare and AuditEvent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from itertools import count
from math import ceil
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fhirpy import SyncFHIRClient

from infra.client import ACT_CODE, TASK_OUTPUT, ApiClient, completion_patch, service_request_of
from infra.polling import wait_until
from infra.referrals import referral_bundle
from infra.stack import Stack
from shared.identifiers import is_valid_bsn
from tests.conftest import started_stack
from tests.e2e.consoles import open_console

pytestmark = pytest.mark.e2e
# Fresh BSNs that pass the 11-proof, for the search tests' patients.
_BSNS = (bsn for bsn in (f"{n:09d}" for n in count(900300000)) if is_valid_bsn(bsn))
TRANSFER_POINT = "URA 90000030"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from started_stack(tmp_path_factory, "tasks")


def new_task(stack: Stack, bsn: str, organisation: str, owner_client: str,
             disposition: str = "home-visit") -> dict[str, Any]:
    ops = stack.client("ops")
    posted = stack.client("ehr-delinde").post_referral(referral_bundle(bsn=bsn))
    sr = service_request_of(posted.json())
    request_id = ops.request_for(sr)["id"]
    ops.triage_request(request_id, urgency="U3", disposition=disposition, organization=organisation) \
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
    to_transfer_point = [{"op": "replace", "path": "/owner", "value": {"identifier": {
        "system": "http://fhir.nl/fhir/NamingSystem/ura", "value": "90000030"}}}]
    refused = ops.patch_task(task["id"], to_transfer_point)  # it only places patients in care beds
    assert refused.status_code == 422, refused.text
    assert "Regionaal Transferpunt does not provide Visite aan huis (home-visit)" in refused.text
    assert task["id"] not in [t["id"] for t in zuidrand.tasks()]
    move = [{"op": "replace", "path": "/owner", "value": {"identifier": {
        "system": "http://fhir.nl/fhir/NamingSystem/ura", "value": "90000001"}}}]
    assert wijk.patch_task(task["id"], move).status_code == 403  # the owner cannot hand it on
    moved = ops.patch_task(task["id"], move)
    assert moved.status_code == 200, moved.text
    assert moved.json()["status"] == "requested" and moved.json()["owner"]["identifier"]["value"] == "90000001"
    assert task["id"] in [t["id"] for t in ops.tasks(status="requested")]
    assert task["id"] not in [t["id"] for t in wijk.tasks()]


def set_targets(stack: Stack, **minutes: str) -> None:
    """The admin sets the urgency target times at the front door (minutes; "" = next working day)."""
    admin, _ = open_console(stack, "triage", username="beheer", password="demo-beheer")
    page = admin.get(f"{stack.url('triage')}/console/settings").text
    csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    targets = {"U0": "0", "U1": "15", "U2": "60", "U3": "180", "U4": "1440", "U5": "", **minutes}
    saved = admin.post(f"{stack.url('triage')}/console/settings/targets",
                       data={"csrf_token": csrf, **{f"minutes_{u}": m for u, m in targets.items()}})
    assert saved.status_code == 200, saved.text


def test_reassigning_to_a_practice_closed_at_the_due_time_needs_a_reason_which_the_history_keeps(
        stack: Stack) -> None:
    ops, wijk = stack.client("ops"), stack.client("ehr-wijk-oost")
    posted = stack.client("ehr-delinde").post_referral(referral_bundle(bsn=next(_BSNS), reason="Wond lekt"))
    request = ops.request_for(service_request_of(posted.json()))
    # A U4 due on a Saturday at noon, when the GP practices (working days 08:00-17:00) are closed.
    received = datetime.fromisoformat(request["received_at"]).astimezone(ZoneInfo("Europe/Amsterdam"))
    saturday = (received + timedelta(days=(5 - received.weekday()) % 7)).replace(hour=12, minute=0, second=0)
    if saturday <= received:
        saturday += timedelta(days=7)
    set_targets(stack, U4=str(ceil((saturday - received).total_seconds() / 60)))
    try:
        ops.triage_request(request["id"], urgency="U4", disposition="home-visit",
                           organization="URA 90000020").raise_for_status()
    finally:
        set_targets(stack)
    task = wijk.wait_for_task(request["id"])
    to_linde = [{"op": "replace", "path": "/owner", "value": {"identifier": {
        "system": "http://fhir.nl/fhir/NamingSystem/agb-z", "value": "01000001"}}}]
    refused = ops.patch_task(task["id"], to_linde)
    assert refused.status_code == 422, refused.text
    issue = refused.json()["issue"][0]
    assert issue["diagnostics"].startswith(f"Huisartsenpraktijk De Linde is closed at the due time "
                                           f"{saturday:%d-%m} 12:0")
    assert issue["expression"] == ["Task.statusReason"]
    assert wijk.tasks(_id=task["id"])[0]["meta"]["versionId"] == "1"  # nothing changed
    reason = {"op": "add", "path": "/statusReason", "value": {"text": "eigen huisarts belt zaterdag zelf"}}
    moved = ops.patch_task(task["id"], [*to_linde, reason])
    assert moved.status_code == 200, moved.text
    assert moved.json()["owner"]["identifier"]["value"] == "01000001"
    assert moved.json()["statusReason"]["text"] == "eigen huisarts belt zaterdag zelf"
    timeline = httpx.get(f"{stack.url('coordination')}/api/v1/patients/{request['patient']}/timeline",
                         headers=ops.headers()).json()
    reassigned = [i["facts"] for i in timeline["items"] if (i["facts"] or {}).get("event") == "reassigned"]
    assert reassigned == [{"event": "reassigned", "from": "http://fhir.nl/fhir/NamingSystem/ura|90000020",
                           "to": "http://fhir.nl/fhir/NamingSystem/agb-z|01000001",
                           "reason": "eigen huisarts belt zaterdag zelf", "closed_at_due": True}]


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
    ("PATCH", "application/json-patch+json", b'[{"op": "add", "path": "/priority", "value": NaN}]', 400),
    ("PATCH", "application/json-patch+json", b'[{"op": "add", "op": "remove", "path": "/note"}]', 400),
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


def searched(stack: Stack, who: ApiClient, path: str = "Task", headers: dict[str, str] | None = None,
             **params: str) -> httpx.Response:
    return httpx.get(f"{stack.url('coordination')}/fhir/{path}", params=params, headers=who.headers(headers))


def searchset(stack: Stack, who: ApiClient, path: str = "Task", **params: str) -> dict[str, Any]:
    response = searched(stack, who, path, **params)
    assert response.status_code == 200, response.text
    bundle = dict(response.json())
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    return bundle


def ids(bundle: dict[str, Any]) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", [])]


def link(bundle: dict[str, Any], relation: str) -> str | None:
    return next((x["url"] for x in bundle["link"] if x["relation"] == relation), None)


def test_total_of_a_paged_search_is_the_number_of_matches_and_count_zero_answers_it_alone(stack: Stack) -> None:
    ops = stack.client("ops")
    made = {new_task(stack, next(_BSNS), TRANSFER_POINT, "ops", "rtp-placement")["id"] for _ in range(5)}

    page = searchset(stack, ops, owner=TRANSFER_POINT, _count="1")
    assert page["total"] == 5 and len(ids(page)) == 1
    seen = ids(page)
    while (following := link(page, "next")) is not None:
        assert following.startswith(f"{stack.url('coordination')}/fhir/Task?")
        page = httpx.get(following, headers=ops.headers()).json()
        assert page["total"] == 5
        seen += ids(page)
    assert sorted(seen) == sorted(made)
    only_total = searchset(stack, ops, owner=TRANSFER_POINT, _count="0")
    assert only_total["total"] == 5 and "entry" not in only_total

    every_task = ids(searchset(stack, ops, _count="500"))
    assert len(every_task) > 5
    assert searchset(stack, ops, _count="1")["total"] == len(every_task)
    assert searchset(stack, ops, _count="0")["total"] == len(every_task)

    fhir = SyncFHIRClient(f"{stack.url('coordination')}/fhir", authorization=f"Bearer {ops.token()}")
    tasks = fhir.resources("Task").search(owner=TRANSFER_POINT)
    assert tasks.count() == 5
    assert sorted(t.id for t in tasks.limit(2).fetch_all()) == sorted(made)  # fhirpy follows the next links


def test_last_updated_with_an_offset_sent_unencoded_and_every_prefix_finds_the_right_tasks(stack: Stack) -> None:
    ops = stack.client("ops")
    earlier = new_task(stack, next(_BSNS), "URA 90000020", "ehr-wijk-oost")
    later = new_task(stack, next(_BSNS), "URA 90000020", "ehr-wijk-oost")
    changed = {t["id"]: datetime.fromisoformat(t["meta"]["lastUpdated"])
               for t in (e["resource"] for e in searchset(stack, ops, _count="500")["entry"])}
    assert changed[later["id"]] > changed[earlier["id"]]

    def unencoded(query: str) -> dict[str, Any]:
        # As clients send it: the "+" of the offset is not percent-encoded, so it arrives as a space.
        response = httpx.get(f"{stack.url('coordination')}/fhir/Task?_count=500&{query}", headers=ops.headers())
        assert response.status_code == 200, response.text
        return dict(response.json())

    november = datetime(2026, 10, 31, 23, 0, tzinfo=UTC)
    assert sorted(ids(unencoded("_lastUpdated=ge2026-11-01T00:00:00+01:00"))) == sorted(
        task for task, at in changed.items() if at >= november)
    before_2000 = unencoded("_lastUpdated=lt2000-01-01")
    assert before_2000["total"] == 0 and "entry" not in before_2000

    boundary = changed[later["id"]].astimezone(timezone(timedelta(hours=1))).isoformat()
    at_or_after = ids(unencoded(f"_lastUpdated=ge{boundary}"))
    before = ids(unencoded(f"_lastUpdated=lt{boundary}"))
    assert sorted(at_or_after) == sorted(task for task, at in changed.items() if at >= changed[later["id"]])
    assert later["id"] in at_or_after and earlier["id"] in before
    assert sorted(at_or_after + before) == sorted(changed)
    assert ids(unencoded(f"_lastUpdated={boundary}")) == [later["id"]]
    assert later["id"] not in ids(unencoded(f"_lastUpdated=ne{boundary}"))
    assert ids(unencoded(f"_lastUpdated=gt{boundary}")) == ids(unencoded(f"_lastUpdated=sa{boundary}"))
    assert later["id"] in ids(unencoded(f"_lastUpdated=le{boundary}"))
    assert later["id"] in ids(unencoded(f"_lastUpdated=ap{boundary}"))
    assert earlier["id"] in ids(unencoded(f"_lastUpdated=eb{boundary}"))
    self_link = link(unencoded(f"_lastUpdated=ge{boundary}"), "self")
    assert self_link is not None and "_lastUpdated=ge" + boundary.replace("+", "%2B") in self_link


def test_not_and_missing_modifiers_work_other_modifiers_and_strict_unknown_parameters_are_refused(
        stack: Stack) -> None:
    ops, wijk = stack.client("ops"), stack.client("ehr-wijk-oost")
    done = new_task(stack, next(_BSNS), "URA 90000020", "ehr-wijk-oost")
    worked = wijk.work_task(done["id"], contact="HH", start=datetime.now(UTC).isoformat())
    assert worked.status_code == 200, worked.text
    statuses = {t["id"]: t["status"] for t in (e["resource"] for e in searchset(stack, ops, _count="500")["entry"])}
    assert "completed" in statuses.values() and set(statuses.values()) != {"completed"}

    not_completed = searchset(stack, ops, _count="500", **{"status:not": "completed"})
    assert sorted(ids(not_completed)) == sorted(t for t, status in statuses.items() if status != "completed")
    assert not_completed["total"] == len(ids(not_completed))
    assert searchset(stack, ops, **{"owner:missing": "false"})["total"] == len(statuses)
    assert searchset(stack, ops, **{"owner:missing": "true"})["total"] == 0
    assert ids(searchset(stack, ops, **{"owner:identifier": "http://fhir.nl/fhir/NamingSystem/ura|90000020",
                                        "status": "completed", "patient": done["for"]["identifier"]["value"]})) == [
        done["id"]]

    for key in ("status:text", "owner:Organization", "focus:missing", "_lastUpdated:below"):
        refused = searched(stack, ops, **{key: "x"})
        assert refused.status_code == 400, key
        assert refused.json()["resourceType"] == "OperationOutcome"
        assert refused.json()["issue"][0]["expression"] == [key]

    lenient = searchset(stack, ops, _count="500", status="completed", _sort="-_lastUpdated", foo="bar")
    assert sorted(ids(lenient)) == sorted(t for t, status in statuses.items() if status == "completed")
    self_link = link(lenient, "self")
    assert self_link is not None and "status=completed" in self_link
    assert "foo" not in self_link and "_sort" not in self_link
    strict = searched(stack, ops, headers={"Prefer": "handling=strict"}, status="completed", foo="bar")
    assert strict.status_code == 400 and strict.json()["issue"][0]["expression"] == ["foo"]
    assert searched(stack, ops, **{"_format": "xml"}).status_code == 406


def test_encounter_episode_and_audit_searches_page_count_and_refuse_alike(stack: Stack) -> None:
    ops, wijk = stack.client("ops"), stack.client("ehr-wijk-oost")
    before = datetime.now(UTC)
    task = new_task(stack, next(_BSNS), "URA 90000020", "ehr-wijk-oost")
    patient = task["for"]["identifier"]["value"]
    assert wijk.work_task(task["id"], contact="VR", start=datetime.now(UTC).isoformat()).status_code == 200

    encounters = searchset(stack, wijk, "Encounter", patient=patient)
    assert encounters["total"] == 1 and encounters["entry"][0]["fullUrl"].startswith(
        f"{stack.url('coordination')}/fhir/Encounter/")
    only_total = searchset(stack, wijk, "Encounter", _count="0",
                           **{"patient:identifier": f"https://regiozorg.example/fhir/NamingSystem/patient-pseudonym|"
                                                    f"{patient}"})
    assert only_total["total"] == 1 and "entry" not in only_total
    missing = searched(stack, wijk, "Encounter")
    assert missing.status_code == 400 and missing.json()["issue"][0]["expression"] == ["patient"]
    assert searched(stack, wijk, "Encounter", **{"patient:missing": "false"}).status_code == 400

    episodes = searchset(stack, ops, "EpisodeOfCare", patient=patient, _count="0")
    assert episodes["total"] >= 1 and "entry" not in episodes
    assert searched(stack, ops, "EpisodeOfCare", **{"patient:text": patient}).status_code == 400

    since = before.isoformat()
    audit = searchset(stack, ops, "AuditEvent", date=f"ge{since}", _count="1")
    assert audit["total"] > 1 and len(ids(audit)) == 1 and link(audit, "next") is not None
    assert searchset(stack, ops, "AuditEvent", date=f"ge{since}", _count="0")["total"] >= audit["total"]
    assert searchset(stack, ops, "AuditEvent", date="lt2000-01-01")["total"] == 0
    about_patient = searchset(stack, ops, "AuditEvent", patient=patient, _count="500")
    assert about_patient["total"] == len(ids(about_patient)) >= 1
    assert all(e["resource"]["entity"][0]["what"]["identifier"]["value"] == patient for e in about_patient["entry"])
    assert searched(stack, ops, "AuditEvent", {"Prefer": "handling=strict"}, subtype="read").status_code == 400


def test_capability_statement_lists_exactly_the_search_parameters_modifiers_and_prefixes(stack: Stack) -> None:
    statement = httpx.get(f"{stack.url('coordination')}/fhir/metadata").json()
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    params = {kind: {p["name"]: p for p in resources[kind].get("searchParam", [])} for kind in resources}
    assert {name: p["type"] for name, p in params["Task"].items()} == {
        "_id": "token", "owner": "reference", "requester": "reference", "status": "token", "patient": "reference",
        "focus": "reference", "_lastUpdated": "date"}
    assert "Modifiers: :not, :missing;" in params["Task"]["status"]["documentation"]
    assert "Modifiers: :identifier, :missing;" in params["Task"]["owner"]["documentation"]
    assert "Modifiers: none;" in params["Task"]["focus"]["documentation"]
    assert "Prefixes: eq ne gt lt ge le sa eb ap" in params["Task"]["_lastUpdated"]["documentation"]
    assert set(params["Encounter"]) == set(params["EpisodeOfCare"]) == {"patient"}
    assert "Required." in params["Encounter"]["patient"]["documentation"]
    assert set(params["AuditEvent"]) == {"patient", "date"}
    assert "handling=strict" in resources["Task"]["documentation"]


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
    version_before = int(patient["meta"]["versionId"])  # another test of this module may know the patient too
    assert patient["resourceType"] == "Patient" and patient["name"][0]["family"] == "Yılmaz"
    assert patient["address"][0]["line"] == ["Lindelaan 12"] and patient["telecom"][0]["value"] == "06-11223344"
    referral = entries[task["focus"]["reference"]]["resource"]
    assert referral["resourceType"] == "ServiceRequest" and f"ServiceRequest/{referral['id']}" == sr
    assert referral["reasonCode"] == [{"text": "Koorts en rillingen, wond rood"}]

    # Ziekenhuis Zuidrand neither owns nor requested it: the Task is not there, and neither is the patient.
    refused = httpx.get(f"{coordination}/fhir/Task/{task['id']}", headers=zuidrand.headers())
    assert refused.status_code == 404 and refused.json()["resourceType"] == "OperationOutcome"
    stranger = included(stack, "ehr-zuidrand", task["id"])
    assert stranger.status_code == 200 and stranger.json()["total"] == 0 and "entry" not in stranger.json()
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
    assert person["meta"]["versionId"] == str(version_before + 1) and person["telecom"][0]["value"] == "06-11223344"
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
