"""`python -m tests.bench --soak N`: issue #17's memory target over a long run.

Issue #17 asks for the resident size of each service process at idle and at the end of the run, "with no growth
across a 10,000-request run". The soak drives N referrals through the whole flow (post, triage, Task worked,
prestation recorded) at a fixed offered rate, well below the knee, so that a backlog does not pass for a leak;
samples the resident size of every service process every few seconds; and reads from those samples:

- idle: before the first soak request (after the bench's warm-up journeys);
- warm-up: the moment the first WARMUP_SHARE of the requests have closed (allocator arenas, caches, connection
  pools and compiled statements settle there, so growth is measured from this point, not from idle);
- end: all requests closed and two seconds settled;
- growth from warm-up to end, in MiB and in % of the warm-up size;
- whether it keeps growing: a least-squares line through the samples of the last half of the requests, as MiB
  per 1,000 requests and as the growth it accounts for over that half in % of the warm-up size; more than
  SLOPE_PCT is "still growing".

Requests are counted closed when their prestation was recorded or when they failed; "lost" ones were accepted by
the front door and never got their prestation.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from infra.stack import Stack
from tests.bench.load import Driver, Journey, percentiles

WARMUP_SHARE = 0.10
SLOPE_PCT = 2.0  # "still growing": the last half's fitted line climbs by more than this share of warm-up size
GROWTH_PCT = 5.0  # "no growth": at most this much from warm-up to end (issue #17; as RSS_GROWTH_PCT in __main__)

Rss = dict[str, dict[str, float]]  # {instance: {pid: MiB}}, as tests.bench.__main__.Probe.rss() reads it


@dataclass
class Sample:
    """One reading: seconds since the soak began, requests closed by then, and every process's size."""

    at: float
    closed: int
    rss: Rss


async def soak_phase(driver: Driver, read_rss: Any, *, requests: int, rate: float, interval: float = 5.0,
                     idle: Rss | None = None) -> dict[str, Any]:
    """Offer `requests` referrals at `rate` per second, each worked to its prestation, reading `read_rss()` (a
    callable returning Rss) every `interval` seconds and once more the moment the warm-up share has closed.

    Returns the report's "soak" section: counts (requests, completed, failed, lost, refused), timings, latency
    percentiles, the samples (summed per service) and `memory` as `soak_memory` computes it."""
    journeys: list[Journey] = []
    tasks: list[asyncio.Task[None]] = []
    samples: list[Sample] = []
    warm_mark = max(1, math.ceil(requests * WARMUP_SHARE))
    started = time.monotonic()
    idle = idle if idle is not None else read_rss()

    def closed() -> int:
        return sum(1 for j in journeys if j.recorded_at is not None or j.error is not None)

    async def sampler(bar: tqdm) -> None:
        next_at, warm_taken = 0.0, False
        while True:
            now, count = time.monotonic() - started, closed()
            bar.update(count - bar.n)
            if now >= next_at or (not warm_taken and count >= warm_mark):
                samples.append(Sample(round(now, 1), count, read_rss()))
                warm_taken = warm_taken or count >= warm_mark
                next_at = now + interval
            await asyncio.sleep(0.25)

    with tqdm(total=requests, desc=f"soak {rate:g}/s", unit="req", leave=False) as bar:
        watching = asyncio.create_task(sampler(bar), name="soak sampler")
        try:
            await driver.offer(rate, requests / rate, journeys, tasks)
            offered_seconds = time.monotonic() - started
            await asyncio.gather(*tasks)
            await asyncio.sleep(2)  # the events after the prestation (evaluation, closing) settle
        finally:
            watching.cancel()
            await asyncio.gather(watching, return_exceptions=True)
    samples.append(Sample(round(time.monotonic() - started, 1), closed(), read_rss()))
    wall = time.monotonic() - started
    done = [j for j in journeys if j.latency is not None]
    failed = [j for j in journeys if j.error]
    return {"requests": len(journeys), "offered_rps": rate, "sample_seconds": interval,
            "offered_actual_rps": round(len(journeys) / max(offered_seconds, 1e-9), 1),
            "seconds": round(wall, 1), "drain_seconds": round(wall - offered_seconds, 1),
            "completed": len(done), "failed": len(failed),
            "lost": sum(1 for j in journeys if j.accepted_at is not None and j.recorded_at is None),
            "refused": sum(1 for j in journeys if j.accepted_at is None),
            "errors": sorted({j.error or "" for j in failed})[:5],
            "latency_ms": percentiles([j.latency for j in done if j.latency is not None]),
            "memory": soak_memory(idle, samples, requests)}


def soak_memory(idle: Rss, samples: list[Sample], requests: int) -> dict[str, Any]:
    """Idle, warm-up and end sizes, growth and trend, per process and per service, from the soak's samples (the
    last sample is the end). A process not there at warm-up (restarted meanwhile) is listed with no growth and
    left out of its service's sums; one gone by the end is left out altogether.

    Shape: {"warmup_closed", "processes": [{"instance", "pid", "idle_mib", "warmup_mib", "end_mib",
    "growth_mib", "growth_pct", "slope_mib_per_1000", "last_half_pct", "still_growing"}],
    "services": {service: the same figures over the sum of its processes}, "series": [{"at", "closed",
    service: MiB}], "largest_growth_pct", "still_growing": [instance/pid or service …]}; sizes in MiB."""
    if not samples:
        return {}
    warm_mark = max(1, math.ceil(requests * WARMUP_SHARE))
    warm = next((s for s in samples if s.closed >= warm_mark), samples[-1])
    end = samples[-1]
    half = [s for s in samples if s.closed >= requests / 2] or [end]

    def figures(idle_mib: float | None, warm_mib: float | None, end_mib: float,
                trend: list[tuple[int, float]]) -> dict[str, Any]:
        growth = round(end_mib - warm_mib, 1) if warm_mib is not None else None
        slope = _slope(trend)
        span = requests - requests / 2
        last_half = round(slope * span * 100 / warm_mib, 1) if slope is not None and warm_mib else None
        return {"idle_mib": idle_mib, "warmup_mib": warm_mib, "end_mib": end_mib, "growth_mib": growth,
                "growth_pct": round(growth * 100 / warm_mib, 1) if growth is not None and warm_mib else None,
                "slope_mib_per_1000": round(slope * 1000, 2) if slope is not None else None,
                "last_half_pct": last_half,
                "still_growing": last_half is not None and last_half > SLOPE_PCT}

    processes = []
    for name, pids in sorted(end.rss.items()):
        for pid, end_mib in sorted(pids.items()):
            trend = [(s.closed, s.rss[name][pid]) for s in half if pid in s.rss.get(name, {})]
            row = figures(idle.get(name, {}).get(pid), warm.rss.get(name, {}).get(pid), end_mib, trend)
            processes.append({"instance": name, "pid": int(pid), **row})

    def service_sum(sample: Sample, service: str) -> float:
        """A service's size in one sample, over the processes there at warm-up and at the end."""
        return round(sum(mib for name, pids in sample.rss.items() if Stack.service_of(name) == service
                         for pid, mib in pids.items() if _kept(name, pid)), 1)

    def _kept(name: str, pid: str) -> bool:
        return pid in warm.rss.get(name, {}) and pid in end.rss.get(name, {})

    services: dict[str, dict[str, Any]] = {}
    for service in sorted({Stack.service_of(name) for name in end.rss}):
        idle_sum = round(sum(idle.get(name, {}).get(pid, 0.0) for name, pids in end.rss.items()
                             if Stack.service_of(name) == service for pid in pids if _kept(name, pid)), 1)
        trend = [(s.closed, service_sum(s, service)) for s in half]
        services[service] = figures(idle_sum, service_sum(warm, service), service_sum(end, service), trend)
    growth = [p["growth_pct"] for p in processes if p["growth_pct"] is not None]
    return {"warmup_closed": warm.closed, "warmup_at": warm.at, "processes": processes, "services": services,
            "series": [{"at": s.at, "closed": s.closed, **{svc: service_sum(s, svc) for svc in services}}
                       for s in samples],
            "largest_growth_pct": max(growth) if growth else None,
            "still_growing": [f"{p['instance']} pid {p['pid']}" for p in processes if p["still_growing"]]}


def _slope(points: list[tuple[int, float]]) -> float | None:
    """Least-squares slope of y over x (MiB per request); None with fewer than three points or one x."""
    if len(points) < 3:
        return None
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if not spread:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


def soak_targets(soak: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue #17's memory target read over the soak, in the rows `targets` in __main__ makes: the largest growth
    of a service process from warm-up to end, whether any still grows over the last half, and that no request
    was lost or failed."""
    memory = soak.get("memory") or {}
    largest = memory.get("largest_growth_pct")
    rows = [("largest RSS growth warm-up → end, soak", "soak.memory.largest_growth_pct", largest, GROWTH_PCT, "%"),
            ("processes still growing over the last half", "soak.memory.still_growing",
             len(memory.get("still_growing", [])) if memory else None, 0, ""),
            ("requests lost or failed, soak", "soak.lost+failed", soak["lost"] + soak["failed"], 0, "")]
    found = []
    for name, where, value, limit, unit in rows:
        met = value is not None and value <= limit
        found.append({"target": f"{name} ({soak['requests']} requests)", "from": where, "limit": limit,
                      "unit": unit, "measured": value, "at_offered_rps": soak["offered_rps"], "met": met,
                      "missed_by": None if met or value is None else round(value - limit, 2),
                      "missed_factor": None if met or value is None or not limit else round(value / limit, 1)})
    return found
