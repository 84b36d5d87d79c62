"""Starts and stops the whole product as real processes: broker plus the three services (used by
`make run` and by the end-to-end tests)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from infra.broker import EmbeddedBroker
from infra.client import ApiClient

ROOT = Path(__file__).resolve().parent.parent
SERVICES = {"triage": "services.triage.app:create_app", "coordination": "services.coordination.app:create_app",
            "billing_shadow": "services.billing_shadow.app:create_app"}


@dataclass
class Stack:
    data_dir: Path
    ports: dict[str, int] = field(default_factory=lambda: {"triage": 8001, "coordination": 8002,
                                                           "billing_shadow": 8003})
    broker_port: int = 19092
    kafka_bootstrap: str | None = None
    database_urls: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    workers: dict[str, int] = field(default_factory=dict)  # uvicorn worker processes per service (default 1)
    broker: EmbeddedBroker | None = None
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def client(self, client_id: str) -> ApiClient:
        """An API client acting for one of the demo clients against this stack."""
        return ApiClient(client_id, self.url("triage"), self.url("coordination"), self.url("billing_shadow"))

    @property
    def bootstrap(self) -> str:
        return self.kafka_bootstrap or f"127.0.0.1:{self.broker_port}"

    def start(self, timeout: float = 60) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "logs").mkdir(exist_ok=True)
        if self.kafka_bootstrap is None:
            self.broker = EmbeddedBroker(self.broker_port, self.data_dir / "logs" / "broker.log")
            self.broker.start()
        for name in SERVICES:
            self.start_service(name)
        self.wait_ready(timeout)

    def service_env(self, name: str) -> dict[str, str]:
        env = {**os.environ, **self.env,
               "REGIOZORG_DATA_DIR": str(self.data_dir),
               "REGIOZORG_KAFKA_BOOTSTRAP": self.bootstrap,
               "REGIOZORG_ISSUER": self.url("triage"),
               "TRIAGE_PUBLIC_URL": self.url("triage"),
               "COORDINATION_PUBLIC_URL": self.url("coordination"),
               "BILLING_SHADOW_PUBLIC_URL": self.url("billing_shadow"),
               "PYTHONPATH": str(ROOT)}
        if name in self.database_urls:
            env[f"{name.upper()}_DATABASE_URL"] = self.database_urls[name]
        return env

    def start_service(self, name: str) -> None:
        log = open(self.data_dir / "logs" / f"{name}.log", "ab")  # noqa: SIM115
        command = [sys.executable, "-m", "uvicorn", "--factory", SERVICES[name], "--host", "127.0.0.1",
                   "--port", str(self.ports[name]), "--no-access-log", "--log-level", "warning"]
        if self.workers.get(name, 1) > 1:
            command += ["--workers", str(self.workers[name])]
        # Its own process group, so a crash can take the supervisor and all its workers at once.
        self.processes[name] = subprocess.Popen(command, cwd=ROOT, env=self.service_env(name), stdout=log,
                                                stderr=subprocess.STDOUT, start_new_session=True)

    def kill_service(self, name: str) -> None:
        """A crash: SIGKILL to the service's whole process group, nothing gets to clean up."""
        process = self.processes.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)

    def restart_service(self, name: str, timeout: float = 60) -> None:
        self.start_service(name)
        self.wait_ready(timeout, [name])

    def pids(self, name: str) -> list[int]:
        """The service's processes: the uvicorn supervisor and, with several workers, its children."""
        root = self.processes[name].pid
        children = Path(f"/proc/{root}/task/{root}/children")
        found = [int(pid) for pid in children.read_text().split()] if children.exists() else []
        return [root, *found]

    def wait_ready(self, timeout: float = 60, names: list[str] | None = None) -> None:
        deadline = time.monotonic() + timeout
        pending = set(names or SERVICES)
        while pending and time.monotonic() < deadline:
            for name in list(pending):
                process = self.processes[name]
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with code {process.returncode}; see "
                                       f"{self.data_dir / 'logs' / (name + '.log')}")
                try:
                    if httpx.get(f"{self.url(name)}/readyz", timeout=2).status_code == 200:
                        pending.discard(name)
                except httpx.HTTPError:
                    pass
            time.sleep(0.2)
        if pending:
            raise TimeoutError(f"not ready after {timeout}s: {', '.join(sorted(pending))}")

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(15)
            # Workers of a supervisor that died first would live on; the group goes as a whole.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        self.processes.clear()
        if self.broker:
            self.broker.stop()
