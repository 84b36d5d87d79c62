"""SQL statements counted per unit of work (an HTTP route, an event consumer, a background job), when enabled.

Off by default and then free: nothing is attached to the engine. With `REGIOZORG_COUNT_STATEMENTS=1` a
SQLAlchemy `before_cursor_execute` listener adds one to the tally of the unit of work the statement runs in,
found through a context variable:

- an HTTP request gets its own tally in the middleware (shared/web.py); it is booked under
  "<METHOD> <route path>" once the route is known, with one request counted;
- each consumer's task, the outbox relay's task and each background job's task carry a tally for their whole
  life, set before the task is made (shared/runtime.py), booked as "consumer <name>", "outbox relay",
  "job <name>"; a consumer's events are counted by `regiozorg_events_consumed_total` and
  `regiozorg_events_duplicate_total`;
- anything else is booked under "other".

The totals are exported twice: as Prometheus counters (`regiozorg_sql_statements_total`,
`regiozorg_sql_units_total`, labels service and unit: never patient data) on /metrics, and as a JSON file per
process, `<data dir>/statements/<service>-<pid>.json`, rewritten at most every `FLUSH_SECONDS` while something
changed, so that a benchmark can add up every process of a service (uvicorn workers share one port, so their
/metrics cannot be told apart). Statements sent past SQLAlchemy (a raw driver connection) are not seen by the
listener; such code calls `note()` per statement.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import Counter
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import metrics

ENV_VARIABLE = "REGIOZORG_COUNT_STATEMENTS"
FLUSH_SECONDS = 0.5
OTHER = "other"


@dataclass
class Tally:
    """The statements of one unit of work so far; shared by every task that copied the context holding it."""

    unit: str
    statements: int = 0
    long_lived: bool = False  # booked statement by statement, not at the end


_CURRENT: ContextVar[Tally | None] = ContextVar("regiozorg_statement_tally", default=None)


def enabled() -> bool:
    """Whether this process counts statements (`REGIOZORG_COUNT_STATEMENTS` is 1, true or yes)."""
    return os.environ.get(ENV_VARIABLE, "").strip().lower() in {"1", "true", "yes"}


class StatementCounter:
    """Totals of one service process: {unit: [statements, requests]} (for long-lived tasks only statements;
    their events are added in `snapshot`)."""

    def __init__(self, service: str, data_dir: Path | None) -> None:
        self.service = service
        self.path = data_dir / "statements" / f"{service}-{os.getpid()}.json" if data_dir else None
        self.totals: dict[str, list[int]] = {}
        self._changed = False
        self._statements, self._units = _prometheus()

    def attach(self, engine: AsyncEngine) -> None:
        """Count every statement this engine sends (on the sync engine underneath the async one)."""
        event.listen(engine.sync_engine, "before_cursor_execute", self._on_statement)

    def _on_statement(self, *_args: Any) -> None:
        note()

    def book(self, unit: str, statements: int, units: int) -> None:
        """Add `statements` run by `units` units of work (requests) of `unit` to the totals."""
        row = self.totals.setdefault(unit, [0, 0])
        row[0] += statements
        row[1] += units
        self._changed = True
        if statements:
            self._statements.labels(self.service, unit).inc(statements)
        if units:
            self._units.labels(self.service, unit).inc(units)

    def snapshot(self) -> dict[str, Any]:
        """{"service", "pid", "at" (Unix seconds), "units": {unit: {"statements": int, "count": int}}}: the count of
        an HTTP route is its requests, of a consumer the events it took (committed or skipped as already
        processed; shared/metrics.py), of the relay and jobs 0."""
        units = {unit: {"statements": s, "count": n} for unit, (s, n) in self.totals.items()}
        for unit, events in _events_by_consumer().items():
            units.setdefault(unit, {"statements": 0, "count": 0})["count"] = events
        return {"service": self.service, "pid": os.getpid(), "at": time.time(), "units": units}

    def flush(self) -> None:
        """Write the snapshot file (atomically: a reader never sees half of it)."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".tmp")
        partial.write_text(json.dumps(self.snapshot()))
        partial.replace(self.path)

    async def flush_forever(self) -> None:
        """Rewrite the file every `FLUSH_SECONDS` while statements were counted meanwhile."""
        while True:
            if self._changed:
                self._changed = False
                self.flush()
            await asyncio.sleep(FLUSH_SECONDS)


_COUNTER: StatementCounter | None = None


def _events_by_consumer() -> dict[str, int]:
    """{"consumer <name>": events taken} in this process, from the consumers' own counters."""
    found: dict[str, int] = {}
    for family in (*metrics.CONSUMED.collect(), *metrics.DUPLICATES.collect()):
        for sample in family.samples:
            if sample.name.endswith("_total"):
                unit = f"consumer {sample.labels['consumer']}"
                found[unit] = found.get(unit, 0) + int(sample.value)
    return found


_PROMETHEUS: tuple[Counter, Counter] | None = None


def _prometheus() -> tuple[Counter, Counter]:
    global _PROMETHEUS
    if _PROMETHEUS is None:  # registered on first use only: a process that does not count exports nothing
        _PROMETHEUS = (
            Counter("regiozorg_sql_statements_total", "SQL statements sent, per unit of work", ["service", "unit"]),
            Counter("regiozorg_sql_units_total", "Units of work (HTTP requests) whose statements were counted",
                    ["service", "unit"]))
    return _PROMETHEUS


def start(service: str, engine: AsyncEngine, data_dir: Path | None) -> StatementCounter | None:
    """Count this process's statements on `engine` when enabled (else None, and nothing is attached)."""
    global _COUNTER
    if not enabled():
        return None
    _COUNTER = StatementCounter(service, data_dir)
    _COUNTER.attach(engine)
    return _COUNTER


def counter() -> StatementCounter | None:
    """This process's counter, when counting is on."""
    return _COUNTER


def note(statements: int = 1) -> None:
    """Count statements sent in the current unit of work (for code that bypasses SQLAlchemy)."""
    if _COUNTER is None:
        return
    tally = _CURRENT.get()
    if tally is None:
        _COUNTER.book(OTHER, statements, 0)
    elif tally.long_lived:
        _COUNTER.book(tally.unit, statements, 0)
    else:
        tally.statements += statements


@contextlib.contextmanager
def request_tally() -> Iterator[Tally | None]:
    """A fresh tally for one request, current inside the block (None when counting is off); the caller books it
    with `book_request` once it knows the route."""
    if _COUNTER is None:
        yield None
        return
    tally = Tally(OTHER)
    token = _CURRENT.set(tally)
    try:
        yield tally
    finally:
        _CURRENT.reset(token)


def book_request(tally: Tally | None, unit: str) -> None:
    """Book a finished request's statements under `unit` ("POST /fhir")."""
    if _COUNTER is not None and tally is not None:
        _COUNTER.book(unit, tally.statements, 1)


def long_lived(unit: str) -> None:
    """Make every statement of the current task (and the tasks it makes from now on) count for `unit`.

    Call it at the top of a task that lives as long as the process (a consumer's start, the relay's start):
    the context variable is set in that task's own context only.
    """
    if _COUNTER is None:
        return
    _CURRENT.set(Tally(unit, long_lived=True))


def read_totals(data_dir: Path) -> dict[tuple[str, str], tuple[int, int]]:
    """{(service, unit): (statements, count)} summed over every process's file under `data_dir` (instances,
    workers, and processes that have ended: their counts stand). Used by the benchmark and the budget test."""
    totals: dict[tuple[str, str], tuple[int, int]] = {}
    for path in sorted((data_dir / "statements").glob("*.json")):
        try:
            snapshot = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # a process being replaced; the next read finds it whole
        for unit, row in snapshot["units"].items():
            key = (snapshot["service"], unit)
            statements, count = totals.get(key, (0, 0))
            totals[key] = (statements + row["statements"], count + row["count"])
    return totals
