"""Starts and stops the whole product as real processes: broker plus the three services (used by
`make run` and by the end-to-end tests), optionally several instances of a service.

An instance is a process of its own on a port of its own, against the same database and broker as its
siblings: its consumer joins the service's consumer group (the partitions are split between them) and its
outbox relay works the same outbox. The first instance of a service is named after the service and listens
on `ports[service]`; the others are named "<service>#2", "<service>#3", … on free ports. Whoever calls a
service with several instances spreads its calls over `urls(service)`."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
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
    instances: dict[str, int] = field(default_factory=dict)  # processes on ports of their own (default 1)
    broker: EmbeddedBroker | None = None
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)  # by instance name
    instance_ports: dict[str, int] = field(default_factory=dict)  # "<service>#n" (n ≥ 2) -> port

    def url(self, service: str) -> str:
        """The first instance of a service, or the named instance ("coordination#2")."""
        if "#" in service:
            return f"http://127.0.0.1:{self.instance_ports[service]}"
        return f"http://127.0.0.1:{self.ports[service]}"

    def instance_names(self, service: str) -> list[str]:
        """["coordination", "coordination#2", …]: every instance of a service, started or not."""
        return [service] + [f"{service}#{n}" for n in range(2, self.instances.get(service, 1) + 1)]

    def urls(self, service: str) -> list[str]:
        """The base URL of every instance of a service, the first first."""
        return [self.url(name) for name in self.instance_names(service)]

    @staticmethod
    def service_of(instance: str) -> str:
        """"coordination#2" -> "coordination"."""
        return instance.split("#", 1)[0]

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
        for service in SERVICES:
            for name in self.instance_names(service):
                if "#" in name and name not in self.instance_ports:
                    self.instance_ports[name] = _free_port()
                self.start_service(name)
        self.wait_ready(timeout)

    def service_env(self, name: str) -> dict[str, str]:
        """The environment of a service's processes (`name`: a service or an instance of one)."""
        name = self.service_of(name)
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
        """Start a service's first instance (`name` = the service) or another one ("coordination#2")."""
        service = self.service_of(name)
        port = self.url(name).rsplit(":", 1)[1]
        log = open(self.data_dir / "logs" / f"{name.replace('#', '-')}.log", "ab")  # noqa: SIM115
        command = [sys.executable, "-m", "uvicorn", "--factory", SERVICES[service], "--host", "127.0.0.1",
                   "--port", port, "--no-access-log", "--log-level", "warning"]
        if self.workers.get(service, 1) > 1:
            command += ["--workers", str(self.workers[service])]
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

    def service_pids(self, service: str) -> dict[str, list[int]]:
        """{instance name: its processes} of every running instance of a service."""
        return {name: self.pids(name) for name in self.instance_names(service) if name in self.processes}

    def wait_ready(self, timeout: float = 60, names: list[str] | None = None) -> None:
        deadline = time.monotonic() + timeout
        pending = set(names or self.processes)
        while pending and time.monotonic() < deadline:
            for name in list(pending):
                process = self.processes[name]
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with code {process.returncode}; see "
                                       f"{self.data_dir / 'logs' / (name.replace('#', '-') + '.log')}")
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
