"""Task-based access on the real processes: the organisation that owns the Task reads the patient's name, address
and phone at the front door with its own token, nobody else does, reassignment moves the access after the window,
and every read on a grant is in the audit log with purpose TREAT and the Task."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from infra.client import ApiClient
from infra.referrals import referral_bundle
from infra.stack import Stack
from shared.fhir import Issue, operation_outcome
from tests.conftest import started_stack

pytestmark = pytest.mark.e2e

# Short for the test, so the end of an ended grant's window can be waited for.
WINDOW = timedelta(seconds=15)
WIJK_OOST, ZUIDRAND, DE_LINDE = "90000020", "90000010", "01000001"
ADDRESS = {"use": "home", "line": ["Dorpsstraat 12"], "postalCode": "7500 AB", "city": "Oostdorp"}
PHONE = {"system": "phone", "value": "06-12345678", "use": "mobile"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from started_stack(tmp_path_factory, "treatment-access",
                             env={"TRIAGE_TREATMENT_ACCESS_DAYS": repr(WINDOW / timedelta(days=1))})


class Reads:
    """Reads at the front door's FHIR API, remembering each one that was answered 200 (to find in the audit)."""

    def __init__(self, stack: Stack) -> None:
        self.base = f"{stack.url('triage')}/fhir"
        self.answered: Counter[tuple[str, str]] = Counter()  # (organisation's URA, "Type/id")

    def get(self, client: ApiClient, ura: str, path: str) -> httpx.Response:
        response = client.http.get(f"{self.base}/{path}", headers=client.headers())
        if response.status_code == 200 and "?" not in path:
            self.answered[(ura, path)] += 1
        return response

    def until(self, client: ApiClient, ura: str, path: str, status: int, timeout: float = 30) -> httpx.Response:
        """Read until the answer has `status` (the front door learns of Task changes through an event)."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.get(client, ura, path)
            if response.status_code == status or time.monotonic() > deadline:
                return response
            time.sleep(0.2)


def not_known(path: str) -> dict[str, Any]:
    return operation_outcome([Issue("error", "not-found", f"{path} is not known")])


def test_the_task_owner_reads_whom_to_visit_nobody_else_does_and_reassignment_moves_the_access(stack: Stack) -> None:
    delinde, ops = stack.client("ehr-delinde"), stack.client("ops")
    wijk, zuidrand = stack.client("ehr-wijk-oost"), stack.client("ehr-zuidrand")
    reads = Reads(stack)

    bundle = referral_bundle(bsn="999990056", given="Fatma", family="Yılmaz", birth_date="1990-04-17",
                             gender="female", uzovi="9001", reason="Valpartij, kan niet opstaan",
                             requester_agb=None, requester_ura=ZUIDRAND)
    patient_entry = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    patient_entry["resource"] |= {"address": [ADDRESS], "telecom": [PHONE]}
    posted = zuidrand.post_referral(bundle)  # the hospital refers; De Linde has nothing to do with it yet
    assert posted.status_code == 200, posted.text
    stored = {e["response"]["location"].split("/")[0]: "/".join(e["response"]["location"].split("/")[:2])
              for e in posted.json()["entry"]}
    urls = [stored["Patient"], stored["ServiceRequest"], stored["Coverage"]]
    request = ops.request_for(stored["ServiceRequest"])
    ops.triage_request(request["id"], urgency="U2", disposition="home-visit", organization=f"URA {WIJK_OOST}",
                       note="Visite binnen het uur").raise_for_status()
    task = wijk.wait_for_task(request["id"])

    # The owner reads whom to visit, where and how to reach them, with its own token.
    patient = reads.until(wijk, WIJK_OOST, stored["Patient"], 200)
    assert patient.status_code == 200, patient.text
    assert patient.json()["name"][0]["text"] == "Fatma Yılmaz"
    assert patient.json()["address"] == [ADDRESS] and patient.json()["telecom"] == [PHONE]
    referral = reads.get(wijk, WIJK_OOST, stored["ServiceRequest"])
    assert referral.status_code == 200 and referral.json()["reasonCode"][0]["text"] == "Valpartij, kan niet opstaan"
    coverage = reads.get(wijk, WIJK_OOST, stored["Coverage"])
    assert coverage.status_code == 200 and coverage.json()["beneficiary"]["reference"] == stored["Patient"]
    found = reads.get(wijk, WIJK_OOST, f"ServiceRequest?patient={stored['Patient']}")
    assert [e["resource"]["id"] for e in found.json()["entry"]] == [stored["ServiceRequest"].split("/")[1]]

    # Another organisation gets what it would get for an id nobody has.
    for url in urls:
        refused = reads.get(delinde, DE_LINDE, url)
        assert refused.status_code == 404 and refused.json() == not_known(url), url
    assert reads.get(delinde, DE_LINDE, f"ServiceRequest?patient={stored['Patient']}").json()["total"] == 0

    # The front door hands the home visit to the GP practice De Linde (which makes home visits too): De Linde reads
    # at once, Wijkverpleging Oost until the window ends. With a reason, as the practice may be closed at the due
    # time when the suite runs in the evening.
    moved = ops.patch_task(task["id"], [{"op": "replace", "path": "/owner", "value": {"identifier": {
        "system": "http://fhir.nl/fhir/NamingSystem/agb-z", "value": DE_LINDE}}},
        {"op": "add", "path": "/statusReason", "value": {"text": "eigen huisarts neemt de visite over"}}])
    assert moved.status_code == 200, moved.text
    reassigned_at = datetime.fromisoformat(moved.json()["meta"]["lastUpdated"])
    assert reads.until(delinde, DE_LINDE, stored["Patient"], 200).status_code == 200
    assert datetime.now(UTC) < reassigned_at + WINDOW, "the window ended before the new owner could be checked"
    assert reads.get(wijk, WIJK_OOST, stored["Patient"]).status_code == 200
    time.sleep(max(0.0, (reassigned_at + WINDOW - datetime.now(UTC)).total_seconds()) + 1)
    for url in urls:
        refused = reads.get(wijk, WIJK_OOST, url)
        assert refused.status_code == 404 and refused.json() == not_known(url), url
        assert reads.get(delinde, DE_LINDE, url).status_code == 200, url
    assert reads.get(wijk, WIJK_OOST, f"ServiceRequest?patient={stored['Patient']}").json()["total"] == 0

    # Every read on a grant is in the audit log under the patient: purpose TREAT, the Task that granted it.
    audit = ops.http.get(f"{stack.url('triage')}/fhir/AuditEvent", headers=ops.headers(),
                         params={"patient": request["patient"], "_count": "1000"})
    assert audit.status_code == 200, audit.text
    granted: Counter[tuple[str, str]] = Counter()
    for entry in audit.json()["entry"]:
        event = entry["resource"]
        agent = event["agent"][0]
        tasks = [e["what"]["reference"] for e in event["entity"] if e["what"].get("reference", "").startswith("Task/")]
        if event["subtype"][0]["code"] != "read" or not tasks:
            continue
        assert tasks == [f"Task/{task['id']}"] and event["outcome"] == "0"
        assert agent["purposeOfUse"][0]["coding"][0]["code"] == "TREAT"
        what = next(e["what"]["display"] for e in event["entity"] if "display" in e["what"])
        granted[(agent["onBehalfOf"]["identifier"]["value"], what)] += 1
    assert granted == reads.answered
    assert {ura for ura, _ in granted} == {WIJK_OOST, DE_LINDE}
    searches = [e["resource"] for e in audit.json()["entry"] if e["resource"]["subtype"][0]["code"] == "search"
                and e["resource"]["agent"][0]["onBehalfOf"]["identifier"]["value"] == WIJK_OOST]
    assert any(f"Task/{task['id']}" in [e["what"].get("reference") for e in s["entity"]] for s in searches)
