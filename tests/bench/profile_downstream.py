"""What coordination and shadow billing cost per closed request, measured in-process against PostgreSQL.

    python -m tests.bench.profile_downstream [--requests 200] [--repeat 3] [--top 30] [--no-profile]
                                             [--sort tottime|cumulative] [--postgres postgresql://…/postgres]

For N acute requests it runs, in this process and against fresh databases on the server:
  1. coordination's consumers for what the front door publishes per request (referral-received, patient-changed,
     triage-completed: one Task each), through the real idempotent consumer (`Subscriber.apply`);
  2. the partner working each Task through the FHIR API (PATCH accepted, in-progress, completed with a delivered
     contact), straight into its ASGI app with a fixed caller instead of a token;
  3. shadow billing's consumers for what triage and coordination published (ledger: triage-completed,
     contact-delivered, acute-request-closed; evaluation: the same three), and the feed publisher once every
     `--feed-every` requests (it is debounced in the service).
Each phase is measured without a profiler in `--repeat` rounds of N requests (CPU of this process in ms per
request, the least of the rounds; SQL statements per request, the same in every round), then, unless
`--no-profile`, under cProfile on another N requests, printing the top functions (cProfile times are wall
times). Statements are what reaches the driver (SELECT/INSERT/UPDATE/DELETE; BEGIN and COMMIT counted
apart). PostgreSQL's own CPU is not in these figures.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import io
import json
import pstats
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.client import completion_patch
from services.billing_shadow import evaluation as billing_evaluation
from services.billing_shadow import service as billing
from services.coordination import episodes
from services.coordination import service as coordination
from services.coordination.app import create_app
from services.coordination.models import TaskRecord
from services.coordination.settings import CoordinationSettings
from services.triage import events as triage_events
from services.triage.models import AcuteRequest
from shared import migrations
from shared.auth import Caller
from shared.bus.consumer import Subscriber
from shared.bus.envelope import Event
from shared.bus.outbox import OutboxRecord
from shared.bus.topics import ACUTE_REQUEST_CLOSED, CONTACT_DELIVERED
from shared.db import make_engine, session_factory
from shared.identifiers import BSN_SYSTEM
from shared.settings import CODESYSTEM_BASE

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
OWNER = "http://fhir.nl/fhir/NamingSystem/ura|90000020"
REFERRER = "http://fhir.nl/fhir/NamingSystem/agb-z|01000001"
FRONT_DOOR_FHIR = "http://127.0.0.1:8001/fhir"
GRACE = timedelta(hours=72)
VERB = re.compile(r"\s*(\w+)")


@dataclass
class StatementCounter:
    """Statements sent to the database by one engine, by first word (SELECT, INSERT, ...), plus transactions."""

    counts: collections.Counter[str] = field(default_factory=collections.Counter)

    def attach(self, engine: AsyncEngine) -> None:
        @event.listens_for(engine.sync_engine, "before_cursor_execute")
        def _statement(_conn, _cursor, statement, _parameters, _context, _many) -> None:  # type: ignore[no-untyped-def]
            found = VERB.match(statement)
            self.counts[found.group(1).upper() if found else "?"] += 1

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(_conn) -> None:  # type: ignore[no-untyped-def]
            self.counts["BEGIN"] += 1

        @event.listens_for(engine.sync_engine, "commit")
        def _commit(_conn) -> None:  # type: ignore[no-untyped-def]
            self.counts["COMMIT"] += 1

    def take(self) -> collections.Counter[str]:
        taken, self.counts = self.counts, collections.Counter()
        return taken


class FixedVerifier:
    """Every bearer token is the owning partner's client (the bench's tokens cost the auth helper's work)."""

    def __init__(self, caller: Caller) -> None:
        self.caller = caller

    async def verify(self, _token: str) -> Caller:
        return self.caller


class NoBroker:
    """What the edges need of the relay, without a broker."""

    def wake(self) -> None:
        return None


def front_door_events(n: int, tag: str) -> list[Event]:
    """What the front door publishes for one referral: referral-received, patient-changed, triage-completed."""
    now = datetime.now(UTC)
    request_id, pseudonym, patient_id = f"req-{tag}-{n}", f"p-{tag}{n:0{32 - len(tag)}d}", f"pat-{tag}-{n}"
    routed = AcuteRequest(id=request_id, pseudonym=pseudonym, patient_id=patient_id, channel="referral",
                          submitted_by=REFERRER, received_at=now - timedelta(minutes=5), urgency="U3",
                          disposition="home-visit", service_request_id=f"sr-{tag}-{n}", assigned_org=OWNER,
                          uzovi="9001", due_at=now + timedelta(hours=3), triaged_at=now - timedelta(minutes=2))
    service_request = {"resourceType": "ServiceRequest", "id": f"sr-{tag}-{n}", "status": "active",
                       "intent": "order", "subject": {"reference": f"Patient/{patient_id}"},
                       "authoredOn": (now - timedelta(minutes=5)).isoformat(),
                       "reasonCode": [{"text": "Wond lekt na operatie"}]}
    patient = {"resourceType": "Patient", "id": patient_id,
               "meta": {"versionId": "1", "lastUpdated": (now - timedelta(minutes=5)).isoformat()},
               "identifier": [{"system": BSN_SYSTEM, "value": "999990019"}],
               "name": [{"family": "Bakker", "given": ["Aaltje"]}], "birthDate": "1937-11-02",
               "telecom": [{"system": "phone", "value": "0611111111"}],
               "address": [{"use": "home", "line": ["Molenweg 3"], "postalCode": "1234 AB", "city": "West"}]}
    return [triage_events.referral_received(routed.id, routed.pseudonym, service_request, traceparent=None),
            triage_events.patient_changed(patient, pseudonym=pseudonym, uzovi="9001", traceparent=None),
            triage_events.triage_completed(routed, note="Wondzorg", codesystem_base=CODESYSTEM_BASE,
                                           traceparent=None, complaint="Wond lekt na operatie")]


async def fresh_database(server: str, label: str) -> str:
    name = f"rz_profile_{label}_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return server.rsplit("/", 1)[0] + "/" + name


async def drop_database(server: str, url: str) -> None:
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await conn.close()


@dataclass
class Phase:
    name: str
    cpu_ms: float
    statements: collections.Counter[str]
    requests: int

    def line(self) -> str:
        work = sum(v for k, v in self.statements.items() if k not in ("BEGIN", "COMMIT"))
        detail = ", ".join(f"{k} {v / self.requests:.1f}" for k, v in sorted(self.statements.items()))
        return (f"{self.name:<34} {self.cpu_ms / self.requests:7.2f} ms CPU/request  "
                f"{work / self.requests:5.1f} statements/request  ({detail})")


class Downstream:
    """Coordination's app and consumers and billing's consumers on fresh PostgreSQL databases."""

    def __init__(self, coordination_url: str, billing_url: str) -> None:
        settings = CoordinationSettings(database_url=coordination_url, REGIOZORG_ENV="test")
        self.app = create_app(settings)
        runtime = self.app.state.runtime
        runtime.relay = NoBroker()
        caller = Caller(subject="bench-partner", kind="client", org=OWNER, scopes=frozenset({"system/Task.cruds"}))
        self.app.state.verifier = FixedVerifier(caller)
        self.coordination_engine: AsyncEngine = runtime.engine
        self.coordination_sessions = runtime.sessions
        self.billing_engine = make_engine(billing_url)
        self.billing_sessions = session_factory(self.billing_engine)
        self.coordination_statements, self.billing_statements = StatementCounter(), StatementCounter()
        self.coordination_statements.attach(self.coordination_engine)
        self.billing_statements.attach(self.billing_engine)
        self.coordination_consumers = {
            "regiozorg.triage.referral-received.v1": Subscriber(
                name="coordination.referral-received", topics=[], handler=episodes.on_referral_received,
                sessions=self.coordination_sessions),
            "regiozorg.triage.patient-changed.v1": Subscriber(
                name="coordination.patient-changed", topics=[], sessions=self.coordination_sessions,
                handler=lambda s, e: coordination.on_patient_changed(s, e, codesystem_base=CODESYSTEM_BASE)),
            "regiozorg.triage.triage-completed.v1": Subscriber(
                name="coordination.triage-completed", topics=[], sessions=self.coordination_sessions,
                handler=lambda s, e: coordination.on_triage_completed(s, e, codesystem_base=CODESYSTEM_BASE,
                                                                      front_door_fhir_base=FRONT_DOOR_FHIR))}
        ledger = {"regiozorg.triage.triage-completed.v1": billing.on_triage_completed,
                  CONTACT_DELIVERED: billing.on_contact_delivered,
                  ACUTE_REQUEST_CLOSED: billing.on_acute_request_closed}
        self.ledger_consumers = {topic: Subscriber(
            name=f"billing_shadow.{topic.split('.')[2]}", topics=[], sessions=self.billing_sessions,
            handler=_with_grace(handler)) for topic, handler in ledger.items()}
        self.evaluation_consumer = Subscriber(name="billing_shadow.evaluation", topics=[],
                                                 handler=billing_evaluation.on_event, sessions=self.billing_sessions)

    async def open(self) -> Downstream:
        await migrations.migrate(self.coordination_engine, "coordination")
        await migrations.migrate(self.billing_engine, "billing_shadow")
        async with self.billing_sessions() as session, session.begin():
            await billing.seed_tariffs(session)
        return self

    async def close(self) -> None:
        await self.coordination_engine.dispose()
        await self.billing_engine.dispose()

    async def consume_front_door(self, batch: list[list[Event]]) -> None:
        for events in batch:
            for item in events:
                await self.coordination_consumers[item.topic].apply(item)

    async def task_ids(self, batch: list[list[Event]]) -> list[str]:
        request_ids = [events[-1].subject.removeprefix("ServiceRequest/") for events in batch]
        async with self.coordination_sessions() as session:
            rows = (await session.execute(select(TaskRecord.acute_request_id, TaskRecord.id).where(
                TaskRecord.acute_request_id.in_(request_ids)))).all()  # type: ignore[attr-defined]
        by_request = dict(rows)
        return [by_request[request_id] for request_id in request_ids]

    async def work_tasks(self, task_ids: list[str]) -> None:
        for task_id in task_ids:
            for ops in ([{"op": "replace", "path": "/status", "value": "accepted"}],
                        [{"op": "replace", "path": "/status", "value": "in-progress"}],
                        completion_patch(contact="HH", start=datetime.now(UTC).isoformat())):
                status, body = await asgi_call(self.app, "PATCH", f"/fhir/Task/{task_id}", json.dumps(ops).encode(),
                                               content_type="application/json-patch+json")
                if status != 200:
                    raise RuntimeError(f"PATCH Task/{task_id}: {status} {body[:300]!r}")

    async def published(self, batch: list[list[Event]]) -> list[list[Event]]:
        """Per request, what billing consumes: the triage-completed event and what coordination published."""
        request_ids = {events[-1].subject.removeprefix("ServiceRequest/"): events[-1] for events in batch}
        async with self.coordination_sessions() as session:
            rows = (await session.execute(select(OutboxRecord).where(OutboxRecord.topic.in_(  # type: ignore[attr-defined]
                (CONTACT_DELIVERED, ACUTE_REQUEST_CLOSED))).order_by(OutboxRecord.seq))).scalars()
            coordination_events = [row.to_event() for row in rows]
        by_request: dict[str, list[Event]] = {request_id: [triaged] for request_id, triaged in request_ids.items()}
        for item in coordination_events:
            value = item.json()
            request_id = value["id"] if item.topic == ACUTE_REQUEST_CLOSED else \
                value["basedOn"][0]["identifier"]["value"]
            if request_id in by_request:
                by_request[request_id].append(item)
        return list(by_request.values())

    async def bill(self, per_request: list[list[Event]], feed_every: int) -> None:
        for n, events in enumerate(per_request, start=1):
            for item in events:
                await self.ledger_consumers[item.topic].apply(item)
                await self.evaluation_consumer.apply(item)
            if n % feed_every == 0:
                async with self.billing_sessions() as session, session.begin():
                    await billing.publish_dirty_feeds(session)


async def asgi_call(app: Any, method: str, path: str, body: bytes, *, content_type: str) -> tuple[int, bytes]:
    """One HTTP request straight into the ASGI app, as a server hands it over: the service's whole stack
    (middleware, routing, dependencies, handler) and no client library."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"coordination"), (b"content-type", content_type.encode()),
                         (b"authorization", b"Bearer bench"), (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 40000), "server": ("coordination", 80)}
    done = asyncio.Event()
    delivered = False
    status, chunks = 0, []

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                done.set()

    await app(scope, receive, send)
    return status, b"".join(chunks)


def _with_grace(handler: Callable[..., Awaitable[None]]) -> Callable[[Any, Event], Awaitable[None]]:
    return lambda session, item: handler(session, item, grace=GRACE)


async def measured(name: str, requests: int, counter: StatementCounter, work: Awaitable[None],
                   profiler: cProfile.Profile | None) -> Phase:
    counter.take()
    started = time.process_time()
    if profiler is not None:
        profiler.enable()
    try:
        await work
    finally:
        if profiler is not None:
            profiler.disable()
    return Phase(name, (time.process_time() - started) * 1000, counter.take(), requests)


async def run_round(downstream: Downstream, n: int, tag: str, feed_every: int,
                    profilers: dict[str, cProfile.Profile] | None) -> list[Phase]:
    batch = [front_door_events(i, tag) for i in range(n)]
    profiler = (lambda key: profilers[key]) if profilers is not None else (lambda _key: None)
    phases = [await measured("coordination: front-door events", n, downstream.coordination_statements,
                             downstream.consume_front_door(batch), profiler("consume"))]
    task_ids = await downstream.task_ids(batch)
    phases.append(await measured("coordination: 3 Task PATCHes", n, downstream.coordination_statements,
                                 downstream.work_tasks(task_ids), profiler("patch")))
    per_request = await downstream.published(batch)
    if any(len(events) != 3 for events in per_request):
        raise RuntimeError("coordination did not publish a contact and a close for every request")
    phases.append(await measured("billing: ledger + evaluation + feed", n, downstream.billing_statements,
                                 downstream.bill(per_request, feed_every), profiler("bill")))
    return phases


def top_functions(profiler: cProfile.Profile, sort: str, top: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats(sort).print_stats(top)
    text = out.getvalue()
    return text[text.find("   ncalls"):] if "   ncalls" in text else text


async def main_async(args: argparse.Namespace) -> None:
    urls = [await fresh_database(args.postgres, "coordination"), await fresh_database(args.postgres, "billing")]
    downstream = await Downstream(*urls).open()
    try:
        await run_round(downstream, min(20, args.requests), "w", args.feed_every, None)  # warm-up: caches, plans
        rounds = [await run_round(downstream, args.requests, f"m{r}", args.feed_every, None)
                  for r in range(args.repeat)]
        # The least CPU of the rounds: other processes on the machine only ever add to it.
        phases = [min(same, key=lambda phase: phase.cpu_ms) for same in zip(*rounds, strict=True)]
        print(f"Per closed request, {args.requests} requests, least CPU of {args.repeat} round(s), in-process "
              "against PostgreSQL (CPU of this process; database CPU not included):")
        for phase in phases:
            print("  " + phase.line())
        total_cpu = sum(p.cpu_ms for p in phases) / args.requests
        total_statements = sum(sum(v for k, v in p.statements.items() if k not in ("BEGIN", "COMMIT"))
                               for p in phases) / args.requests
        print(f"  {'total':<34} {total_cpu:7.2f} ms CPU/request  {total_statements:5.1f} statements/request")
        if args.profile:
            profilers = {key: cProfile.Profile() for key in ("consume", "patch", "bill")}
            await run_round(downstream, args.requests, "p", args.feed_every, profilers)
            for key, profiler in profilers.items():
                print(f"\n=== cProfile, {key}, {args.requests} requests, sorted by {args.sort} ===")
                print(top_functions(profiler, args.sort, args.top))
    finally:
        await downstream.close()
        for url in urls:
            await drop_database(args.postgres, url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.profile_downstream", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--feed-every", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3, help="measured rounds of N requests; the least CPU counts")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--sort", choices=["tottime", "cumulative"], default="cumulative")
    parser.add_argument("--no-profile", dest="profile", action="store_false")
    asyncio.run(main_async(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
