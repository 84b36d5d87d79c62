"""`make run`: the embedded broker and the three services in the foreground, demo region on first start."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

import httpx

from infra.demo import DemoLoadError, load_demo_region
from infra.stack import SERVICES, Stack
from shared.region import DEMO_CLIENTS, DEMO_USERS


def main() -> int:
    parser = argparse.ArgumentParser(description="Run Regiozorg locally")
    parser.add_argument("--data-dir", default=os.environ.get("REGIOZORG_DATA_DIR", ".regiozorg"))
    parser.add_argument("--instances", type=int, default=1,
                        help="processes of every service, each on a port of its own (the first on 8001-8003)")
    args = parser.parse_args()
    data_dir = Path(args.data_dir).resolve()
    stack = Stack(data_dir=data_dir, kafka_bootstrap=os.environ.get("REGIOZORG_KAFKA_BOOTSTRAP"),
                  env={"REGIOZORG_ENV": os.environ.get("REGIOZORG_ENV", "demo")},
                  instances={service: args.instances for service in SERVICES})
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        print("Starting the broker and the three services ...", flush=True)
        stack.start()
        marker = data_dir / "demo-loaded"
        if not marker.exists():
            print("Loading the demo region (a shift of acute requests, worked through the public APIs) ...",
                  flush=True)
            try:
                load_demo_region(stack, progress=lambda line: print(line, flush=True))
            except (DemoLoadError, httpx.HTTPError) as exc:
                print(f"Loading the demo region failed: {exc}\nThe logs are in {data_dir / 'logs'}; remove "
                      f"{data_dir} to start afresh.", file=sys.stderr, flush=True)
                return 1
            marker.write_text("the demo region was loaded into this data folder\n")
            print("Demo region loaded.")
        print()
        print("Regiozorg is running:")
        for service, label in (("triage", "Triage console"), ("coordination", "Case-manager console"),
                               ("billing_shadow", "Billing console")):
            print(f"  {label:22} {stack.url(service)}/console   (API docs: {stack.url(service)}/docs)")
            for other in stack.urls(service)[1:]:
                print(f"  {'  another instance':22} {other}")
        print(f"  {'Partner console':22} {stack.url('coordination')}/console/partner")
        print(f"  {'Evaluation page':22} {stack.url('billing_shadow')}/console/evaluation   (login: evaluator)")
        print(f"  Kafka bootstrap        {stack.bootstrap}")
        print(f"  Data and logs          {data_dir}")
        print()
        print("Console logins (demo):")
        for user in DEMO_USERS:
            bound = f"partner console of {user.org.name}" if user.org else ""
            print(f"  {user.username:12} {user.demo_password:17} {bound}".rstrip())
        print("Machine clients (demo, client_secret_basic at /oauth/token):")
        for client in DEMO_CLIENTS:
            print(f"  {client.client_id:14} {client.demo_secret:20} acts for {client.org.label}")
        print("\nPress Ctrl-C to stop.", flush=True)
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        print("\nStopping ...", flush=True)
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
