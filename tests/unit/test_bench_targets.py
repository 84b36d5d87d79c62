"""The bench reads issue #17's targets from its report and says by how much each is missed."""

from __future__ import annotations

from typing import Any

from tests.bench import report
from tests.bench.__main__ import memory_report, targets


def run_of(*, triage_ms: float, product_ms: float, p50: float, p99: float) -> dict[str, Any]:
    load = {"offered_rps": 5.0, "achieved_rps": 5.0, "completed": 100, "failed": 0, "driver_cpu": 0.1,
            "latency_ms": {"p50": p50, "p95": p99, "p99": p99},
            "cpu_ms_per_request": {"triage": 40.0, "product": product_ms},
            "statements_per_request": {"triage": 51.0, "total": 137.0},
            "statements_by_unit": {"triage POST /fhir": {"statements": 1100, "calls": 100, "per_call": 11.0,
                                                         "per_request": 11.0}}}
    heavier = {**load, "offered_rps": 40.0, "latency_ms": {"p50": 9000.0, "p95": 9000.0, "p99": 9000.0},
               "cpu_ms_per_request": {"product": 1.0}}
    memory = memory_report({"triage": {"11": 100.0, "12": 200.0}, "coordination": {"13": 100.0}},
                           {"triage": {"11": 101.0, "12": 230.0}, "coordination": {"13": 100.0},
                            "coordination#2": {"14": 90.0}})
    return {"intake": {"cpu_ms_per_referral": {"triage": triage_ms}, "statements_per_referral": {"triage": 11.0}},
            "loads": [heavier, load], "memory": memory, "instances": 2, "triage_workers": 2, "intake_rps": 50.0,
            "ratios": {"intake_per_worker_to_validate": 0.03}}


def test_targets_are_read_at_the_lowest_load_and_misses_are_measured() -> None:
    rows = {t["target"]: t for t in targets(run_of(triage_ms=12.5, product_ms=150.0, p50=250.0, p99=1600.0))}

    assert (rows["triage CPU per referral Bundle"]["missed_by"],
            rows["triage CPU per referral Bundle"]["missed_factor"]) == (10.0, 5.0)
    product = rows["product CPU per closed request, lowest load"]
    assert (product["measured"], product["at_offered_rps"], product["met"], product["missed_by"]) == (
        150.0, 5.0, False, 135.0)
    assert rows["latency p50, lowest load"]["met"] and rows["latency p50, lowest load"]["missed_by"] is None
    assert rows["latency p99, lowest load"]["missed_factor"] == 2.0
    # 200 → 230 MiB is 15 % growth: the largest of any process; a process started meanwhile has none.
    rss = rows["largest RSS growth of a service process"]
    assert (rss["measured"], rss["met"]) == (15.0, False)


def test_memory_is_summed_per_service_over_its_instances() -> None:
    memory = run_of(triage_ms=1, product_ms=1, p50=1, p99=1)["memory"]

    assert memory["services"]["triage"] == {"idle_mib": 300.0, "end_mib": 331.0, "growth_mib": 31.0}
    assert memory["services"]["coordination"] == {"idle_mib": 100.0, "end_mib": 100.0, "growth_mib": 0.0}
    assert [p["growth_mib"] for p in memory["processes"] if p["instance"] == "coordination#2"] == [None]


def test_the_table_prints_each_target_with_its_miss() -> None:
    run = run_of(triage_ms=2.0, product_ms=150.0, p50=250.0, p99=700.0)
    run["targets"] = targets(run)
    text = report.table({"machine": "test", "floor": {"validate_rps": 800.0, "produce_rps": 10000.0,
                                                      "insert_rps_by_database": {"postgresql": 5000.0}},
                         "runs": {"postgresql": run}})

    assert "triage CPU per referral Bundle" in text and "met" in text
    assert "MISSED by 135 ms (10×)" in text
    assert "triage POST /fhir" in text and "11.0 per call" in text
