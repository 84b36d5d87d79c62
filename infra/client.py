"""A small HTTP client of the product's public APIs, acting as a demo client (demo loader, tests, benchmarks)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from shared.region import DEMO_CLIENTS

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
TASK_OUTPUT = "https://regiozorg.example/fhir/CodeSystem/task-output"


def task_worker(organisation: str) -> str | None:
    """The demo client that works the Tasks an organisation ("URA 90000020") owns: the one acting for it with
    a Task scope that may update (SPEC §5); None when it has none (De Linde only reads, the transfer point has
    no client), so nobody can work its Tasks through the API."""
    return next((c.client_id for c in DEMO_CLIENTS if c.org.label == organisation
                 and any(s.startswith("system/Task.") and "u" in s.split(".", 1)[1] for s in c.scopes)), None)


def completion_patch(*, contact: str | None, start: str, end: str | None = None) -> list[dict[str, Any]]:
    """The JSON Patch that completes a Task: status, executionPeriod (ISO 8601 with zone; `end` optional) and,
    if a contact was delivered, the delivered-contact output with its v3 ActCode class (VR, HH or AMB; SPEC §7)."""
    period = {"start": start, **({"end": end} if end else {})}
    ops: list[dict[str, Any]] = [{"op": "replace", "path": "/status", "value": "completed"},
                                 {"op": "add", "path": "/executionPeriod", "value": period}]
    if contact:
        ops.append({"op": "add", "path": "/output", "value": [{
            "type": {"coding": [{"system": TASK_OUTPUT, "code": "delivered-contact"}]},
            "valueCoding": {"system": ACT_CODE, "code": contact}}]})
    return ops


def service_request_of(transaction_response: dict[str, Any]) -> str:
    """The "ServiceRequest/<id>" a referral Bundle created (or found again), from the transaction-response."""
    return next(e["response"]["location"].rsplit("/", 2)[0] for e in transaction_response["entry"]
                if e["response"]["location"].startswith("ServiceRequest/"))


@dataclass
class ApiClient:
    """Acts for one demo client: fetches and renews its token, calls triage, coordination and billing."""

    client_id: str
    triage: str
    coordination: str
    billing: str
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))
    _token: str | None = None
    _expires: float = 0

    @property
    def secret(self) -> str:
        return next(c.demo_secret for c in DEMO_CLIENTS if c.client_id == self.client_id)

    def token(self) -> str:
        if self._token is None or time.monotonic() > self._expires - 30:
            response = self.http.post(f"{self.triage}/oauth/token", data={"grant_type": "client_credentials"},
                                      auth=(self.client_id, self.secret))
            response.raise_for_status()
            body = response.json()
            self._token, self._expires = body["access_token"], time.monotonic() + body["expires_in"]
        return self._token

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}", **(extra or {})}

    def post_referral(self, bundle: dict[str, Any]) -> httpx.Response:
        return self.http.post(f"{self.triage}/fhir", json=bundle,
                              headers=self.headers({"Content-Type": "application/fhir+json"}))

    def worklist(self, status: str = "open") -> list[dict[str, Any]]:
        response = self.http.get(f"{self.triage}/api/v1/worklist", params={"status": status}, headers=self.headers())
        response.raise_for_status()
        return list(response.json()["items"])

    def request_for(self, service_request: str) -> dict[str, Any]:
        """The acute request on the front door's worklist that a referral ("ServiceRequest/<id>") opened."""
        return next(i for i in self.worklist("open,triaged,closed") if i["service_request"] == service_request)

    def triage_request(self, request_id: str, *, urgency: str, disposition: str, organization: str,
                       note: str = "", closed_reason: str | None = None) -> httpx.Response:
        return self.http.post(f"{self.triage}/api/v1/requests/{request_id}/triage", headers=self.headers(), json={
            "urgency": urgency, "disposition": disposition, "assigned_organization": organization, "note": note,
            **({"closed_reason": closed_reason} if closed_reason else {})})

    def tasks(self, **params: str) -> list[dict[str, Any]]:
        response = self.http.get(f"{self.coordination}/fhir/Task", params=params, headers=self.headers())
        response.raise_for_status()
        return [e["resource"] for e in response.json().get("entry", [])]

    def wait_for_task(self, request_id: str, *, status: str = "requested", timeout: float = 30) -> dict[str, Any]:
        """The Task coordination made for an acute request, once it is there (events take a moment)."""
        deadline = time.monotonic() + timeout
        while True:
            found = [t for t in self.tasks(status=status) if t["basedOn"][0]["identifier"]["value"] == request_id]
            if found:
                return found[0]
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {status} Task for acute request {request_id} after {timeout}s")
            time.sleep(0.2)

    def patch_task(self, task_id: str, operations: list[dict[str, Any]], if_match: str | None = None) -> httpx.Response:
        extra = {"Content-Type": "application/json-patch+json"}
        if if_match:
            extra["If-Match"] = if_match
        return self.http.patch(f"{self.coordination}/fhir/Task/{task_id}", json=operations, headers=self.headers(extra))

    def work_task(self, task_id: str, *, contact: str | None, start: str, end: str | None = None) -> httpx.Response:
        """Accept, start and complete a Task, recording the delivered contact (VR, HH, AMB) if any; the first
        refused step's response is returned as it is."""
        for status in ("accepted", "in-progress"):
            response = self.patch_task(task_id, [{"op": "replace", "path": "/status", "value": status}])
            if response.status_code != 200:
                return response
        return self.patch_task(task_id, completion_patch(contact=contact, start=start, end=end))

    def record_contact(self, *, channel: str, bsn: str | None, name: str, birth_date: str | None,
                       uzovi: str | None, complaint: str, caller: str = "patient", callback_phone: str | None = None,
                       address: tuple[str, str, str] | None = None) -> httpx.Response:
        """A phone call or walk-in at the front door (`POST /api/v1/requests`, scope triage.write), with the
        number to call back and the patient's home address (street and number, postal code, city) when known;
        the answer holds the acute request and whether the contact was linked to an open one."""
        body: dict[str, Any] = {"channel": channel, "patient": {"bsn": bsn, "name": name, "birth_date": birth_date},
                                "uzovi": uzovi, "complaint": complaint, "caller": caller,
                                "callback_phone": callback_phone}
        if address:
            body["address"] = dict(zip(("line", "postal_code", "city"), address, strict=True))
        return self.http.post(f"{self.triage}/api/v1/requests", json=body, headers=self.headers())

    def prestations(self) -> list[dict[str, Any]]:
        """Billing's ledger lines of every month (scope billing.read)."""
        response = self.http.get(f"{self.billing}/api/v1/prestations", headers=self.headers())
        response.raise_for_status()
        return list(response.json()["items"])

    def feed(self, uzovi: str, period: str) -> dict[str, Any]:
        response = self.http.get(f"{self.billing}/api/v1/feeds/{uzovi}", params={"period": period},
                                 headers=self.headers())
        response.raise_for_status()
        return dict(response.json())
