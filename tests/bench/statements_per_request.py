"""SQL statements per closed request, every unit of work included (relays and jobs too), one request at a time.

    python -m tests.bench.statements_per_request [--requests 10] [--postgres postgresql://…/postgres]

Starts the real stack (broker, three services) on fresh PostgreSQL databases with statement counting on
(shared/statements.py), runs one warm-up request, then `--requests` requests one after another, each to its
prestation, waiting after each until the counts stand still, and prints per service and unit of work the
statements per request (the budget test, tests/e2e/test_statement_budgets.py, leaves out the background work
this adds: outbox relays, the notification sender, jobs), with the POST→prestation latency (p50, max). The
relays' and the notification sender's fallback timers are set long (600 s) so that idle rounds are not counted;
a job that runs on a timer counts while idle too, so its figure depends on how long the requests took.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from infra.stack import Stack
from shared import statements
from tests.bench.load import Driver
from tests.conftest import PostgresDatabases, free_port

SETTLE_SECONDS = 1.5  # the counts are flushed every 0.5 s; a relay's last round follows the request's last commit
# Timers that would count while idle set long: what is counted then is what the requests caused.
IDLE_QUIET = {"REGIOZORG_OUTBOX_FALLBACK_SECONDS": "600", "COORDINATION_NOTIFY_FALLBACK_SECONDS": "600"}


async def _settled(data_dir: Path) -> dict[tuple[str, str], tuple[int, int]]:
    """The totals once every unit but the timed jobs (which count on while idle) stood still for a moment."""
    last = None
    deadline = time.monotonic() + 20
    while True:
        await asyncio.sleep(SETTLE_SECONDS)
        now = statements.read_totals(data_dir)
        moving = {key: value for key, value in now.items() if not key[1].startswith("job ")}
        if moving == last or time.monotonic() > deadline:
            return now
        last = moving


async def measure(stack: Stack, requests: int) -> tuple[dict[tuple[str, str], int], list[float]]:
    """{(service, unit): statements over all `requests`} and the POST→prestation seconds of each request."""
    latencies: list[float] = []
    async with Driver(triage=stack.url("triage"), coordination=stack.url("coordination"),
                      bootstrap=stack.bootstrap) as driver:
        warm = driver.new_journey()
        await driver.run(warm)
        assert warm.error is None, warm.error
        before = await _settled(stack.data_dir)
        for _ in range(requests):
            journey = driver.new_journey()
            await driver.run(journey)
            assert journey.error is None, journey.error
            assert journey.recorded_at is not None
            latencies.append(journey.recorded_at - journey.posted_at)
        after = await _settled(stack.data_dir)
    spent = {key: after[key][0] - before.get(key, (0, 0))[0] for key in after}
    return {key: n for key, n in spent.items() if n}, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--postgres", default=os.environ.get("REGIOZORG_TEST_POSTGRES_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stopped from outside: the stack is stopped too
    databases = PostgresDatabases(args.postgres)
    try:
        urls = {name: databases.new(f"count_{name}") for name in ("triage", "coordination", "billing_shadow")}
        with tempfile.TemporaryDirectory() as data_dir:
            stack = Stack(data_dir=Path(data_dir),
                          ports={"triage": free_port(), "coordination": free_port(), "billing_shadow": free_port()},
                          broker_port=free_port(), env={statements.ENV_VARIABLE: "1", **IDLE_QUIET}, database_urls=urls)
            stack.start()
            try:
                spent, latencies = asyncio.run(measure(stack, args.requests))
            finally:
                stack.stop()
    finally:
        databases.drop_all()
    n = args.requests
    print(f"{'service':<16}{'unit':<58}{'per request':>12}")
    for (service, unit), count in sorted(spent.items(), key=lambda item: -item[1]):
        print(f"{service:<16}{unit:<58}{count / n:>12.1f}")
    print(f"{'all':<16}{'':<58}{sum(spent.values()) / n:>12.1f}")
    relays = sum(count for (_, unit), count in spent.items() if unit == "outbox relay")
    print(f"outbox relays: {relays / n:.1f} per request; POST→prestation "
          f"p50 {statistics.median(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms "
          f"({n} requests, {time.strftime('%H:%M:%S')})")


if __name__ == "__main__":
    main()
