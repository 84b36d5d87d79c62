"""`make chaos`: every fault under a steady load of referrals, then the books; prints the table.

    python -m tests.chaos [--rate 10] [--seconds 30] [--repeat 1] [--cases kill,broker,...]

Starts broker and services on fresh PostgreSQL databases, runs the cases of tests/chaos/scenario.py
one after the other on the same stack, then the two-instance cases on a second stack with two instances of every
service, and exits non-zero when anything was lost or duplicated.
The same cases, shorter, run in `make test` (tests/chaos/test_chaos.py).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from infra.stack import Stack
from tests.chaos.scenario import TWO_INSTANCES, CaseResult, Chaos, cases, table, two_instance_cases
from tests.conftest import PostgresDatabases, free_port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=10, help="referrals per second during each case")
    parser.add_argument("--seconds", type=float, default=30, help="length of the load in each case")
    parser.add_argument("--repeat", type=int, default=1, help="run every case this many times")
    parser.add_argument("--cases", default="", help="comma-separated parts of case names to run (default: all)")
    parser.add_argument("--postgres", default=os.environ.get("REGIOZORG_CHAOS_POSTGRES_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args(argv)
    # The driver's own broker client narrates every reconnect while the broker is down on purpose.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    wanted = [w.strip() for w in args.cases.split(",") if w.strip()]
    results: list[CaseResult] = []
    for instances, which in (({}, cases), (TWO_INSTANCES, two_instance_cases)):
        names = [name for name, _ in which(None)]
        if wanted and not any(w in name for w in wanted for name in names):
            continue
        results += run_stack(args, instances, which, wanted)
    print(table(results))
    bad = [r for r in results if r.lost or r.duplicated or not r.books.clean or r.driver_errors]
    print(f"\n{len(results)} cases, rate {args.rate:g}/s for {args.seconds:g}s each: "
          + ("nothing lost, nothing duplicated" if not bad else f"{len(bad)} case(s) with problems"))
    return 1 if bad else 0


def run_stack(args: argparse.Namespace, instances: dict[str, int],
              which: Callable[[Chaos | None], list[tuple[str, Callable[[], Awaitable[None]] | None]]],
              wanted: list[str]) -> list[CaseResult]:
    """One stack (`instances` processes per service, default one) on fresh databases, and its cases."""
    databases = PostgresDatabases(args.postgres)
    urls = {name: databases.new(f"chaos_{name}") for name in ("triage", "coordination", "billing_shadow")}
    results: list[CaseResult] = []
    with tempfile.TemporaryDirectory(prefix="regiozorg-chaos-") as data_dir:
        stack = Stack(data_dir=Path(data_dir), ports={n: free_port() for n in ("triage", "coordination",
                                                                               "billing_shadow")},
                      broker_port=free_port(), database_urls=urls, instances=instances)
        try:
            stack.start(timeout=120)
            chaos = Chaos(stack, args.postgres)

            async def run_all() -> None:
                for _ in range(args.repeat):
                    for name, fault in which(chaos):
                        if wanted and not any(w in name for w in wanted):
                            continue
                        print(f"… {name}", file=sys.stderr, flush=True)
                        result = await chaos.run_case(name, fault, rate=args.rate, seconds=args.seconds)
                        results.append(result)
                        if not result.books.clean or result.driver_errors:
                            print(f"  ! {result.books.problems()} {result.driver_errors[:3]}", file=sys.stderr)

            asyncio.run(run_all())
        finally:
            stack.stop()
            databases.drop_all()
    return results


if __name__ == "__main__":
    sys.exit(main())
