"""`make bench`: the real stack under load, measured against the floor of its bare parts, in one run.

    python -m tests.bench [--databases postgresql,sqlite] [--loads 5,10,20,40] [--load-seconds 20]
                          [--instances 2] ...

Starts broker and services (or drives a running stack with --running), `--instances` processes of every
service, then per database: intake throughput (closed loop, referral Bundles/s accepted), and at each fixed
offered load the end-to-end throughput and latency from POST to prestation recorded. Per phase it also reports
CPU per request per part of the system (and for the product as a whole), SQL statements per request per
service and per unit of work (shared/statements.py, counted by the services themselves), and the resident size
of every service process at idle and at the end. Writes bench-report.json and bench-report.png in the
repository root and prints a table, with the targets of issue #17 and by how much each is missed.

    python -m tests.bench --soak 10000 [--soak-rate 10]      (make soak)

The soak instead (tests/bench/soak.py): N requests through the whole flow at a fixed rate on PostgreSQL, the
resident size of every service process sampled throughout; idle, warm-up, end, growth and whether it still grows go
into the report's "soak" section (the other phases' figures are kept) and bench-report-soak.png.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
from tqdm import tqdm

from infra.stack import SERVICES, Stack
from shared import jsontext, statements
from tests.bench import floor, report, soak
from tests.bench.load import Driver, Journey, StepFailed, percentiles
from tests.conftest import PostgresDatabases, free_port

ROOT = Path(__file__).resolve().parents[2]


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown CPU")
    memory = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), 0)
    return (f"{model}, {os.cpu_count()} cores, {memory / 2**20:.0f} GiB, Linux {platform.release()}, "
            f"Python {platform.python_version()}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (Linux /proc, clock ticks of 1/100 s)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100


class CpuMeter:
    """CPU seconds per part of the system (each service's processes, broker, PostgreSQL, this driver).

    PostgreSQL: with a stack on PostgreSQL, the server's own processes plus the backends serving the stack's
    databases (their process title names the database), so that other clients of a shared server do not count;
    otherwise every process of the postgres user. Its CPU is added up per process between readings: a backend
    that ends between two readings takes its CPU since the earlier one with it (the services keep their
    connections pooled, so few do).
    """

    def __init__(self, stack: Stack | None) -> None:
        self.stack = stack
        self.databases = [url.rsplit("/", 1)[1] for url in stack.database_urls.values()] if stack else []
        self._postgres_seen: dict[int, float] | None = None
        self._postgres_total = 0.0

    def _postgres(self) -> float:
        """CPU seconds of PostgreSQL's relevant processes since this meter's first reading."""
        listed = subprocess.run(["pgrep", "-u", "postgres"], capture_output=True, text=True).stdout.split()
        now: dict[int, float] = {}
        for pid in map(int, listed):
            if self.databases and not self._relevant(pid):
                continue
            now[pid] = _cpu_or_zero(pid)
        if self._postgres_seen is not None:
            # A process seen for the first time started after the last reading: all of its CPU is new.
            self._postgres_total += sum(cpu - self._postgres_seen.get(pid, 0.0) for pid, cpu in now.items())
        self._postgres_seen = now
        return self._postgres_total

    def _relevant(self, pid: int) -> bool:
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return False
        is_backend = "(" in title or "[local]" in title  # "postgres: 15/main: user db 127.0.0.1(5432) idle"
        return not is_backend or any(f" {name} " in title for name in self.databases)

    def read(self) -> dict[str, float]:
        """CPU seconds so far per part: each service (all its instances and workers), broker, PostgreSQL (see
        the class), the driver."""
        found: dict[str, float] = {"driver": time.process_time()}
        if self.stack is not None:
            for name in list(self.stack.processes):
                service = Stack.service_of(name)
                found[service] = found.get(service, 0.0) + sum(_cpu_or_zero(pid) for pid in self.stack.pids(name))
            if self.stack.broker and self.stack.broker.process:
                found["broker"] = _cpu_or_zero(self.stack.broker.process.pid)
        if self.stack is None or self.databases:
            found["postgresql"] = self._postgres()
        return found

    def per_item(self, before: dict[str, float], items: int) -> dict[str, float]:
        """Milliseconds of CPU each part spent per item since `before`; "product" is the sum of the services,
        PostgreSQL and the broker (everything but the driver), the figure of issue #17's target."""
        after = self.read()
        spent = {part: round((after[part] - before.get(part, 0.0)) * 1000 / max(items, 1), 2) for part in after}
        spent["product"] = round(sum(v for part, v in spent.items() if part in PRODUCT_PARTS), 2)
        return spent


PRODUCT_PARTS = frozenset({*SERVICES, "postgresql", "broker"})


class Probe:
    """What the services say about themselves while the bench runs: statements counted per unit of work (the
    files of shared/statements.py in the stack's data folder) and resident sizes (/proc)."""

    def __init__(self, stack: Stack | None) -> None:
        self.stack = stack

    def statements(self) -> dict[tuple[str, str], tuple[int, int]]:
        return statements.read_totals(self.stack.data_dir) if self.stack is not None else {}

    def per_request(self, before: dict[tuple[str, str], tuple[int, int]], items: int) -> dict[str, Any]:
        """Statements since `before`: per request per service (and in total), and per unit of work: per call
        of a route, per event of a consumer, per request for the relay and the timed jobs."""
        after = self.statements()
        if not after:
            return {}
        per_service: dict[str, float] = dict.fromkeys(SERVICES, 0.0)
        by_unit: dict[str, dict[str, float]] = {}
        for (service, unit), (count_after, units_after) in sorted(after.items()):
            count_before, units_before = before.get((service, unit), (0, 0))
            spent, calls = count_after - count_before, units_after - units_before
            if not spent and not calls:
                continue
            per_service[service] = per_service.get(service, 0.0) + spent
            by_unit[f"{service} {unit}"] = {"statements": spent, "calls": calls,
                                            "per_call": round(spent / calls, 2) if calls else None,
                                            "per_request": round(spent / max(items, 1), 2)}
        result = {service: round(spent / max(items, 1), 2) for service, spent in per_service.items()}
        result["total"] = round(sum(per_service.values()) / max(items, 1), 2)
        return {"per_request": result, "by_unit": by_unit}

    def rss(self) -> dict[str, dict[str, float]]:
        """Resident size in MiB of every process of every service instance: {instance: {pid: MiB}}."""
        if self.stack is None:
            return {}
        found: dict[str, dict[str, float]] = {}
        for name in list(self.stack.processes):
            for pid in self.stack.pids(name):
                rss = rss_mib(pid)
                if rss is not None:
                    found.setdefault(name, {})[str(pid)] = rss
        return found


def rss_mib(pid: int) -> float | None:
    """A process's resident set size (VmRSS of /proc/<pid>/status) in MiB; None once it has gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def memory_report(idle: dict[str, dict[str, float]], end: dict[str, dict[str, float]]) -> dict[str, Any]:
    """RSS per process at idle and at the end, its growth, and per service the sums over the processes that
    were there at both readings (one started meanwhile, after a crash, has no growth).

    Shape: {"processes": [{"instance", "pid", "idle_mib", "end_mib", "growth_mib", "growth_pct"}],
    "services": {service: {"idle_mib", "end_mib", "growth_mib"}}}; sizes in MiB."""
    processes = []
    for name, pids in sorted(end.items()):
        for pid, rss in pids.items():
            before = idle.get(name, {}).get(pid)
            processes.append({"instance": name, "pid": int(pid), "idle_mib": before, "end_mib": rss,
                              "growth_mib": round(rss - before, 1) if before is not None else None,
                              "growth_pct": round((rss - before) * 100 / before, 1) if before else None})
    services: dict[str, dict[str, float]] = {}
    for row in processes:
        if row["idle_mib"] is None:
            continue  # started after the idle reading: nothing to compare it with
        totals = services.setdefault(Stack.service_of(str(row["instance"])), {"idle_mib": 0.0, "end_mib": 0.0})
        totals["idle_mib"] = round(totals["idle_mib"] + float(row["idle_mib"]), 1)
        totals["end_mib"] = round(totals["end_mib"] + float(row["end_mib"] or 0.0), 1)
    for totals in services.values():
        totals["growth_mib"] = round(totals["end_mib"] - totals["idle_mib"], 1)
    return {"processes": processes, "services": services}


def _cpu_or_zero(pid: int) -> float:
    try:
        return cpu_seconds(pid)
    except (OSError, IndexError, ValueError):
        return 0.0


@contextmanager
def bench_stack(database: str, workers: int, postgres_server: str, instances: int = 1) -> Iterator[Stack]:
    """Broker and services on fresh databases, `instances` processes of each service (triage's each with
    `workers` uvicorn workers), counting their statements (shared/statements.py: a function call per
    statement)."""
    databases = PostgresDatabases(postgres_server)
    urls = {name: databases.new(f"bench_{name}") for name in ("triage", "coordination", "billing_shadow")} \
        if database == "postgresql" else {}
    with tempfile.TemporaryDirectory(prefix="regiozorg-bench-") as data_dir:
        stack = Stack(data_dir=Path(data_dir), ports={n: free_port() for n in ("triage", "coordination",
                                                                               "billing_shadow")},
                      broker_port=free_port(), database_urls=urls, workers={"triage": workers},
                      instances=dict.fromkeys(SERVICES, instances),
                      env={statements.ENV_VARIABLE: "1"})
        try:
            stack.start(timeout=120)
            yield stack
        finally:
            stack.stop()
            databases.drop_all()


async def intake_phase(driver: Driver, seconds: float, concurrency: int, meter: CpuMeter,
                       probe: Probe | None = None) -> dict[str, Any]:
    """Closed loop: `concurrency` partners post referral Bundles back to back for `seconds`."""
    accepted: list[Journey] = []
    refused: list[str] = []
    deadline = time.monotonic() + seconds
    bar = tqdm(total=round(seconds), desc="intake", unit="s", leave=False)

    async def partner() -> None:
        while time.monotonic() < deadline:
            journey = driver.new_journey()
            try:
                await driver.post(journey)
            except StepFailed as exc:
                refused.append(str(exc))
                continue
            accepted.append(journey)

    async def ticker() -> None:
        while time.monotonic() < deadline:
            await asyncio.sleep(1)
            bar.update(1)

    started, cpu = time.monotonic(), time.process_time()
    spent = meter.read()
    counted = probe.statements() if probe else {}
    await asyncio.gather(ticker(), *(partner() for _ in range(concurrency)))
    elapsed = time.monotonic() - started
    cpu_ms = meter.per_item(spent, len(accepted))
    bar.close()
    latencies = [j.accepted_at - j.posted_at for j in accepted if j.accepted_at]
    # Let the front door's outbox drain before the next phase: those events are load too.
    for journey in accepted:
        await driver.tap.wait("request", journey.service_request or "", 300)
    # Statements of the drained phase, the events that followed included (the counts are written every half
    # second, and the consumers downstream of the tap need a moment).
    await asyncio.sleep(2)
    sql = probe.per_request(counted, len(accepted)) if probe else {}
    return {"accepted": len(accepted), "refused": len(refused), "refusals": sorted(set(refused))[:3],
            "seconds": round(elapsed, 2), "intake_rps": round(len(accepted) / elapsed, 1),
            "concurrency": concurrency, "post_latency_ms": percentiles(latencies),
            "driver_cpu": round((time.process_time() - cpu) / elapsed, 2), "cpu_ms_per_referral": cpu_ms,
            "statements_per_referral": sql.get("per_request", {}), "statements_by_unit": sql.get("by_unit", {})}


async def load_phase(driver: Driver, rate: float, seconds: float, meter: CpuMeter,
                     probe: Probe | None = None) -> dict[str, Any]:
    """Open loop: a new referral every 1/rate seconds for `seconds`, each worked to its prestation."""
    count = max(1, round(rate * seconds))
    started, cpu = time.monotonic(), time.process_time()
    spent = meter.read()
    counted = probe.statements() if probe else {}
    tasks: list[asyncio.Task[None]] = []
    journeys: list[Journey] = []
    with tqdm(total=count, desc=f"{rate:g}/s", unit="req", leave=False) as bar:
        await driver.offer(rate, seconds, journeys, tasks, on_each=lambda: bar.update(1))
        offered_seconds = time.monotonic() - started
        await asyncio.gather(*tasks)
    wall = time.monotonic() - started
    done = [j for j in journeys if j.latency is not None]
    cpu_ms = meter.per_item(spent, len(done))
    # The events after the prestation (evaluation, closing) and the services' next write of their counts.
    await asyncio.sleep(2)
    sql = probe.per_request(counted, len(done)) if probe else {}
    warm = min(5.0, seconds / 4)
    window = [j for j in journeys if j.recorded_at and started + warm <= j.recorded_at <= started + seconds]
    failed = [j for j in journeys if j.error]
    return {"offered_rps": rate, "offered_actual_rps": round(count / max(offered_seconds, 1e-9), 1),
            "seconds": seconds, "requests": count, "completed": len(done), "failed": len(failed),
            "errors": sorted({j.error or "" for j in failed})[:5],
            "achieved_rps": round(len(window) / (seconds - warm), 1),
            "drain_seconds": round(wall - offered_seconds, 1),
            "latency_ms": percentiles([j.latency for j in done if j.latency is not None]),
            "driver_cpu": round((time.process_time() - cpu) / wall, 2), "cpu_ms_per_request": cpu_ms,
            "statements_per_request": sql.get("per_request", {}), "statements_by_unit": sql.get("by_unit", {}),
            "stages_ms": stages(done)}


STAGES = (("post", "posted_at", "accepted_at"), ("front door publishes", "accepted_at", "request_seen_at"),
          ("triage call", "request_seen_at", "triaged_at"), ("Task made", "triaged_at", "task_seen_at"),
          ("Task worked", "task_seen_at", "completed_at"), ("prestation recorded", "completed_at", "recorded_at"))


def stages(journeys: list[Journey]) -> dict[str, dict[str, float]]:
    """Where the latency goes: p50/p95/p99 of each step of the way."""
    return {name: percentiles([getattr(j, end) - getattr(j, start) for j in journeys
                               if getattr(j, end) is not None and getattr(j, start) is not None])
            for name, start, end in STAGES}


async def warm_up(driver: Driver) -> None:
    """Twenty journeys to the end (connections, tokens, topics, first compiles), then two seconds of quiet, so
    that what they set going has finished: the idle point. Raises RuntimeError when any of them failed."""
    warmup = [driver.new_journey() for _ in range(20)]
    await asyncio.gather(*(driver.run(j) for j in warmup))
    broken = [j.error for j in warmup if j.error]
    if broken:
        raise RuntimeError(f"the warm-up journeys failed: {broken[:3]}")
    await asyncio.sleep(2)


async def run_soak(args: argparse.Namespace, *, triage: list[str], coordination: list[str], bootstrap: str,
                   probe: Probe, database_urls: list[str]) -> dict[str, Any]:
    """The soak (tests/bench/soak.py): `args.soak` requests at `args.soak_rate`/s after the warm-up.

    A PostgreSQL server with autovacuum off (as on the 2-core test machine) never refreshes the planner's
    statistics, so queries planned for the empty tables of the start scan whole tables per row once they hold
    thousands (measured: billing's feed query 12 s instead of 9 ms at 7,000 ledger lines). Production runs with
    autovacuum; the soak then does what it would, an ANALYZE of the stack's databases every 30 s, and says so in
    the report (`analyzed_by_bench`)."""
    autovacuum = await _autovacuum_on(database_urls[0]) if database_urls else True
    maintaining = None if autovacuum else asyncio.create_task(_analyze_forever(database_urls), name="analyze")
    try:
        async with Driver(triage=triage, coordination=coordination, bootstrap=bootstrap) as driver:
            await warm_up(driver)
            section = await soak.soak_phase(driver, probe.rss, requests=args.soak, rate=args.soak_rate,
                                            interval=args.soak_sample_seconds, idle=probe.rss())
    finally:
        if maintaining is not None:
            maintaining.cancel()
            await asyncio.gather(maintaining, return_exceptions=True)
    return {**section, "analyzed_by_bench": not autovacuum}


def _asyncpg_url(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _autovacuum_on(url: str) -> bool:
    connection = await asyncpg.connect(_asyncpg_url(url))
    try:
        return await connection.fetchval("SHOW autovacuum") == "on"
    finally:
        await connection.close()


async def _analyze_forever(urls: list[str], every: float = 30.0) -> None:
    """ANALYZE each database every `every` seconds (what autovacuum's analyze would do), until cancelled."""
    while True:
        await asyncio.sleep(every)
        for url in urls:
            connection = await asyncpg.connect(_asyncpg_url(url))
            try:
                await connection.execute("ANALYZE")
            finally:
                await connection.close()


async def run_database(args: argparse.Namespace, *, triage: list[str], coordination: list[str], bootstrap: str,
                       meter: CpuMeter, probe: Probe) -> dict[str, Any]:
    async with Driver(triage=triage, coordination=coordination, bootstrap=bootstrap,
                      concurrency=max(256, args.intake_concurrency)) as driver:
        await warm_up(driver)
        idle = probe.rss()
        intake = await intake_phase(driver, args.intake_seconds, args.intake_concurrency, meter, probe)
        loads = []
        for rate in args.loads:
            loads.append(await load_phase(driver, rate, args.load_seconds, meter, probe))
            await asyncio.sleep(2)  # let stragglers (feeds, notifications) settle between loads
        return {"intake": intake, "loads": loads, "retries": driver.retries,
                "memory": memory_report(idle, probe.rss()) if idle else {}}


# Issue #17's targets, each read from the report: (name, where, limit, unit). RSS growth: "no growth" is read as
# at most RSS_GROWTH_PCT of a process's idle size (allocator arenas and caches settle in the first minutes).
RSS_GROWTH_PCT = soak.GROWTH_PCT
TARGETS = (
    ("triage CPU per referral Bundle", "intake.cpu_ms_per_referral.triage", 2.5, "ms"),
    ("product CPU per closed request, lowest load", "loads[lowest].cpu_ms_per_request.product", 15.0, "ms"),
    ("latency p50, lowest load", "loads[lowest].latency_ms.p50", 300.0, "ms"),
    ("latency p99, lowest load", "loads[lowest].latency_ms.p99", 800.0, "ms"),
    ("largest RSS growth of a service process", "memory.processes[*].growth_pct", RSS_GROWTH_PCT, "%"),
)


def targets(run: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of issue #17 with the measured value, whether it is met, and by how much it is missed
    (`missed_by`: measured − limit, and `missed_factor`: measured / limit; both None when met)."""
    lowest = min(run["loads"], key=lambda p: p["offered_rps"], default=None)
    growth = [p["growth_pct"] for p in run.get("memory", {}).get("processes", []) if p["growth_pct"] is not None]
    measured = {
        "intake.cpu_ms_per_referral.triage": run["intake"]["cpu_ms_per_referral"].get("triage"),
        "loads[lowest].cpu_ms_per_request.product": lowest["cpu_ms_per_request"].get("product") if lowest else None,
        "loads[lowest].latency_ms.p50": lowest["latency_ms"]["p50"] if lowest else None,
        "loads[lowest].latency_ms.p99": lowest["latency_ms"]["p99"] if lowest else None,
        "memory.processes[*].growth_pct": max(growth) if growth else None,
    }
    rows = []
    for name, where, limit, unit in TARGETS:
        value = measured[where]
        met = value is not None and value == value and value <= limit  # NaN (no request done) is not met
        rows.append({"target": name, "from": where, "limit": limit, "unit": unit, "measured": value,
                     "at_offered_rps": lowest["offered_rps"] if lowest and "lowest" in where else None,
                     "met": met,
                     "missed_by": None if met or value is None else round(value - limit, 2),
                     "missed_factor": None if met or value is None or not limit else round(value / limit, 1)})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--databases", default=None,
                        help="default postgresql,sqlite; with --soak, postgresql (the soak runs on the first)")
    parser.add_argument("--triage-workers", type=int, default=2)
    parser.add_argument("--instances", type=int, default=1,
                        help="processes of every service, each on its own port (the driver spreads its calls)")
    parser.add_argument("--intake-seconds", type=float, default=15)
    parser.add_argument("--intake-concurrency", type=int, default=32)
    parser.add_argument("--loads", default="5,10,20,40", help="offered loads, requests/s")
    parser.add_argument("--load-seconds", type=float, default=20)
    parser.add_argument("--postgres", default=os.environ.get("REGIOZORG_BENCH_POSTGRES_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--running", action="store_true",
                        help="drive the stack `make run` started (ports 8001-8003, broker 19092) instead")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-report.json")
    parser.add_argument("--soak", type=int, default=0, metavar="N",
                        help="instead of the phases above: N requests through the whole flow at --soak-rate, the "
                             "RSS of every service process sampled throughout (issue #17's 'no growth across a "
                             "10,000-request run'); written to the report's \"soak\" section, the rest kept")
    parser.add_argument("--soak-rate", type=float, default=10.0,
                        help="offered requests/s of the soak (default 10: below the knee of a 2-core machine, "
                             "where a backlog would pass for growth)")
    parser.add_argument("--soak-sample-seconds", type=float, default=5.0, help="seconds between RSS samples")
    args = parser.parse_args(argv)
    args.loads = [float(x) for x in args.loads.split(",") if x]
    databases = [d for d in (args.databases or ("postgresql" if args.soak else "postgresql,sqlite")).split(",")
                 if d]
    if args.soak and args.running:
        parser.error("--soak reads the resident size of the processes it starts: not with --running")
    if args.soak < 0 or args.soak_rate <= 0 or args.soak_sample_seconds <= 0:
        parser.error("--soak, --soak-rate and --soak-sample-seconds must be positive")
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    if args.soak:
        return soak_main(args, databases[0], argv)

    sample = Driver.sample_bundle()
    print("floor: validating the referral Bundle on one core …", file=sys.stderr)
    validate = floor.validate_rps(sample)
    event_size = len(jsontext.dump_bytes(sample))  # as the event value carries it
    result: dict[str, Any] = {"machine": machine(), "command": "make bench " + " ".join(argv or sys.argv[1:]),
                              "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                              "database": databases[0], "runs": {}}
    insert: dict[str, float] = {}
    produce: list[float] = []
    for database in databases:
        print(f"{database}: starting the stack …", file=sys.stderr)
        if args.running:
            triage, coordination, bootstrap = "http://127.0.0.1:8001", "http://127.0.0.1:8002", "127.0.0.1:19092"
            run = asyncio.run(run_database(args, triage=[triage], coordination=[coordination], bootstrap=bootstrap,
                                           meter=CpuMeter(None), probe=Probe(None)))
            produce.append(asyncio.run(floor.produce_rps(bootstrap, b"x" * event_size)))
        else:
            with bench_stack(database, args.triage_workers, args.postgres, args.instances) as stack:
                run = asyncio.run(run_database(args, triage=stack.urls("triage"),
                                               coordination=stack.urls("coordination"), bootstrap=stack.bootstrap,
                                               meter=CpuMeter(stack), probe=Probe(stack)))
                produce.append(asyncio.run(floor.produce_rps(stack.bootstrap, b"x" * event_size)))
                if database == "postgresql":
                    insert[database] = asyncio.run(floor.insert_rps_postgres(stack.database_urls["triage"],
                                                                             b"x" * event_size))
                else:
                    insert[database] = floor.insert_rps_sqlite(stack.data_dir, b"x" * event_size)
        intake_rps = run["intake"]["intake_rps"]
        achieved = [p["achieved_rps"] for p in run["loads"]]
        result["runs"][database] = {
            "database": database, "triage_workers": args.triage_workers,
            "instances": 1 if args.running else args.instances, "intake_rps": intake_rps,
            "intake": run["intake"], "loads": run["loads"], "retries": run["retries"],
            "e2e_rps": max(achieved, default=0.0), "memory": run["memory"],
        }
        result["runs"][database]["targets"] = targets(result["runs"][database])
    result["floor"] = {"validate_rps": round(validate, 1), "produce_rps": round(max(produce), 1),
                       "insert_rps": {db: round(rate, 1) for db, rate in insert.items()}}
    for database, run in result["runs"].items():
        run["ratios"] = {
            "intake_per_worker_to_validate": round(run["intake_rps"] / args.triage_workers / validate, 3),
            "intake_to_insert": round(run["intake_rps"] / insert[database], 3) if database in insert else None,
            "e2e_to_produce": round(run["e2e_rps"] / result["floor"]["produce_rps"], 4),
        }
    headline = result["runs"][databases[0]]
    target = min(headline["loads"], key=lambda p: abs(p["offered_rps"] - 150), default=None)
    result.update({"instances": headline["instances"], "targets": headline["targets"],
                   "intake_rps": headline["intake_rps"], "e2e_rps": headline["e2e_rps"],
                   "latency_ms": target["latency_ms"] if target else None,
                   "latency_at_offered_rps": target["offered_rps"] if target else None,
                   "ratios": headline["ratios"]})
    floor_of_db = result["floor"]["insert_rps"].get(databases[0])
    result["floor"]["insert_rps_by_database"] = result["floor"]["insert_rps"]
    result["floor"]["insert_rps"] = floor_of_db
    previous = report.read_json(args.out)
    if "soak" in previous:  # a separate, longer measurement (--soak): kept until the next soak replaces it
        result["soak"] = previous["soak"]
    report.write_json(result, args.out)
    report.write_chart(result, args.out.with_suffix(".png"))
    print(report.table(result))
    print(f"\nwrote {args.out.name} and {args.out.with_suffix('.png').name}")
    return 0


def soak_main(args: argparse.Namespace, database: str, argv: list[str] | None) -> int:
    """The soak alone on a fresh stack: its section replaces the report's "soak" (the other phases' figures are
    kept), its chart is written next to the report, its table printed."""
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(f"soak: {args.soak} requests at {args.soak_rate:g}/s on {database}, about "
          f"{args.soak / args.soak_rate / 60:.0f} min after the stack starts …", file=sys.stderr)
    with bench_stack(database, args.triage_workers, args.postgres, args.instances) as stack:
        run = asyncio.run(run_soak(args, triage=stack.urls("triage"), coordination=stack.urls("coordination"),
                                   bootstrap=stack.bootstrap, probe=Probe(stack),
                                   database_urls=[url for url in stack.database_urls.values()
                                                  if url.startswith("postgresql")]))
    section = {"machine": machine(), "command": "python -m tests.bench " + " ".join(argv or sys.argv[1:]),
               "started": started,
               "database": database, "triage_workers": args.triage_workers, "instances": args.instances, **run}
    section["targets"] = soak.soak_targets(section)
    result = report.read_json(args.out)
    result["soak"] = section
    report.write_json(result, args.out)
    chart = args.out.with_name(args.out.stem + "-soak.png")
    report.write_soak_chart(section, chart)
    print(report.soak_table(section))
    print(f"\nwrote the soak into {args.out.name} and {chart.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
