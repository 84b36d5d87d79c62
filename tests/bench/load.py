"""Drives referrals through the running product the way the demo region does, over its public APIs.

A partner EHR posts a referral Bundle; the front door's ops client triages it (urgency, disposition,
organisation); the owning partner accepts, starts and completes the Task through the FHIR API. The
driver watches the product's Kafka topics only to learn ids and the moment the prestation is recorded
(as a monitoring tap: nothing it reads changes what the product does).

Every step is retried until it succeeds, with the same Bundle identifier, so a service that crashes
mid-request costs time, never a second referral: that is what the chaos suite leans on.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from infra.client import completion_patch, service_request_of
from infra.demo import ROUTES as DEMO_ROUTES
from infra.demo import Route
from infra.referrals import DEMO_PATIENTS, referral_bundle
from shared import jsontext
from shared.bus.topics import PRESTATION_RECORDED, REFERRAL_RECEIVED, TASK_CHANGED
from shared.bus.watch import BrokerWatch
from shared.region import DEMO_CLIENTS
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

ACUTE_REQUEST_SYSTEM = "https://regiozorg.example/fhir/NamingSystem/acute-request"
PARTNERS = ("ehr-delinde", "ehr-zuidrand")  # the clients that post referrals

# The demo region's routes whose Task a client can work: only the GP practices (gp-office-hours, whose
# client may read Tasks only) and the transfer point (rtp-placement, no client) are left out, since nobody
# could complete their Tasks.
ROUTES: tuple[Route, ...] = tuple(route for route in DEMO_ROUTES if route.worker)
URGENCIES = ("U1", "U2", "U3", "U4", "U5")


class StepFailed(Exception):
    """A step the product refused for good (a 4xx that a retry cannot change)."""


def _valid_bsns() -> Iterator[str]:
    head = 90_000_000
    while True:
        digits = f"{head:08d}"
        check = sum(int(d) * w for d, w in zip(digits, range(9, 1, -1), strict=True)) % 11
        if check < 10:  # the eleven-test: 9·d1 + … + 2·d8 − d9 ≡ 0 (mod 11)
            yield digits + str(check)
        head += 1


_BSNS: list[str] = []
_BSN_SOURCE = _valid_bsns()


def bsn_of(number: int) -> str:
    """The number-th valid BSN from 900000000 on: a different patient for every referral."""
    while len(_BSNS) <= number:
        _BSNS.append(next(_BSN_SOURCE))
    return _BSNS[number]


@dataclass
class Journey:
    """One referral's way through the product, with the moments the driver saw."""

    number: int
    partner: str
    bundle: dict[str, Any]
    route: Route
    urgency: str
    posted_at: float = 0.0
    accepted_at: float | None = None
    service_request: str | None = None
    request_id: str | None = None
    task_id: str | None = None
    request_seen_at: float | None = None
    triaged_at: float | None = None
    task_seen_at: float | None = None
    completed_at: float | None = None
    recorded_at: float | None = None
    error: str | None = None

    @property
    def stage(self) -> str:
        """The last step this journey got through."""
        reached = [name for name, moment in (("posted", self.accepted_at), ("request seen", self.request_seen_at),
                                             ("triaged", self.triaged_at), ("Task seen", self.task_seen_at),
                                             ("Task completed", self.completed_at)) if moment is not None]
        return reached[-1] if reached else "nothing"

    @property
    def latency(self) -> float | None:
        return None if self.recorded_at is None else self.recorded_at - self.posted_at


def percentiles(values: list[float]) -> dict[str, float]:
    """p50, p95 and p99 of durations in seconds, in milliseconds (NaN each when there are none)."""
    if not values:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan")}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99)}


class Tap:
    """Reads the product's topics from the beginning and remembers what it needs, by id."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.request_of_service_request: dict[str, str] = {}
        self.task_of_request: dict[str, str] = {}
        self.recorded: dict[str, float] = {}  # acute request id -> monotonic time the line was seen
        self.lines_seen: dict[str, int] = {}
        self._waiters: dict[tuple[str, str], list[asyncio.Future[Any]]] = {}
        self._consumer: AIOKafkaConsumer | None = None
        # A restarted embedded broker has new, shorter logs that the old positions may already lie
        # within; like the services, the tap reads from the start again when the epoch changes.
        self._watch = BrokerWatch(bootstrap, partitions=ServiceSettings().topic_partitions, service="bench")
        self._watch.on_new_epoch(self._on_new_epoch)
        self._epoch: str | None = None
        self._rewind = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # A short fetch wait: the embedded broker answers a fetch only when the wait is over, and the tap's
        # own wait would otherwise be counted in every stage it observes (about a quarter of it, measured).
        self._consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                          auto_offset_reset="earliest", max_poll_records=2000, fetch_max_wait_ms=10)
        await self._consumer.start()
        await self._watch.start()
        self._epoch = self._watch.epoch
        await self._assign()
        self._task = asyncio.create_task(self._run(), name="tap")

    async def _on_new_epoch(self, epoch: str) -> None:
        if self._epoch not in (None, epoch):
            self._rewind = True
        self._epoch = epoch

    async def _assign(self) -> None:
        assert self._consumer is not None
        partitions = []
        for topic in (REFERRAL_RECEIVED, TASK_CHANGED, PRESTATION_RECORDED):
            found = self._consumer.partitions_for_topic(topic)
            while not found:
                await self._consumer._client.force_metadata_update()  # topics made by the services
                found = self._consumer.partitions_for_topic(topic)
                if not found:
                    await asyncio.sleep(0.2)
            partitions += [TopicPartition(topic, p) for p in found]
        self._consumer.assign(partitions)
        await self._consumer.seek_to_beginning(*partitions)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._watch.stop()
        if self._consumer:
            await self._consumer.stop()

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            try:
                if self._rewind:
                    self._rewind = False
                    await self._assign()
                batch = await self._consumer.getmany(timeout_ms=200)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker is away: read again from the start once it answers
                log.info("tap: %s; re-reading", exc.__class__.__name__)
                self._rewind = True
                await asyncio.sleep(0.5)
                continue
            if not batch:
                continue
            now = time.monotonic()
            for records in batch.values():
                for record in records:
                    self._take(record.topic, record.value, now)

    def _take(self, topic: str, value: bytes | None, now: float) -> None:
        try:
            body = jsontext.loads(value or b"")
        except ValueError:
            return  # not the product's (the chaos suite feeds poison records into these topics)
        if not isinstance(body, dict):
            return
        if topic == REFERRAL_RECEIVED:
            request_id = _identifier(body.get("identifier", []), ACUTE_REQUEST_SYSTEM)
            if request_id and body.get("id"):
                self._found("request", f"ServiceRequest/{body['id']}", request_id, self.request_of_service_request)
        elif topic == TASK_CHANGED:
            based_on = body.get("basedOn") or [{}]
            request_id = (based_on[0].get("identifier") or {}).get("value")
            if request_id and body.get("status") != "cancelled" and request_id not in self.task_of_request:
                self._found("task", request_id, body["id"], self.task_of_request)
        elif topic == PRESTATION_RECORDED:
            request_id = _identifier(body.get("identifier", []), ACUTE_REQUEST_SYSTEM)
            if request_id:
                self.lines_seen[request_id] = self.lines_seen.get(request_id, 0) + 1
                if request_id not in self.recorded:
                    self._found("recorded", request_id, now, self.recorded)

    def _found(self, kind: str, key: str, value: Any, table: dict[str, Any]) -> None:
        table[key] = value
        for waiter in self._waiters.pop((kind, key), []):
            if not waiter.done():
                waiter.set_result(value)

    async def wait(self, kind: str, key: str, timeout: float) -> Any:
        """The request id of a ServiceRequest ("request"), the Task of a request ("task"), or the moment
        its prestation line was seen ("recorded"), once the product has published it."""
        table = {"request": self.request_of_service_request, "task": self.task_of_request,
                 "recorded": self.recorded}[kind]
        if key in table:
            return table[key]
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault((kind, key), []).append(waiter)
        return await asyncio.wait_for(waiter, timeout)


def _identifier(identifiers: list[dict[str, Any]], system: str) -> str | None:
    return next((i.get("value") for i in identifiers if i.get("system") == system), None)


@dataclass
class Tokens:
    """Client-credentials tokens of the demo clients, fetched once and renewed before they run out."""

    http: httpx.AsyncClient
    triage: str
    cached: dict[str, tuple[str, float]] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    async def header(self, client_id: str) -> dict[str, str]:
        token, expires = self.cached.get(client_id, ("", 0.0))
        if time.monotonic() > expires - 30:
            async with self._locks.setdefault(client_id, asyncio.Lock()):
                token, expires = self.cached.get(client_id, ("", 0.0))
                if time.monotonic() > expires - 30:
                    secret = next(c.demo_secret for c in DEMO_CLIENTS if c.client_id == client_id)
                    response = await self.http.post(f"{self.triage}/oauth/token", auth=(client_id, secret),
                                                    data={"grant_type": "client_credentials"})
                    response.raise_for_status()
                    body = response.json()
                    token, expires = body["access_token"], time.monotonic() + body["expires_in"]
                    self.cached[client_id] = (token, expires)
        return {"Authorization": f"Bearer {token}"}


class Driver:
    """Posts referrals and works them to the end; keeps every Journey for the report and the checks."""

    def __init__(self, *, triage: str | Sequence[str], coordination: str | Sequence[str], bootstrap: str,
                 seed: int = 7, step_timeout: float = 120, concurrency: int = 256) -> None:
        # With several instances of a service, a journey starts at one of them (by its number) and a retry
        # goes to the next: a killed instance costs a retry, never the journey.
        self.triages = [triage] if isinstance(triage, str) else list(triage)
        self.coordinations = [coordination] if isinstance(coordination, str) else list(coordination)
        self.triage = self.triages[0]
        self.coordination = self.coordinations[0]
        self.tap = Tap(bootstrap)
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(30, connect=5),
                                      limits=httpx.Limits(max_connections=concurrency,
                                                          max_keepalive_connections=concurrency))
        self.tokens = Tokens(self.http, self.triage)
        self.random = random.Random(seed)
        self.step_timeout = step_timeout
        self.journeys: list[Journey] = []
        self.retries = 0
        self._numbers = itertools.count()
        self._run_id = uuid.uuid4().hex[:8]

    async def __aenter__(self) -> Driver:
        await self.tap.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.tap.stop()
        await self.http.aclose()

    @staticmethod
    def sample_bundle() -> dict[str, Any]:
        """A referral Bundle as the driver posts them (for the floor: the same Bundle, validated bare)."""
        patient = DEMO_PATIENTS[0]
        return referral_bundle(bsn=bsn_of(0), given=patient.given, family=patient.family,
                               birth_date=patient.birth_date, gender=patient.gender, uzovi="9001",
                               referral_id="sample", bundle_id="sample-b")

    def new_journey(self) -> Journey:
        number = next(self._numbers)
        patient = DEMO_PATIENTS[number % len(DEMO_PATIENTS)]
        partner = PARTNERS[number % len(PARTNERS)]
        bundle = referral_bundle(
            bsn=bsn_of(number), given=patient.given, family=patient.family, birth_date=patient.birth_date,
            gender=patient.gender, uzovi=("9001", "9002")[number % 2],
            requester_ura="90000010" if partner == "ehr-zuidrand" else None,
            referral_id=f"{self._run_id}-{number}", bundle_id=f"{self._run_id}-b{number}")
        journey = Journey(number, partner, bundle, self.random.choice(ROUTES), self.random.choice(URGENCIES))
        self.journeys.append(journey)
        return journey

    @staticmethod
    def _spread(bases: list[str], number: int, path: str) -> list[str]:
        """The URLs of `path` at every instance, starting at the one journey `number` uses first."""
        return [f"{bases[(number + i) % len(bases)]}{path}" for i in range(len(bases))]

    async def _call(self, client_id: str, method: str, urls: str | list[str], *, ok: tuple[int, ...] = (200, 201),
                    done: tuple[int, ...] = (), again: tuple[int, ...] = (408, 429),
                    headers: dict[str, str] | None = None, json: Any = None) -> httpx.Response | None:
        """One API call, retried over crashes, restarts and 5xx; `done` statuses mean "already applied".
        With several `urls` (the same resource at each instance) every retry goes to the next one."""
        candidates = [urls] if isinstance(urls, str) else urls
        deadline = time.monotonic() + self.step_timeout
        delay, last = 0.05, ""
        for attempt in itertools.count():
            url = candidates[attempt % len(candidates)]
            try:
                auth = await self.tokens.header(client_id)
                response = await self.http.request(method, url, headers={**(headers or {}), **auth}, json=json)
                if response.status_code in ok:
                    return response
                if response.status_code in done:
                    return None
                last = f"{response.status_code} {response.text[:200]}"
                if response.status_code == 401:
                    self.tokens.cached.pop(client_id, None)
                elif response.status_code < 500 and response.status_code not in again:
                    raise StepFailed(f"{method} {url}: {response.status_code} {response.text[:300]}")
            except httpx.HTTPError as exc:  # refused, reset or timed out: the service is away
                last = exc.__class__.__name__
                log.debug("retrying %s %s after %s", method, url, last)
            self.retries += 1
            if time.monotonic() > deadline:
                raise StepFailed(f"{method} {url} kept failing for {self.step_timeout}s, last: {last}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
        raise AssertionError("unreachable")

    async def post(self, journey: Journey) -> None:
        journey.posted_at = time.monotonic()
        # 409: a concurrent copy of this Bundle (a retry) is being stored; the next attempt finds it.
        response = await self._call(journey.partner, "POST", self._spread(self.triages, journey.number, "/fhir"),
                                    json=journey.bundle,
                                    again=(408, 409, 429),
                                    headers={"Content-Type": "application/fhir+json"})
        assert response is not None
        journey.accepted_at = time.monotonic()
        journey.service_request = service_request_of(response.json())

    async def offer(self, rate: float, seconds: float, journeys: list[Journey], tasks: list[asyncio.Task[None]],
                    on_each: Callable[[], None] | None = None) -> None:
        """Open loop: a new referral every 1/rate seconds for `seconds`, each run to its end in its own task
        (appended to `journeys` and `tasks` as they start, so a caller can watch them meanwhile)."""
        begin = time.monotonic()
        for i in range(max(1, round(rate * seconds))):
            delay = begin + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            journey = self.new_journey()
            journeys.append(journey)
            tasks.append(asyncio.create_task(self.run(journey)))
            if on_each:
                on_each()

    async def run(self, journey: Journey) -> None:
        """The whole way: post, triage, work the Task, wait until billing recorded the line."""
        try:
            await self.post(journey)
            await self.finish(journey)
        except (StepFailed, TimeoutError) as exc:
            journey.error = f"{exc.__class__.__name__} after {journey.stage}: {exc}"

    async def finish(self, journey: Journey) -> None:
        route = journey.route
        sr = journey.service_request
        tap = self.tap
        journey.request_id = await tap.wait("request", sr, self.step_timeout)
        journey.request_seen_at = time.monotonic()
        await self._call("ops", "POST", self._spread(self.triages, journey.number,
                                                     f"/api/v1/requests/{journey.request_id}/triage"), done=(409,),
                         json={"urgency": journey.urgency, "disposition": route.disposition,
                               "assigned_organization": route.organisation, "note": "bench"})
        journey.triaged_at = time.monotonic()
        rid = journey.request_id
        journey.task_id = await tap.wait("task", rid, self.step_timeout)
        journey.task_seen_at = time.monotonic()
        assert route.worker is not None
        await self.work(route.worker, journey.task_id, route.contact, number=journey.number)
        journey.completed_at = time.monotonic()
        journey.recorded_at = await tap.wait("recorded", rid, self.step_timeout)

    async def work(self, client_id: str, task_id: str, contact: str | None, *, number: int = 0) -> None:
        """Accept, start and complete, as a partner does: patch the next status straight away, and read
        the Task only when a step was refused (a retry after a crash may find it further on)."""
        url = self._spread(self.coordinations, number, f"/fhir/Task/{task_id}")
        steps = ["requested", "accepted", "in-progress", "completed"]
        status = "requested"
        for _ in range(20):
            if status == "completed":
                return
            following = steps[steps.index(status) + 1] if status in steps else "accepted"
            ops: list[dict[str, Any]] = [{"op": "replace", "path": "/status", "value": following}]
            if following == "completed":
                # Full precision: a start cut to the second could lie before the request's receipt.
                ops = completion_patch(contact=contact, start=datetime.now(UTC).isoformat())
            response = await self._call(client_id, "PATCH", url, json=ops, done=(409, 412, 422),
                                        headers={"Content-Type": "application/json-patch+json"})
            if response is not None:
                status = response.json()["status"]
                continue
            current = await self._call(client_id, "GET", url)
            assert current is not None
            status = current.json()["status"]
        raise StepFailed(f"Task {task_id} did not reach completed")
