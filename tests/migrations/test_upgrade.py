"""Upgrades with the real processes: a region's data at the baseline migrated to head and served unchanged on
SQLite and PostgreSQL; workers starting together on an empty database migrate it once; production refuses a
database that a newer release migrated."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from infra.broker import EmbeddedBroker
from infra.stack import ROOT, Stack
from shared import migrations
from shared.bus.outbox import SENT, OutboxRecord
from shared.db import make_engine
from tests.conftest import PostgresDatabases, free_port
from tests.migrations import region

pytestmark = pytest.mark.e2e


async def at_baseline_with(urls: dict[str, str], databases: dict[str, Any]) -> None:
    """Empty databases brought to the baseline revision, then filled with the captured region's rows."""
    for service, url in urls.items():
        engine = make_engine(url)
        try:
            assert (await migrations.migrate(engine, service, revision=migrations.BASELINE)).after == "0001"
            await region.load(engine, databases[service])
        finally:
            await engine.dispose()


async def database_state(urls: dict[str, str]) -> dict[str, tuple[str | None, dict[str, int], int]]:
    """Per service: its revision, rows per table and outbox events not (re)published yet."""
    found = {}
    for service, url in urls.items():
        engine = make_engine(url)
        try:
            async with engine.connect() as conn:
                unsent = (await conn.execute(select(func.count()).select_from(OutboxRecord)
                                             .where(OutboxRecord.status != SENT))).scalar_one()
            found[service] = (await migrations.current(engine, service), await region.counts(engine), unsent)
        finally:
            await engine.dispose()
    return found


def settled_state(urls: dict[str, str], timeout: float = 30, consumed: Callable[[dict[str, dict[str, int]]], bool]
                  = lambda rows: True) -> dict[str, tuple[str | None, dict[str, int], int]]:
    """The databases once every service has published its outbox to this run's broker again (a new broker
    incarnation makes them re-publish, and consumers skip what they processed) and `consumed` holds of the rows
    per table of each service (consumers that had not processed those events yet are done with them)."""
    deadline = time.monotonic() + timeout
    while True:
        state = asyncio.run(database_state(urls))
        settled = all(unsent == 0 for _, _, unsent in state.values())
        if (settled and consumed({service: rows for service, (_, rows, _) in state.items()})) \
                or time.monotonic() > deadline:
            return state
        time.sleep(0.5)


def served(stack: Stack, service: str, path: str, client: str = "ops", **params: str) -> Any:
    api = stack.client(client)
    response = api.http.get(f"{stack.url(service)}{path}", params=params, headers=api.headers())
    assert response.status_code == 200, response.text
    return response.json()


def show_logs(stack: Stack) -> None:
    for log in sorted((stack.data_dir / "logs").glob("*.log")):
        print(f"--- {log.name}\n{log.read_text()[-8000:]}")


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_region_at_the_baseline_is_migrated_to_head_and_served_unchanged(
        database: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> None:
    captured = region.region()
    workdir = tmp_path_factory.mktemp(f"upgrade-{database}")
    if database == "sqlite":
        urls = {s: f"sqlite:///{workdir / f'{s}.db'}" for s in migrations.SERVICES}
    else:
        databases: PostgresDatabases = request.getfixturevalue("postgres")
        urls = {s: databases.new(f"upgrade_{s}") for s in migrations.SERVICES}
    asyncio.run(at_baseline_with(urls, captured["databases"]))
    if database == "postgresql":
        # The way docker-compose installs a release: one command per service before the services start.
        for service in migrations.SERVICES:
            done = subprocess.run([sys.executable, "-m", "infra.ops", "migrate", service], cwd=ROOT,
                                  env={**os.environ, f"{service.upper()}_DATABASE_URL": urls[service]},
                                  capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
            head = migrations.head(service)
            assert done.stdout.strip() == (f"schema of {service} is at {head}, nothing to migrate" if head == "0001"
                                           else f"schema of {service} migrated from 0001 to {head}")
    # Else the services migrate at start, as under `make run`.
    stack = Stack(data_dir=workdir / "stack", broker_port=free_port(), database_urls=urls,
                  ports={"triage": free_port(), "coordination": free_port(), "billing_shadow": free_port()})
    try:
        stack.start()
        # Triage consumes task-changed since its 0002: it catches up with the region's Task once published again.
        # Billing's evaluation consumes the region's triage and coordination events since its 0003.
        state = settled_state(urls, consumed=lambda rows: all(rows[s] == region.counts_when_served(s)
                                                              for s in ("triage", "billing_shadow")))
        for service in migrations.SERVICES:
            revision, rows, unsent = state[service]
            assert revision == migrations.head(service) and unsent == 0
            assert rows == region.counts_when_served(service), f"{service}: rows per table changed"

        what = captured["served"]
        assert served(stack, "triage", f"/fhir/{what['service_request']['resourceType']}/"
                                        f"{what['service_request']['id']}") == what["service_request"]
        task = served(stack, "coordination", f"/fhir/Task/{what['task']['id']}")
        assert task == what["task"] and task["status"] == "completed"
        assert task["output"][0]["valueCoding"]["code"] == "HH"
        period = what["prestations"]["items"][0]["period"]
        assert served(stack, "billing_shadow", "/api/v1/prestations", period=period) == what["prestations"]
        assert served(stack, "billing_shadow", "/api/v1/feeds/9001", "insurer-9001", period=period) == what["feed"]
        assert what["feed"]["lines"][0]["code"] == "VIS"
        for service in migrations.SERVICES:
            events = {e["resource"]["id"]: e["resource"]
                      for e in served(stack, service, "/fhir/AuditEvent", _count="1000")["entry"]}
            audit = captured["databases"][service]["audit_event"]
            for row in audit["rows"]:
                record = dict(zip(audit["columns"], row, strict=True))
                assert events.get(record["id"]) == json.loads(record["content"]), f"{service} audit {record['id']}"

        # Reading is audited; nothing else may have changed while the APIs were read.
        after = settled_state(urls)
        for service in migrations.SERVICES:
            rows = after[service][1]
            assert rows.pop("audit_event") > state[service][1]["audit_event"]
            assert rows == {t: n for t, n in region.counts_when_served(service).items() if t != "audit_event"}
    except BaseException:
        show_logs(stack)
        raise
    finally:
        stack.stop()


def test_two_workers_starting_together_on_an_empty_postgresql_database_migrate_it_once(
        postgres: PostgresDatabases, tmp_path_factory: pytest.TempPathFactory) -> None:
    urls = {"coordination": postgres.new("together_coordination")}
    stack = Stack(data_dir=tmp_path_factory.mktemp("together"), broker_port=free_port(), database_urls=urls,
                  ports={"triage": free_port(), "coordination": free_port(), "billing_shadow": free_port()},
                  workers={"coordination": 2})
    (stack.data_dir / "logs").mkdir(parents=True)
    stack.broker = EmbeddedBroker(stack.broker_port, stack.data_dir / "logs" / "broker.log")
    try:
        # Only the service under test, with the broker it needs to be ready.
        stack.broker.start()
        stack.start_service("coordination")
        stack.wait_ready(60, ["coordination"])
        log = (stack.data_dir / "logs" / "coordination.log").read_text()
        lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
        messages = [line["message"] for line in lines]
        head = migrations.head("coordination")
        # Both workers went through the start-up (each logs what it found), one of them migrated, neither failed.
        assert messages.count(f"schema of coordination migrated from empty to {head}") == 1
        assert messages.count(f"schema of coordination is at {head}, nothing to migrate") == 1
        assert "startup failed" not in log and not [line for line in lines if line["level"] in ("ERROR", "CRITICAL")]

        async def versions() -> list[str]:
            engine = make_engine(urls["coordination"])
            try:
                async with engine.connect() as conn:
                    return list((await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars())
            finally:
                await engine.dispose()

        assert asyncio.run(versions()) == [head]
        assert httpx.get(f"{stack.url('coordination')}/readyz", timeout=5).status_code == 200
    except BaseException:
        show_logs(stack)
        raise
    finally:
        stack.stop()


def test_production_refuses_to_start_on_a_database_a_newer_release_migrated(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'billing_shadow.db'}"

    async def migrated_by_a_newer_release() -> None:
        engine = make_engine(url)
        try:
            await migrations.migrate(engine, "billing_shadow")
            async with engine.begin() as conn:
                await conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
        finally:
            await engine.dispose()

    asyncio.run(migrated_by_a_newer_release())
    env = {**os.environ, "REGIOZORG_ENV": "production", "REGIOZORG_PSEUDONYM_KEY": "a-production-secret-of-some-length",
           "REGIOZORG_DATA_DIR": str(tmp_path), "BILLING_SHADOW_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "uvicorn", "--factory", "services.billing_shadow.app:create_app",
                           "--host", "127.0.0.1", "--port", str(free_port())], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode != 0
    refusal = [json.loads(line) for line in done.stderr.splitlines()
               if line.startswith("{") and "refusing to start" in line]
    assert len(refusal) == 1 and refusal[0]["level"] == "CRITICAL"
    assert "revision 0099" in refusal[0]["message"] and f"newest is {migrations.head('billing_shadow')}" in \
        refusal[0]["message"]

    async def revision() -> str | None:
        engine = make_engine(url)
        try:
            return await migrations.current(engine, "billing_shadow")
        finally:
            await engine.dispose()

    assert asyncio.run(revision()) == "0099"
