"""Where the time goes: py-spy samples every service process while the bench load runs.

    python -m tests.bench.profile [--database postgresql] [--rate 50] [--seconds 20] [--out profiles/]

Prints the CPU each process used and, per service, the functions of the product with the most
samples (inclusive), and writes one collapsed-stack file per process (flamegraph input).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import re
import subprocess
import sys
import time
from pathlib import Path

from tests.bench.__main__ import ROOT, CpuMeter, bench_stack, cpu_seconds, intake_phase, load_phase
from tests.bench.load import Driver

PRODUCT_FRAME = re.compile(r"(.*) \(((?:services|shared|infra)/[^:]*):\d+\)")


def summarise(collapsed: Path, top: int) -> list[tuple[str, float]]:
    """Inclusive share of samples per function of the product (services/, shared/, infra/), as
    "function [file]"; library frames only count towards the product function that called them."""
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        total += int(count)
        names = {f"{m.group(1)} [{m.group(2)}]" for frame in stack.split(";")
                 if (m := PRODUCT_FRAME.match(frame))}
        for name in names:
            inclusive[name] += int(count)
    return [(name, n / total) for name, n in inclusive.most_common(top)] if total else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.profile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="postgresql")
    parser.add_argument("--triage-workers", type=int, default=2)
    parser.add_argument("--phase", choices=["intake", "e2e"], default="e2e")
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", type=Path, default=ROOT / "test-artifacts" / "profiles")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    postgres = "postgresql://postgres@127.0.0.1:5432/postgres"
    with bench_stack(args.database, args.triage_workers, postgres) as stack:
        pids = {f"{name}-{i}": pid for name in stack.processes for i, pid in enumerate(stack.pids(name))}
        before = {label: cpu_seconds(pid) for label, pid in pids.items()}
        recorders = {label: subprocess.Popen(
            [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid),
             "--duration", str(int(args.seconds)), "--format", "raw", "--rate", "50", "--nonblocking",
             "--output", str(args.out / f"{label}.txt")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for label, pid in pids.items()}

        async def drive() -> None:
            async with Driver(triage=stack.url("triage"), coordination=stack.url("coordination"),
                              bootstrap=stack.bootstrap) as driver:
                if args.phase == "intake":
                    print(await intake_phase(driver, args.seconds, 32, CpuMeter(stack)))
                else:
                    print(await load_phase(driver, args.rate, args.seconds, CpuMeter(stack)))

        started = time.monotonic()
        asyncio.run(drive())
        wall = time.monotonic() - started
        for recorder in recorders.values():
            recorder.wait()
        print(f"\nCPU per process over {wall:.0f}s (1.0 = one core busy):")
        for label, pid in pids.items():
            print(f"  {label:<18} {(cpu_seconds(pid) - before[label]) / wall:5.2f}")
        for label in pids:
            collapsed = args.out / f"{label}.txt"
            if not collapsed.exists():
                continue
            print(f"\n{label}: most sampled (inclusive)")
            for name, share in summarise(collapsed, args.top):
                print(f"  {share:6.1%}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
