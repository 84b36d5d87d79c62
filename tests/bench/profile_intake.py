"""What one referral costs the front door, in-process: CPU milliseconds and SQL statements per referral Bundle
(and per nurse's triage), with cProfile's top functions.

    python -m tests.bench.profile_intake [--database postgresql://postgres@127.0.0.1:5432/postgres | sqlite]
                                         [--count 300] [--warmup 50] [--repeat 5] [--top 30] [--triage] [--no-profile]
                                         [--show-statements] [--json figures.json]

The triage app is driven through httpx's ASGI transport in this one process, against a fresh database (created
on the given PostgreSQL server and dropped after, or a SQLite file in a temporary folder); the broker is not
started (events stay in the outbox, as they would while the relay is behind). Request bodies are serialised before
the clock starts and responses are not parsed, so the figures are the service's work plus the in-process transport,
whose own cost is measured on GET /healthz and printed alongside (not subtracted). Unlike `make bench` (separate
uvicorn processes over real HTTP), no socket or uvicorn parsing is counted: compare these figures with each
other, before and after a change, not with the bench's.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import logging
import pstats
import shutil
import sys
import tempfile
import time
import types
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy import event

from infra.referrals import DEMO_PATIENTS, referral_bundle
from shared.region import DEMO_CLIENTS

try:
    from shared import rows
except ImportError:  # a release before shared/rows.py: every statement goes through SQLAlchemy
    rows = None  # type: ignore[assignment]

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
CLIENT = "ehr-delinde"


def _bsn(number: int) -> str:
    """The `number`-th 9-digit number from 700000000 that passes the eleven-test (distinct patients)."""
    head = 70_000_000 + number * 2
    while True:
        digits = f"{head:08d}"
        check = sum(int(d) * w for d, w in zip(digits, range(9, 1, -1), strict=True)) % 11
        if check < 10:
            return digits + str(check)
        head += 1


class Statements:
    """Counts the SQL statements an engine sends (executemany counts once: one round trip)."""

    def __init__(self, engine: Any) -> None:
        self.count = 0
        self.shown: list[str] | None = None  # while a list: the statements' text, for --show-statements
        event.listen(engine.sync_engine, "before_cursor_execute", self._seen)
        if rows is not None:  # statements sent around SQLAlchemy, straight to asyncpg
            rows.statement_listeners.append(lambda text, many: self._seen(None, None, text, None, None, many))

    def _seen(self, _conn: Any, _cursor: Any, statement: str, _parameters: Any, _context: Any,
              executemany: bool) -> None:
        self.count += 1
        if self.shown is not None:
            self.shown.append(("executemany: " if executemany else "") + " ".join(statement.split())[:160])


async def _measure(label: str, count: int, call: Callable[[], Awaitable[None]], statements: Statements, *,
                   repeat: int = 1, profile: cProfile.Profile | None = None) -> dict[str, float]:
    """`repeat` rounds of `count` calls; the figures of the round with the least CPU (other processes on the
    machine only ever add to a round's CPU time: cache misses, migrations between cores)."""
    rounds = []
    for _ in range(repeat):
        before_statements, cpu, wall = statements.count, time.process_time(), time.perf_counter()
        if profile is not None:
            profile.enable()
        for _ in range(count):
            await call()
        if profile is not None:
            profile.disable()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        rounds.append({"cpu_ms": round(cpu * 1000 / count, 3), "wall_ms": round(wall * 1000 / count, 3),
                       "statements": round((statements.count - before_statements) / count, 2)})
    figures = min(rounds, key=lambda r: r["cpu_ms"])
    spread = f"  (rounds: {', '.join(str(r['cpu_ms']) for r in rounds)})" if repeat > 1 else ""
    print(f"{label:<26} {figures['cpu_ms']:8.3f} ms CPU  {figures['wall_ms']:8.3f} ms wall  "
          f"{figures['statements']:6.2f} statements   (per call, best of {repeat} x {count}){spread}")
    return figures


async def run(database_url: str, *, count: int, warmup: int, repeat: int, top: int, with_triage: bool,
              profile_on: bool, show_statements: bool) -> dict[str, Any]:
    from services.triage.app import create_app
    from services.triage.settings import TriageSettings

    data_dir = Path(tempfile.mkdtemp(prefix="profile-intake-"))
    settings = TriageSettings(TRIAGE_DATABASE_URL=database_url if database_url != "sqlite" else None,
                              REGIOZORG_DATA_DIR=data_dir, REGIOZORG_ENV="demo")
    app = create_app(settings)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the driver's own line per request is not the service's
    runtime = app.state.runtime
    await runtime.start_database()
    from services.triage import accounts, clients, configuration
    async with runtime.sessions() as session, session.begin():
        await configuration.seed(session)
    async with runtime.sessions() as session, session.begin():
        await clients.seed_demo_clients(session, settings.data_dir)
        await accounts.seed_demo_accounts(session)
    runtime.relay = types.SimpleNamespace(wake=lambda: None)  # no broker: events wait in the outbox
    statements = Statements(runtime.engine)

    client = next(c for c in DEMO_CLIENTS if c.client_id == CLIENT)
    token = app.state.issuer.issue(client_id=client.client_id, org=client.org.token, scopes=client.scopes)
    nurse = next(c for c in DEMO_CLIENTS if c.client_id == "ops")
    nurse_token = app.state.issuer.issue(client_id=nurse.client_id, org=nurse.org.token, scopes=nurse.scopes)
    run_id = uuid.uuid4().hex[:8]
    total = warmup + 1 + (repeat + 1) * count
    bodies = []
    for n in range(total):
        patient = DEMO_PATIENTS[n % len(DEMO_PATIENTS)]
        bodies.append(json.dumps(referral_bundle(
            bsn=_bsn(n), given=patient.given, family=patient.family, birth_date=patient.birth_date,
            gender=patient.gender, uzovi=("9001", "9002")[n % 2], referral_id=f"{run_id}-{n}",
            bundle_id=f"{run_id}-b{n}")).encode())
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
    nurse_headers = {"Authorization": f"Bearer {nurse_token}", "Content-Type": "application/json"}
    triage_body = json.dumps({"urgency": "U3", "disposition": "home-visit",
                              "assigned_organization": "http://fhir.nl/fhir/NamingSystem/ura|90000001",
                              "note": "profile"}).encode()
    posted = iter(bodies)
    results: dict[str, Any] = {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://triage.test") as http:
        async def health() -> None:
            response = await http.get("/healthz")
            assert response.status_code == 200

        async def post() -> None:
            response = await http.post("/fhir", content=next(posted), headers=headers)
            if response.status_code != 200:
                raise SystemExit(f"POST /fhir answered {response.status_code}: {response.text[:500]}")

        async def triage() -> None:
            response = await http.post(f"/api/v1/requests/{next(to_triage)}/triage", content=triage_body,
                                       headers=nurse_headers)
            if response.status_code != 200:
                raise SystemExit(f"POST triage answered {response.status_code}: {response.text[:500]}")

        for _ in range(warmup):
            await health()
            await post()
        if show_statements:
            statements.shown = []
            await post()
            await _show("statements of one referral", statements)
        results["transport"] = await _measure("GET /healthz (transport)", count, health, statements, repeat=repeat)
        results["referral"] = await _measure("POST /fhir (referral)", count, post, statements, repeat=repeat)
        if profile_on:
            profile = cProfile.Profile(time.process_time)
            await _measure("POST /fhir under cProfile", count, post, statements, profile=profile)
            results["referral"]["python_calls"] = _print_profile(profile, top, count)
        if with_triage:
            response = await http.get("/api/v1/worklist", headers=nurse_headers)
            request_ids = [item["id"] for item in response.json()["items"] if item["status"] == "open"]
            needed = warmup + show_statements + repeat * count + (count if profile_on else 0)
            if len(request_ids) < needed:
                raise SystemExit(f"only {len(request_ids)} open requests to triage, {needed} needed")
            to_triage = iter(request_ids)
            for _ in range(warmup):
                await triage()
            if show_statements:
                statements.shown = []
                await triage()
                await _show("statements of one triage", statements)
            results["triage"] = await _measure("POST triage", count, triage, statements, repeat=repeat)
            if profile_on:
                profile = cProfile.Profile(time.process_time)
                await _measure("POST triage under cProfile", count, triage, statements, profile=profile)
                results["triage"]["python_calls"] = _print_profile(profile, top, count)
    await runtime.engine.dispose()
    shutil.rmtree(data_dir, ignore_errors=True)
    return results


async def _show(title: str, statements: Statements) -> None:
    print(f"{title}:")
    for text in statements.shown or []:
        print(f"  {text}")
    statements.shown = None


def _area(filename: str) -> str:
    """Where a function lives: the product's file (services/…, shared/…), else the installed package, else the
    interpreter (builtins)."""
    path = filename.replace("\\", "/")
    for marker in ("/site-packages/", "/lib/python3"):
        if marker in path:
            rest = path.split(marker, 1)[1].split("/")
            return rest[0] if marker == "/site-packages/" else f"stdlib:{rest[1] if len(rest) > 1 else rest[0]}"
    for root in ("/services/", "/shared/", "/infra/", "/tests/"):
        if root in path:
            return root.strip("/") + "/" + path.split(root, 1)[1]
    return path or "builtins"


def _print_profile(profile: cProfile.Profile, top: int, count: int) -> int:
    """Own time (tottime) summed per file of the product and per installed package, then the top functions by
    own time. Cumulative times are left out: under asyncio every resumption of a coroutine counts as a call, so
    they add up to more than was spent. Returns the Python function calls per request: unlike CPU time, a
    count that other processes on the machine do not disturb."""
    stats = pstats.Stats(profile)
    calls = round(stats.total_calls / count)  # type: ignore[attr-defined]
    print(f"Python function calls per request: {calls}")
    areas: dict[str, float] = {}
    area_calls: dict[str, int] = {}
    total = 0.0
    for (filename, _line, _name), (_cc, ncalls, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        area = _area(filename)
        areas[area] = areas.get(area, 0.0) + tottime
        area_calls[area] = area_calls.get(area, 0) + ncalls
        total += tottime
    print(f"own time by file or package (share of {total:.2f} s profiled), and Python calls per request:")
    for area, spent in sorted(areas.items(), key=lambda item: -item[1])[:top]:
        print(f"  {spent / total:6.1%}  {area_calls[area] / count:8.0f}  {area}")
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(top)
    text = out.getvalue()
    print(text[text.find("   ncalls"):])
    return calls


async def _with_database(server: str, work: Callable[[str], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    if server == "sqlite":
        return await work("sqlite")
    name = f"rz_profile_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(server, timeout=10)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        return await work(server.rsplit("/", 1)[0] + "/" + name)
    finally:
        conn = await asyncpg.connect(server, timeout=10)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.profile_intake", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default=DEFAULT_POSTGRES,
                        help="a PostgreSQL server URL (a fresh database is made on it) or 'sqlite'")
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5, help="rounds of --count calls; the least CPU counts")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--triage", action="store_true", help="also triage the posted requests (POST triage)")
    parser.add_argument("--no-profile", dest="profile", action="store_false", help="skip the cProfile pass")
    parser.add_argument("--show-statements", action="store_true",
                        help="print the SQL of one referral (and one triage)")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args(argv)
    results = asyncio.run(_with_database(args.database, lambda url: run(
        url, count=args.count, warmup=args.warmup, repeat=args.repeat, top=args.top, with_triage=args.triage,
        profile_on=args.profile, show_statements=args.show_statements)))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
