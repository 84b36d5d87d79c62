"""Partner notifications to real HTTP receivers: in order, exactly once per event number, across an outage
of the receiver and a crash of coordination; a receiver that never comes back ends in `error`; the R4
Subscriptions Backport IG form, with `$status` and `$events` for a receiver that lost an event."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from infra.client import service_request_of
from infra.referrals import referral_bundle
from infra.stack import Stack
from tests.conftest import free_port, started_stack

pytestmark = pytest.mark.e2e
BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"


def event_number(body: dict[str, Any]) -> int | None:
    for parameter in body["entry"][0]["resource"]["parameter"]:
        if parameter["name"] == "notification-event":
            return int(next(p["valueString"] for p in parameter["part"] if p["name"] == "event-number"))
    return None


class Receiver:
    """A partner's notification endpoint that can be taken down and brought back on the same port; `loses`
    names events it answers 2xx but drops, as a partner system that crashed after the answer would."""

    def __init__(self, loses: frozenset[int] = frozenset()) -> None:
        self.port = free_port()
        self.loses = loses
        self.received: list[dict[str, Any]] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/notify"

    def start(self) -> None:
        received, loses = self.received, self.loses

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if event_number(body) not in loses:
                    received.append(body)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def events(self) -> list[tuple[str, int | None]]:
        """(type, event number) of every notification received, in arrival order."""
        found = []
        for body in self.received:
            params = {p["name"]: p for p in body["entry"][0]["resource"]["parameter"]}
            found.append((params["type"]["valueCode"], event_number(body)))
        return found


# How long coordination keeps retrying a notification before it gives the subscription up: the module's stack
# must outlast the first test's outage (the receiver down across a crash and restart of coordination); the
# receiver that never comes back gets a stack of its own that gives up quickly, so that its test does not wait
# for the long one.
GIVE_UP_SECONDS = 45.0
QUICK_GIVE_UP_SECONDS = 3.0


def notify_env(give_up_seconds: float) -> dict[str, str]:
    """Coordination's retry policy for these tests: 0.2 s doubling to at most 1 s, given up after the given time."""
    return {"COORDINATION_NOTIFY_BASE_SECONDS": "0.2", "COORDINATION_NOTIFY_MAX_BACKOFF_SECONDS": "1",
            "COORDINATION_NOTIFY_GIVE_UP_SECONDS": str(give_up_seconds)}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from started_stack(tmp_path_factory, "notify", env=notify_env(GIVE_UP_SECONDS))


@pytest.fixture
def quick_to_give_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack whose coordination gives a failing receiver up after QUICK_GIVE_UP_SECONDS."""
    yield from started_stack(tmp_path_factory, "notify-give-up", env=notify_env(QUICK_GIVE_UP_SECONDS))


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"{what} not reached within {timeout}s")


def subscribe(stack: Stack, client_id: str, owner: str, endpoint: str) -> dict[str, Any]:
    partner = stack.client(client_id)
    response = httpx.post(f"{stack.url('coordination')}/fhir/Subscription", headers=partner.headers(), json={
        "resourceType": "Subscription", "status": "requested", "reason": "new Tasks for us",
        "criteria": f"Task?owner={owner}",
        "channel": {"type": "rest-hook", "endpoint": endpoint, "payload": "application/fhir+json",
                    "_payload": {"extension": [{"url": f"{BACKPORT}/backport-payload-content",
                                                "valueCode": "id-only"}]},
                    "extension": [{"url": f"{BACKPORT}/backport-heartbeat-period", "valueUnsignedInt": 3600}]}})
    assert response.status_code == 201, response.text
    return response.json()


def subscription(stack: Stack, client_id: str, subscription_id: str) -> dict[str, Any]:
    partner = stack.client(client_id)
    return httpx.get(f"{stack.url('coordination')}/fhir/Subscription/{subscription_id}",
                     headers=partner.headers()).json()


def route_to(stack: Stack, bsn: str, organisation: str, disposition: str = "home-visit") -> None:
    ops = stack.client("ops")
    posted = stack.client("ehr-delinde").post_referral(referral_bundle(bsn=bsn))
    posted.raise_for_status()
    sr = service_request_of(posted.json())
    request_id = wait_until(lambda: next((i["id"] for i in ops.worklist() if i["service_request"] == sr), None),
                            30, "the request on the worklist")
    ops.triage_request(request_id, urgency="U3", disposition=disposition, organization=organisation) \
        .raise_for_status()


def test_notifications_arrive_once_in_order_across_an_outage_and_a_coordination_crash(stack: Stack) -> None:
    receiver = Receiver()
    receiver.start()
    created = subscribe(stack, "ehr-wijk-oost", "http://fhir.nl/fhir/NamingSystem/ura|90000020", receiver.url)
    wait_until(lambda: subscription(stack, "ehr-wijk-oost", created["id"])["status"] == "active", 30, "handshake")
    assert receiver.events()[0] == ("handshake", None)

    for bsn in ("999990007", "999990019"):
        route_to(stack, bsn, "URA 90000020")
    wait_until(lambda: [n for _, n in receiver.events() if n] == [1, 2], 30, "the first two notifications")

    receiver.stop()
    for bsn in ("999990020", "999990032"):
        route_to(stack, bsn, "URA 90000020")
    wijk = stack.client("ehr-wijk-oost")
    task = wait_until(lambda: wijk.tasks(status="requested"), 30, "requested Tasks")[0]
    assert wijk.patch_task(task["id"], [{"op": "replace", "path": "/status", "value": "accepted"}]).status_code == 200
    wait_until(lambda: subscription(stack, "ehr-wijk-oost", created["id"])["status"] == "active", 5, "still active")
    stack.kill_service("coordination")
    stack.start_service("coordination")
    stack.wait_ready(60, ["coordination"])
    receiver.start()

    def all_five() -> bool:
        return len([n for _, n in receiver.events() if n]) >= 5

    wait_until(all_five, 60, "all five notifications after the outage")
    numbers = [n for kind, n in receiver.events() if kind == "event-notification"]
    assert numbers == [1, 2, 3, 4, 5]
    focus = [p for p in receiver.received[-1]["entry"][0]["resource"]["parameter"] if p["name"] == "notification-event"]
    assert focus[0]["part"][2]["valueReference"]["reference"].startswith(f"{stack.url('coordination')}/fhir/Task/")
    assert "resource" not in receiver.received[-1]["entry"][1]  # id-only: the partner reads the Task itself
    with sqlite3.connect(stack.data_dir / "coordination.db") as db:
        failed = db.execute("SELECT count(*) FROM delivery_attempt WHERE subscription_id = ? AND status_code IS NULL",
                            (created["id"],)).fetchone()[0]
    assert failed >= 1  # the outage's attempts were recorded
    receiver.stop()


def test_a_receiver_that_never_comes_back_turns_the_subscription_to_error(quick_to_give_up: Stack) -> None:
    stack = quick_to_give_up
    receiver = Receiver()
    receiver.start()
    created = subscribe(stack, "ehr-zuidrand", "URA 90000010", receiver.url)
    wait_until(lambda: subscription(stack, "ehr-zuidrand", created["id"])["status"] == "active", 30, "handshake")
    receiver.stop()
    route_to(stack, "999990044", "URA 90000010", disposition="onsite-consult")  # what the hospital provides
    ended = wait_until(lambda: (s := subscription(stack, "ehr-zuidrand", created["id"]))["status"] == "error" and s,
                       60, "the subscription in error")
    # Given up only after retrying for the whole give-up time, every attempt recorded.
    with sqlite3.connect(stack.data_dir / "coordination.db") as db:
        failed = [datetime.fromisoformat(at) for (at,) in db.execute(
            "SELECT at FROM delivery_attempt WHERE subscription_id = ? AND kind = 'event-notification' "
            "AND status_code IS NULL ORDER BY pk", (created["id"],))]
    assert len(failed) >= 3
    assert (failed[-1] - failed[0]).total_seconds() >= QUICK_GIVE_UP_SECONDS
    assert ended["error"].startswith(f"gave up after {len(failed)} attempts since ")
    other = httpx.get(f"{stack.url('coordination')}/fhir/Subscription/{created['id']}",
                      headers=stack.client("ehr-wijk-oost").headers())
    assert other.status_code == 404


def test_subscribing_to_another_organisations_tasks_is_refused(stack: Stack) -> None:
    partner = stack.client("ehr-wijk-oost")
    response = httpx.post(f"{stack.url('coordination')}/fhir/Subscription", headers=partner.headers(), json={
        "resourceType": "Subscription", "criteria": "Task?owner=URA 90000010",
        "channel": {"type": "rest-hook", "endpoint": "http://127.0.0.1:1/x"}})
    assert response.status_code == 422
    assert response.json()["issue"][0]["code"] == "forbidden"


def parameters(status: dict[str, Any]) -> dict[str, Any]:
    """A SubscriptionStatus Parameters by name; its notification-event parts as (event number, focus) pairs."""
    found: dict[str, Any] = {"notification-event": []}
    for parameter in status["parameter"]:
        if parameter["name"] == "notification-event":
            parts = {p["name"]: p for p in parameter["part"]}
            found["notification-event"].append((int(parts["event-number"]["valueString"]),
                                                parts["focus"]["valueReference"]["reference"]))
        else:
            found[parameter["name"]] = next(v for k, v in parameter.items() if k.startswith("value"))
    return found


def backport_subscription(topic: str, filters: list[str], endpoint: str) -> dict[str, Any]:
    """A Subscription as a partner following the R4 Subscriptions Backport IG writes it."""
    return {"resourceType": "Subscription", "status": "requested", "reason": "Taken van Wijkverpleging Oost",
            "meta": {"profile": [f"{BACKPORT}/backport-subscription"]},
            "criteria": topic,
            "_criteria": {"extension": [{"url": f"{BACKPORT}/backport-filter-criteria", "valueString": f}
                                        for f in filters]},
            "channel": {"type": "rest-hook", "endpoint": endpoint, "payload": "application/fhir+json",
                        "_payload": {"extension": [{"url": f"{BACKPORT}/backport-payload-content",
                                                    "valueCode": "id-only"}]},
                        "extension": [{"url": f"{BACKPORT}/backport-heartbeat-period", "valueUnsignedInt": 3600},
                                      {"url": f"{BACKPORT}/backport-timeout", "valueUnsignedInt": 3}]}}


def advertised_topic(stack: Stack) -> str:
    """The topic canonical on coordination's CapabilityStatement, found as a partner's EHR would find it."""
    metadata = httpx.get(f"{stack.url('coordination')}/fhir/metadata").json()
    subscription = next(r for r in metadata["rest"][0]["resource"] if r["type"] == "Subscription")
    assert {o["name"] for o in subscription["operation"]} >= {"status", "events"}
    return next(e["valueCanonical"] for e in subscription["extension"]
                if e["url"] == f"{BACKPORT}/capabilitystatement-subscriptiontopic-canonical")


def test_a_backport_subscription_is_notified_and_fetches_the_event_it_lost_by_number(stack: Stack) -> None:
    coordination = stack.url("coordination")
    wijk = stack.client("ehr-wijk-oost")
    receiver = Receiver(loses=frozenset({1}))
    receiver.start()
    topic = advertised_topic(stack)
    created = httpx.post(f"{coordination}/fhir/Subscription", headers=wijk.headers(), json=backport_subscription(
        topic, ["Task?owner=http://fhir.nl/fhir/NamingSystem/ura|90000020"], receiver.url))
    assert created.status_code == 201, created.text
    subscription_id = created.json()["id"]
    assert created.json()["criteria"] == topic
    wait_until(lambda: subscription(stack, "ehr-wijk-oost", subscription_id)["status"] == "active", 30, "handshake")
    handshake = parameters(receiver.received[0]["entry"][0]["resource"])
    assert (handshake["type"], handshake["topic"]) == ("handshake", topic)
    assert handshake["subscription"]["reference"] == f"{coordination}/fhir/Subscription/{subscription_id}"

    route_to(stack, "999990056", "URA 90000020")
    route_to(stack, "999990068", "URA 90000020")
    wait_until(lambda: [n for _, n in receiver.events() if n] == [2], 30, "the second notification")
    second = parameters(receiver.received[-1]["entry"][0]["resource"])
    assert second["type"] == "event-notification" and second["topic"] == topic
    assert [n for n, _ in second["notification-event"]] == [2]  # 1 is missing: the receiver sees the gap

    missed = httpx.get(f"{coordination}/fhir/Subscription/{subscription_id}/$events", headers=wijk.headers(),
                       params={"eventsSinceNumber": "1", "eventsUntilNumber": "1", "content": "id-only"})
    assert missed.status_code == 200, missed.text
    assert missed.json()["type"] == "history"
    status = parameters(missed.json()["entry"][0]["resource"])
    assert status["type"] == "query-event"
    [(number, focus)] = status["notification-event"]
    assert number == 1 and focus.startswith(f"{coordination}/fhir/Task/")
    assert focus != second["notification-event"][0][1]
    assert [e["fullUrl"] for e in missed.json()["entry"][1:]] == [focus]
    task = httpx.get(focus, headers=wijk.headers())
    assert task.status_code == 200
    assert task.json()["owner"]["identifier"]["value"] == "90000020"

    both = httpx.get(f"{coordination}/fhir/Subscription/{subscription_id}/$events", headers=wijk.headers())
    assert [n for n, _ in parameters(both.json()["entry"][0]["resource"])["notification-event"]] == [1, 2]

    answer = httpx.get(f"{coordination}/fhir/Subscription/{subscription_id}/$status", headers=wijk.headers())
    assert answer.status_code == 200 and answer.json()["type"] == "searchset"
    current = parameters(answer.json()["entry"][0]["resource"])
    assert (current["type"], current["status"], current["events-since-subscription-start"], current["topic"]) == (
        "query-status", "active", "2", topic)

    zuidrand = stack.client("ehr-zuidrand")
    for operation in ("$status", "$events"):
        other = httpx.get(f"{coordination}/fhir/Subscription/{subscription_id}/{operation}",
                          headers=zuidrand.headers())
        assert other.status_code == 404 and other.json()["resourceType"] == "OperationOutcome"
    with sqlite3.connect(stack.data_dir / "coordination.db") as db:
        audited = db.execute("SELECT entity, outcome, agent_org FROM audit_event WHERE entity LIKE ? "
                             "OR entity LIKE ? ORDER BY recorded",
                             (f"Subscription/{subscription_id}/$%", f"GET /fhir/Subscription/{subscription_id}/$%"),
                             ).fetchall()
    assert [(entity.split("?")[0].rsplit("/", 1)[-1], outcome) for entity, outcome, _ in audited] == [
        ("$events", "0"), ("$events", "0"), ("$status", "0"), ("$status", "4"), ("$events", "4")]
    assert [org for _, _, org in audited] == ["http://fhir.nl/fhir/NamingSystem/ura|90000020"] * 3 + [
        "http://fhir.nl/fhir/NamingSystem/ura|90000010"] * 2
    receiver.stop()


def test_a_backport_filter_on_another_organisation_or_an_unknown_topic_is_refused_with_the_location(
        stack: Stack) -> None:
    coordination = stack.url("coordination")
    wijk = stack.client("ehr-wijk-oost")
    topic = advertised_topic(stack)
    others = httpx.post(f"{coordination}/fhir/Subscription", headers=wijk.headers(), json=backport_subscription(
        topic, ["Task?owner=http://fhir.nl/fhir/NamingSystem/ura|90000010"], "http://127.0.0.1:1/x"))
    assert others.status_code == 422
    assert [(i["code"], i["expression"]) for i in others.json()["issue"]] == [
        ("forbidden", ["Subscription.criteria.extension[0].valueString"])]
    unknown = httpx.post(f"{coordination}/fhir/Subscription", headers=wijk.headers(), json=backport_subscription(
        "https://regiozorg.example/fhir/SubscriptionTopic/patient-admitted",
        ["Task?owner=http://fhir.nl/fhir/NamingSystem/ura|90000020"], "http://127.0.0.1:1/x"))
    assert unknown.status_code == 422
    assert [(i["code"], i["expression"]) for i in unknown.json()["issue"]] == [
        ("not-supported", ["Subscription.criteria"])]


def own_subscription(**changes: Any) -> dict[str, Any]:
    return {"resourceType": "Subscription", "status": "requested", "reason": "Taken van Wijkverpleging Oost",
            "criteria": "Task?owner=URA 90000020",
            "channel": {"type": "rest-hook", "endpoint": "http://127.0.0.1:1/x"}, **changes}


@pytest.mark.parametrize(("body", "status", "location"), [
    (own_subscription(channel="rest-hook"), 422, "Subscription.channel"),
    (own_subscription(channel={"type": "rest-hook", "endpoint": "http://127.0.0.1:1/x", "header": []}), 400,
     "Subscription.channel.header"),
    (own_subscription(status="on"), 422, "Subscription.status"),
    (own_subscription(extension=[{"url": "https://ehr.example.nl/ext/about",
                                  "valueReference": {"reference": "urn:uuid:75ca5045-3136-4da5-8f17-03448485e22b"}}]),
     422, "Subscription.extension[0].valueReference"),
], ids=["channel-not-an-object", "empty-header", "unknown-status", "dangling-placeholder"])
def test_a_subscription_that_is_not_valid_fhir_is_refused_at_its_location(stack: Stack, body: dict[str, Any],
                                                                          status: int, location: str) -> None:
    response = httpx.post(f"{stack.url('coordination')}/fhir/Subscription", json=body,
                          headers=stack.client("ehr-wijk-oost").headers())
    assert response.status_code == status, response.text
    assert location in {e for issue in response.json()["issue"] for e in issue.get("expression", [])}
