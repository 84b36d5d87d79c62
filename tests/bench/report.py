"""The benchmark's outputs: one JSON report, a PNG chart and a short table on stdout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_json(path: Path) -> dict[str, Any]:
    """The report at `path`, or {} when there is none (or it is not JSON)."""
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def write_json(report: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n")


def write_chart(report: dict[str, Any], path: Path) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for database, run in report["runs"].items():
        loads = [p["offered_rps"] for p in run["loads"]]
        if not loads:
            continue
        left.plot(loads, [p["achieved_rps"] for p in run["loads"]], marker="o", label=database)
        for key, style in (("p50", "-"), ("p95", "--"), ("p99", ":")):
            right.plot(loads, [p["latency_ms"][key] for p in run["loads"]], style, marker="o",
                       label=f"{database} {key}")
    top = max((p["offered_rps"] for run in report["runs"].values() for p in run["loads"]), default=1)
    left.plot([0, top], [0, top], color="grey", linewidth=0.8, label="offered = achieved")
    left.set(title="End-to-end throughput", xlabel="offered load (requests/s)",
             ylabel="closed requests with a prestation (/s)")
    right.set(title="Latency, POST → prestation recorded", xlabel="offered load (requests/s)", ylabel="ms",
              yscale="log")
    for axis in (left, right):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    fig.suptitle(f"make bench — {report['machine']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def table(report: dict[str, Any]) -> str:
    floor = report["floor"]
    lines = [f"machine: {report['machine']}",
             f"floor: validate {floor['validate_rps']:.0f} Bundles/s (1 core), "
             f"produce {floor['produce_rps']:.0f} records/s, "
             + ", ".join(f"insert {db} {rate:.0f} tx/s" for db, rate in floor["insert_rps_by_database"].items()),
             "",
             f"{'database':<11} {'instances':>9} {'workers':>7} {'intake/s':>9} {'per worker / validate':>22}",
             ]
    for database, run in report["runs"].items():
        lines.append(f"{database:<11} {run.get('instances', 1):>9} {run['triage_workers']:>7} "
                     f"{run['intake_rps']:>9.1f} {run['ratios']['intake_per_worker_to_validate']:>21.1%}")
    lines += ["", f"{'database':<11} {'offered/s':>9} {'achieved/s':>10} {'done':>6} {'failed':>6} "
                  f"{'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'driver cpu':>10}"]
    for database, run in report["runs"].items():
        for p in run["loads"]:
            lat = p["latency_ms"]
            lines.append(f"{database:<11} {p['offered_rps']:>9.0f} {p['achieved_rps']:>10.1f} {p['completed']:>6} "
                         f"{p['failed']:>6} {lat['p50']:>8.0f} {lat['p95']:>8.0f} {lat['p99']:>8.0f} "
                         f"{p['driver_cpu']:>10.0%}")
    lines += ["", "CPU per request, ms (lowest offered load; intake: per referral Bundle):"]
    for database, run in report["runs"].items():
        intake = run["intake"]["cpu_ms_per_referral"]
        lines.append(f"{database:<11} intake  " + "  ".join(f"{k} {v:.1f}" for k, v in intake.items()))
        if run["loads"]:
            e2e = run["loads"][0]["cpu_ms_per_request"]
            lines.append(f"{database:<11} e2e     " + "  ".join(f"{k} {v:.1f}" for k, v in e2e.items()))
    lines += ["", "SQL statements per request per service (intake: per referral Bundle; e2e: lowest offered load):"]
    for database, run in report["runs"].items():
        for label, counts in (("intake", run["intake"].get("statements_per_referral")),
                              ("e2e", lowest(run).get("statements_per_request") if run["loads"] else None)):
            if counts:
                lines.append(f"{database:<11} {label:<7} " + "  ".join(f"{k} {v:.1f}" for k, v in counts.items()))
        units = lowest(run).get("statements_by_unit", {}) if run["loads"] else {}
        for unit, row in units.items():
            per = f"{row['per_call']:.1f} per call" if row["per_call"] is not None else "background"
            lines.append(f"{'':<11}   {unit:<62} {per:>18}  {row['per_request']:6.1f} per request")
    lines += ["", "Resident size per service (MiB, every process of every instance): idle → end (growth):"]
    for database, run in report["runs"].items():
        for service, mem in run.get("memory", {}).get("services", {}).items():
            lines.append(f"{database:<11} {service:<15} {mem['idle_mib']:7.1f} → {mem['end_mib']:7.1f} "
                         f"({mem['growth_mib']:+.1f})")
    if report.get("soak"):
        lines += ["", f"Soak of {report['soak']['started']} (python -m tests.bench --soak):",
                  soak_table(report["soak"])]
    lines += ["", "Targets (issue #17):"]
    for database, run in report["runs"].items():
        for t in run.get("targets", []):
            value = "n/a" if t["measured"] is None else f"{t['measured']:g} {t['unit']}"
            verdict = "met" if t["met"] else (f"MISSED by {t['missed_by']:g} {t['unit']} ({t['missed_factor']:g}×)"
                                              if t["missed_by"] is not None else "not measured")
            at = f" at {t['at_offered_rps']:g}/s" if t["at_offered_rps"] is not None else ""
            lines.append(f"{database:<11} {t['target'] + at:<52} {value:>12}  limit {t['limit']:g} {t['unit']:<3} "
                         f"{verdict}")
    return "\n".join(lines)


def soak_table(soak: dict[str, Any]) -> str:
    """The soak's counts, resident size per service (idle, warm-up, end, growth, trend) and its targets."""
    memory = soak.get("memory") or {}
    lat = soak["latency_ms"]
    lines = [f"soak on {soak['database']}: {soak['requests']} requests offered at {soak['offered_rps']:g}/s "
             f"({soak['offered_actual_rps']:g}/s), {soak['seconds']:.0f} s; completed {soak['completed']}, "
             f"failed {soak['failed']}, lost {soak['lost']}, refused {soak['refused']}; "
             f"latency p50 {lat['p50']:.0f} ms, p99 {lat['p99']:.0f} ms",
             f"Resident size (MiB; warm-up = after {memory.get('warmup_closed', 0)} closed requests; trend = "
             "least-squares line over the last half):",
             f"{'':<2}{'service / process':<30} {'idle':>7} {'warm-up':>8} {'end':>7} {'growth':>14} "
             f"{'MiB/1000 req':>12} {'last half':>9}"]

    def row(label: str, f: dict[str, Any]) -> str:
        growth = (f"{f['growth_mib']:+.1f} ({f['growth_pct']:+.1f}%)" if f["growth_pct"] is not None
                  else "n/a")
        slope = "n/a" if f["slope_mib_per_1000"] is None else f"{f['slope_mib_per_1000']:+.2f}"
        half = "n/a" if f["last_half_pct"] is None else f"{f['last_half_pct']:+.1f}%"
        idle, warm = (("n/a" if v is None else f"{v:.1f}") for v in (f["idle_mib"], f["warmup_mib"]))
        return (f"  {label:<30} {idle:>7} {warm:>8} {f['end_mib']:>7.1f} "
                f"{growth:>14} {slope:>12} {half:>9}" + ("  still growing" if f["still_growing"] else ""))

    for service, figures in memory.get("services", {}).items():
        lines.append(row(service, figures))
        for p in memory.get("processes", []):
            if p["instance"].split("#", 1)[0] == service:
                lines.append(row(f"  {p['instance']} pid {p['pid']}", p))
    for t in soak.get("targets", []):
        value = "n/a" if t["measured"] is None else f"{t['measured']:g} {t['unit']}".strip()
        verdict = "met" if t["met"] else (f"MISSED by {t['missed_by']:g} {t['unit']}".strip()
                                          if t["missed_by"] is not None else "not measured")
        lines.append(f"  {t['target']:<58} {value:>10}  limit {t['limit']:g} {t['unit']:<1}  {verdict}")
    return "\n".join(lines)


def write_soak_chart(soak: dict[str, Any], path: Path) -> None:
    """Resident size of each service (sum of its processes) over the closed requests of the soak, as the change
    since warm-up (a few MiB would not show on the scale of the sizes themselves)."""
    memory = soak.get("memory") or {}
    series = memory.get("series", [])
    if not series:
        return
    fig, axis = plt.subplots(figsize=(8, 4.2))
    for service, figures in memory["services"].items():
        axis.plot([s["closed"] for s in series], [s[service] - figures["warmup_mib"] for s in series], marker=".",
                  label=f"{service} (warm-up {figures['warmup_mib']:.0f} MiB)")
    axis.axvline(memory["warmup_closed"], color="grey", linewidth=0.8, linestyle="--", label="warm-up")
    axis.set(title=f"Resident size over a {soak['requests']}-request soak at {soak['offered_rps']:g}/s",
             xlabel="requests closed", ylabel="MiB since warm-up (all processes of the service)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    fig.suptitle(soak["machine"], fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def lowest(run: dict[str, Any]) -> dict[str, Any]:
    """The load phase at the lowest offered load (the targets are read there)."""
    return dict(min(run["loads"], key=lambda p: p["offered_rps"]))
