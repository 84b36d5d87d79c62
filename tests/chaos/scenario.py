"""Faults under load, then the books: nothing lost, nothing twice.

Each case runs a steady load of referrals (every one worked to its prestation by the bench driver),
injects one fault a third of the way in, lets the system settle, and then checks the invariants
from the services' databases and the public APIs:

- every accepted referral has exactly one acute request, one live Task and exactly one prestation
  line (priced, or with a stated exclusion reason), and one contact where one was delivered;
- no ServiceRequest identifier, Task, contact or ledger line exists twice;
- every poison record is on its `.dlq`, once per consumer of its topic, with the error;
- each insurer feed's totals equal the sum of its ledger lines.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer

from infra.ops import read_dead_letters
from infra.stack import Stack
from shared.bus.envelope import Event
from shared.bus.topics import (
    ACUTE_REQUEST_CLOSED,
    CONTACT_DELIVERED,
    CONTACT_LINKED,
    LINKED_CONTACT_RECORDED,
    PATIENT_CHANGED,
    REFERRAL_RECEIVED,
    TASK_CHANGED,
    TRIAGE_COMPLETED,
    dlq,
)
from tests.bench.load import Driver, Journey

# Who consumes what (the subscriptions in services/*/app.py): each must dead-letter a poison record.
CONSUMERS: dict[str, set[str]] = {
    REFERRAL_RECEIVED: {"coordination.referral-received"},
    PATIENT_CHANGED: {"coordination.patient-changed"},
    TRIAGE_COMPLETED: {"coordination.triage-completed", "billing_shadow.triage-completed", "billing_shadow.evaluation"},
    CONTACT_LINKED: {"billing_shadow.evaluation"},
    LINKED_CONTACT_RECORDED: {"coordination.linked-contact-recorded"},
    CONTACT_DELIVERED: {"billing_shadow.contact-delivered", "billing_shadow.evaluation"},
    ACUTE_REQUEST_CLOSED: {"billing_shadow.acute-request-closed", "triage.acute-request-closed",
                           "billing_shadow.evaluation"},
    TASK_CHANGED: {"triage.task-changed"},
}


@dataclass
class Books:
    """What the checks found; `lost` and `duplicated` must be zero."""

    accepted: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    poison_missing: list[str] = field(default_factory=list)
    feed_mismatch: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicated or self.poison_missing or self.feed_mismatch)

    def problems(self) -> str:
        return "; ".join(f"{name}: {values[:5]}" for name, values in (
            ("lost", self.lost), ("duplicated", self.duplicated), ("poison not dead-lettered", self.poison_missing),
            ("feed differs from ledger", self.feed_mismatch)) if values)


@dataclass
class CaseResult:
    name: str
    faults: int
    accepted: int
    lost: int
    duplicated: int
    driver_errors: list[str]
    books: Books
    seconds: float


class Chaos:
    """One stack on PostgreSQL, its databases reachable for the checks, and the faults to inject."""

    def __init__(self, stack: Stack, postgres_server: str) -> None:
        self.stack = stack
        self.postgres_server = postgres_server
        self.poison: list[tuple[str, str]] = []  # (topic, key) of every poison record sent
        self.accepted: set[str] = set()  # "ServiceRequest/<id>" of every referral the front door accepted

    # --- faults --------------------------------------------------------------------------------
    async def kill_service(self, name: str, down_seconds: float = 2.0) -> None:
        self.stack.kill_service(name)
        await asyncio.sleep(down_seconds)
        await asyncio.to_thread(self.stack.restart_service, name, 90)

    async def kill_instance(self, name: str, down_seconds: float) -> None:
        """kill -9 of one instance of a service ("coordination#2") while its sibling keeps serving: the driver's
        calls fail over, and the consumer groups move the dead member's partitions to the survivor once the
        broker gives up on it (its session timeout, 10 s) or it comes back after `down_seconds`."""
        self.stack.kill_service(name)
        await asyncio.sleep(down_seconds)
        await asyncio.to_thread(self.stack.restart_service, name, 90)

    async def kill_broker(self, down_seconds: float = 1.0) -> None:
        assert self.stack.broker is not None, "the broker fault needs the embedded broker"
        self.stack.broker.kill()
        await asyncio.sleep(down_seconds)
        await asyncio.to_thread(self.stack.broker.start)

    async def refuse_database(self, seconds: float = 5.0) -> None:
        """PostgreSQL refuses the services: no new connections to their databases, open ones cut."""
        names = [url.rsplit("/", 1)[1] for url in self.stack.database_urls.values()]
        admin = await asyncpg.connect(self.postgres_server)
        try:
            for name in names:
                await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
                await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
            await asyncio.sleep(seconds)
        finally:
            for name in names:
                await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            await admin.close()

    async def feed_poison(self) -> None:
        """Into every consumed topic: a record that is no CloudEvent, and a CloudEvent whose value is no
        usable resource of that topic."""
        producer = AIOKafkaProducer(bootstrap_servers=self.stack.bootstrap, acks="all", enable_idempotence=False)
        await producer.start()
        try:
            for topic in CONSUMERS:
                key = f"poison-{uuid.uuid4().hex[:12]}"
                await producer.send_and_wait(topic, key=key.encode(), value=b"\x00not json at all")
                self.poison.append((topic, key))
                key = f"poison-{uuid.uuid4().hex[:12]}"
                event = Event.of(topic=topic, key=key, source="/regiozorg/chaos", subject="poison",
                                 payload={"resourceType": "Basic", "id": "poison"})
                await producer.send_and_wait(topic, key=key.encode(), value=event.data, headers=event.headers())
                self.poison.append((topic, key))
        finally:
            await producer.stop()

    # --- load ------------------------------------------------------------------------------------
    async def run_case(self, name: str, fault: Callable[[], Awaitable[None]] | None, *, rate: float,
                       seconds: float, faults: int = 1) -> CaseResult:
        started = time.monotonic()
        async with Driver(triage=self.stack.urls("triage"), coordination=self.stack.urls("coordination"),
                          bootstrap=self.stack.bootstrap, step_timeout=180) as driver:
            journeys: list[Journey] = []
            tasks: list[asyncio.Task[None]] = []

            async def inject() -> None:
                if fault is not None:
                    await asyncio.sleep(seconds / 3)
                    await fault()

            await asyncio.gather(driver.offer(rate, seconds, journeys, tasks), inject())
            await asyncio.gather(*tasks)
        accepted = [j for j in journeys if j.accepted_at is not None and j.service_request]
        ids = {j.service_request for j in accepted if j.service_request}
        self.accepted |= ids
        books = await self.settle_and_check()
        return CaseResult(name=name, faults=faults if fault else 0, accepted=len(accepted),
                          lost=sum(1 for sr in books.lost if sr in ids),
                          duplicated=len(books.duplicated), driver_errors=[j.error for j in journeys if j.error],
                          books=books, seconds=round(time.monotonic() - started, 1))

    # --- the books ------------------------------------------------------------------------------
    async def settle_and_check(self, timeout: float = 120) -> Books:
        """Checks until everything adds up or `timeout` passes (events and feeds take a moment)."""
        deadline = time.monotonic() + timeout
        while True:
            books = await self.check()
            if books.clean or time.monotonic() > deadline:
                return books
            await asyncio.sleep(2)

    async def _rows(self, service: str, query: str) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.stack.database_urls[service].replace("postgresql+asyncpg", "postgresql"))
        try:
            return list(await conn.fetch(query))
        finally:
            await conn.close()

    async def check(self) -> Books:
        books = Books()
        requests = await self._rows("triage", "SELECT id, service_request_id FROM acute_request "
                                              "WHERE service_request_id IS NOT NULL")
        identifiers = await self._rows("triage", "SELECT system, value, count(*) AS n FROM fhir_identifier "
                                                 "WHERE resource_type = 'ServiceRequest' GROUP BY system, value")
        tasks = await self._rows("coordination", "SELECT acute_request_id, count(*) AS n FROM task "
                                                 "WHERE status <> 'cancelled' GROUP BY acute_request_id")
        encounters = await self._rows("coordination", "SELECT acute_request_id, count(*) AS n FROM encounter "
                                                      "GROUP BY acute_request_id")
        lines = await self._rows("billing_shadow", "SELECT acute_request_id, count(*) AS n FROM prestation_ledger "
                                                   "GROUP BY acute_request_id")
        books.accepted = len(requests)
        per_sr = Counter(r["service_request_id"] for r in requests)
        books.duplicated += [f"acute request of ServiceRequest/{sr}" for sr, n in per_sr.items() if n > 1]
        books.duplicated += [f"ServiceRequest {r['system']}|{r['value']}" for r in identifiers if r["n"] > 1]
        books.duplicated += [f"Task of {r['acute_request_id']}" for r in tasks if r["n"] > 1]
        books.duplicated += [f"contact of {r['acute_request_id']}" for r in encounters if r["n"] > 1]
        books.duplicated += [f"ledger line of {r['acute_request_id']}" for r in lines if r["n"] > 1]
        with_task = {r["acute_request_id"] for r in tasks}
        with_line = {r["acute_request_id"] for r in lines}
        request_of = {f"ServiceRequest/{r['service_request_id']}": r["id"] for r in requests}
        for sr in sorted(self.accepted):
            request = request_of.get(sr)
            if request is None or request not in with_task or request not in with_line:
                books.lost.append(sr)
        books.poison_missing = await self._poison_missing()
        books.feed_mismatch = await self._feed_mismatch()
        return books

    async def _poison_missing(self) -> list[str]:
        if not self.poison:
            return []
        letters = await read_dead_letters(self.stack.bootstrap, sorted({dlq(t) for t, _ in self.poison}),
                                          idle_seconds=1.0)
        found: dict[tuple[str, str], set[str]] = {}
        for letter in letters:
            if letter.header("dlq_error"):
                key = (letter.origin_topic, (letter.key or b"").decode())
                found.setdefault(key, set()).add(letter.header("dlq_consumer") or "")
        return [f"{topic} {key} (dead-lettered by {sorted(found.get((topic, key), set()))})"
                for topic, key in self.poison if not CONSUMERS[topic] <= found.get((topic, key), set())]

    async def _feed_mismatch(self) -> list[str]:
        sums = await self._rows("billing_shadow", """
            SELECT uzovi, period, sum(quantity) AS quantity, sum(quantity * unit_price_cents) AS amount
            FROM prestation_ledger
            WHERE uzovi IS NOT NULL AND code IS NOT NULL AND exclusion_reason IS NULL
              AND unit_price_cents IS NOT NULL
            GROUP BY uzovi, period""")
        wrong = []
        async with httpx.AsyncClient(timeout=30) as http:
            for row in sums:
                feed = await self._feed(http, row["uzovi"], row["period"])
                totals = feed.get("totals", {})
                if (totals.get("quantity"), totals.get("amount_cents")) != (row["quantity"], row["amount"]):
                    wrong.append(f"{row['uzovi']} {row['period']}: feed {totals.get('quantity')} / "
                                 f"{totals.get('amount_cents')}, ledger {row['quantity']} / {row['amount']}")
        return wrong

    async def _feed(self, http: httpx.AsyncClient, uzovi: str, period: str) -> dict[str, Any]:
        from shared.region import DEMO_CLIENTS

        client = next(c for c in DEMO_CLIENTS if c.client_id == f"insurer-{uzovi}")
        token = (await http.post(f"{self.stack.url('triage')}/oauth/token", data={"grant_type": "client_credentials"},
                                 auth=(client.client_id, client.demo_secret))).json()["access_token"]
        response = await http.get(f"{self.stack.url('billing_shadow')}/api/v1/feeds/{uzovi}",
                                  params={"period": period}, headers={"Authorization": f"Bearer {token}"})
        response.raise_for_status()
        return dict(response.json())


def cases(chaos: Chaos | None) -> list[tuple[str, Callable[[], Awaitable[None]] | None]]:
    """The faults of the suite, in the order they run (names only when `chaos` is None)."""
    if chaos is None:
        return [(name, None) for name, _ in cases(Chaos.__new__(Chaos))]
    return [
        ("no fault (baseline)", None),
        ("kill -9 triage", lambda: chaos.kill_service("triage")),
        ("kill -9 coordination", lambda: chaos.kill_service("coordination")),
        ("kill -9 billing_shadow", lambda: chaos.kill_service("billing_shadow")),
        ("kill -9 broker + restart", chaos.kill_broker),
        ("PostgreSQL refuses connections", chaos.refuse_database),
        ("poison record in every consumed topic", chaos.feed_poison),
    ]


# The stack of the two-instance cases: two processes of every service on the same databases and broker.
TWO_INSTANCES = {"triage": 2, "coordination": 2, "billing_shadow": 2}


def two_instance_cases(chaos: Chaos | None, down_seconds: float = 12.0
                       ) -> list[tuple[str, Callable[[], Awaitable[None]] | None]]:
    """The faults that need two instances of every service (TWO_INSTANCES), in the order they run.

    The books after them depend on the outbox relay and the notification sender being safe with two instances
    (issue #17, point 4): a relay publishing an event twice is absorbed by the idempotent consumers; what the
    books could then catch is a Task, contact or ledger line made twice, or one never made.
    """
    if chaos is None:
        return [(name, None) for name, _ in two_instance_cases(Chaos.__new__(Chaos))]
    return [("kill -9 one of two coordination instances",
             lambda: chaos.kill_instance("coordination#2", down_seconds))]


def table(results: list[CaseResult]) -> str:
    lines = [f"{'case':<40} {'faults':>6} {'accepted':>8} {'lost':>5} {'duplicated':>10} {'seconds':>7}"]
    for r in results:
        lines.append(f"{r.name:<40} {r.faults:>6} {r.accepted:>8} {r.lost:>5} {r.duplicated:>10} {r.seconds:>7}")
    total = (sum(r.faults for r in results), sum(r.accepted for r in results), sum(r.lost for r in results),
             sum(r.duplicated for r in results))
    lines.append(f"{'total':<40} {total[0]:>6} {total[1]:>8} {total[2]:>5} {total[3]:>10}")
    return "\n".join(lines)
