"""The soak (python -m tests.bench --soak N) reads issue #17's "no growth across a 10,000-request run" from its RSS
samples: growth is measured from warm-up to the end, and a process whose size still climbs over the last half is
named, while one that grew during warm-up only and then stayed is not."""

from __future__ import annotations

from typing import Any

from tests.bench import report
from tests.bench.soak import Sample, soak_memory, soak_targets

IDLE = {"triage": {"11": 100.0}, "coordination": {"21": 80.0}, "billing_shadow": {"31": 90.0}}


def samples() -> list[Sample]:
    """1,000 requests, a sample every 100: triage grows during warm-up only (100 → 110, then flat); coordination
    keeps climbing, 1 MiB per 100 requests; billing_shadow is restarted after 500 requests (a new pid)."""
    found = []
    for closed in range(0, 1001, 100):
        billing = {"31": 90.0} if closed < 500 else {"32": 60.0 + closed / 1000}
        found.append(Sample(at=closed / 10, closed=closed,
                            rss={"triage": {"11": 100.0 if closed == 0 else 110.0},
                                 "coordination": {"21": 80.0 + closed / 100}, "billing_shadow": billing}))
    return found


def test_growth_is_measured_from_warm_up_and_a_process_still_climbing_is_named() -> None:
    memory = soak_memory(IDLE, samples(), 1000)
    rows = {p["instance"]: p for p in memory["processes"]}

    assert memory["warmup_closed"] == 100  # the first tenth of the requests
    # Triage: 10 MiB during warm-up, none after it, and flat over the last half.
    assert (rows["triage"]["idle_mib"], rows["triage"]["warmup_mib"], rows["triage"]["end_mib"]) == (
        100.0, 110.0, 110.0)
    assert (rows["triage"]["growth_pct"], rows["triage"]["still_growing"]) == (0.0, False)
    # Coordination: 81 → 90 MiB after warm-up (11.1 %), 10 MiB per 1,000 requests, 5 MiB over the last half.
    coordination = rows["coordination"]
    assert (coordination["growth_mib"], coordination["growth_pct"]) == (9.0, 11.1)
    assert (coordination["slope_mib_per_1000"], coordination["last_half_pct"]) == (10.0, 6.2)
    assert coordination["still_growing"]
    assert memory["still_growing"] == ["coordination pid 21"] and memory["largest_growth_pct"] == 11.1
    # The restarted billing process was not there at warm-up: listed without growth, left out of the sums.
    assert (rows["billing_shadow"]["pid"], rows["billing_shadow"]["growth_pct"]) == (32, None)
    assert "billing_shadow" in memory["services"] and memory["services"]["billing_shadow"]["end_mib"] == 0.0
    assert memory["services"]["coordination"]["still_growing"]
    assert [s["coordination"] for s in memory["series"]][-1] == 90.0


def soak_of(memory: dict[str, Any], *, failed: int = 0, lost: int = 0) -> dict[str, Any]:
    return {"requests": 1000, "offered_rps": 10.0, "offered_actual_rps": 10.0, "seconds": 100.0, "completed": 1000,
            "failed": failed, "lost": lost, "refused": 0, "latency_ms": {"p50": 100.0, "p95": 150.0, "p99": 200.0},
            "database": "postgresql", "memory": memory}


def test_the_targets_miss_on_growth_on_a_climbing_process_and_on_a_lost_request() -> None:
    soak = soak_of(soak_memory(IDLE, samples(), 1000), failed=1, lost=1)
    rows = soak_targets(soak)

    assert [(r["measured"], r["met"]) for r in rows] == [(11.1, False), (1, False), (2, False)]
    soak["targets"] = rows
    text = report.soak_table(soak)
    assert "still growing" in text and "coordination pid 21" in text and "MISSED by 6.1 %" in text
    assert "failed 1, lost 1" in text


def test_a_flat_run_meets_every_target() -> None:
    flat = [Sample(at=n, closed=n * 100, rss={"triage": {"11": 120.0}}) for n in range(11)]
    rows = soak_targets(soak_of(soak_memory({"triage": {"11": 100.0}}, flat, 1000)))

    assert all(r["met"] for r in rows) and rows[0]["measured"] == 0.0
