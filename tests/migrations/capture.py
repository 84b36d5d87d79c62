"""Capture the region the upgrade tests start from:  python -m tests.migrations.capture

Starts the real stack on SQLite (fresh, free ports) and fills it through the public APIs: a partner's
referral, triaged by the front door, its Task worked by the owning partner to completed with a home
visit, the prestation line in the ledger and the insurer's feed, audit events all along. It keeps what
the APIs serve, stops the stack and writes every table of the three databases to data/region-0001.json.
It also writes data/release-before-migrations.json: the statements the release before migrations ran
to make each database (its `create_all` and the audit log's triggers), per dialect.

Both files describe the baseline (revision 0001) and are committed: run this at the commit that made
them. Later models differ from the baseline, which is why the tests read these files instead.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import CreateIndex, CreateTable

from infra.client import ApiClient, service_request_of
from infra.polling import wait_until
from infra.referrals import referral_bundle
from infra.stack import Stack
from shared import migrations
from shared.db import make_engine
from tests.conftest import free_port
from tests.migrations import region

# What the release before migrations ran after create_all (shared/audit.py: make_append_only).
AUDIT_TRIGGERS_BEFORE_MIGRATIONS = {
    "sqlite": [
        "CREATE TRIGGER IF NOT EXISTS audit_event_no_update BEFORE UPDATE ON audit_event "
        "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
        "CREATE TRIGGER IF NOT EXISTS audit_event_no_delete BEFORE DELETE ON audit_event "
        "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger AS $$ "
        "BEGIN RAISE EXCEPTION 'the audit log is append-only'; END; $$ LANGUAGE plpgsql",
        "DROP TRIGGER IF EXISTS audit_event_append_only ON audit_event",
        "CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_event "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only()",
    ],
}
DIALECTS = {"sqlite": sqlite.dialect(), "postgresql": postgresql.dialect()}
CONTACT_START = "2026-11-22T21:10:00+01:00"


def get(client: ApiClient, url: str, **params: str) -> Any:
    response = client.http.get(url, params=params, headers=client.headers())
    response.raise_for_status()
    return response.json()


def fill(stack: Stack) -> dict[str, Any]:
    """Drive one acute request from referral to feed; returns what the APIs serve about it afterwards."""
    ehr, ops, wijk, insurer = (stack.client(c) for c in ("ehr-delinde", "ops", "ehr-wijk-oost", "insurer-9001"))
    posted = ehr.post_referral(referral_bundle(bsn="999990007", given="Anna", family="de Boer",
                                               birth_date="1942-03-08", gender="female"))
    posted.raise_for_status()
    service_request = service_request_of(posted.json())
    request_id = ops.request_for(service_request)["id"]
    ops.triage_request(request_id, urgency="U3", disposition="home-visit", organization="URA 90000020",
                       note="Visite wijkverpleging").raise_for_status()
    task = wijk.wait_for_task(request_id)
    wijk.work_task(task["id"], contact="HH", start=CONTACT_START).raise_for_status()

    def line() -> dict[str, Any] | None:
        items = get(ops, f"{stack.url('billing_shadow')}/api/v1/prestations")["items"]
        return next((i for i in items if i["acute_request"] == request_id), None)

    period = wait_until(line, "the prestation line")["period"]
    wait_until(lambda: get(insurer, f"{stack.url('billing_shadow')}/api/v1/feeds/9001", period=period)["lines"],
             "the feed revision")
    wait_until(lambda: ops.request_for(service_request)["status"] == "closed", "the acute request closed in triage")
    return {
        "acute_request": request_id,
        "service_request": get(ops, f"{stack.url('triage')}/fhir/{service_request}"),
        "task": get(ops, f"{stack.url('coordination')}/fhir/Task/{task['id']}"),
        "prestations": get(ops, f"{stack.url('billing_shadow')}/api/v1/prestations", period=period),
        "feed": get(insurer, f"{stack.url('billing_shadow')}/api/v1/feeds/9001", period=period),
    }


async def dump_all(data_dir: Path) -> dict[str, Any]:
    databases = {}
    for service in migrations.SERVICES:
        engine = make_engine(f"sqlite:///{data_dir / f'{service}.db'}")
        try:
            async with engine.connect() as conn:
                found = await conn.run_sync(migrations.schema_snapshot)
                baseline = await conn.run_sync(migrations.baseline_snapshot, service)
            # Later revisions of this code may add triggers; the rows must fit the baseline's tables exactly.
            assert found["tables"] == baseline["tables"], f"{service}'s tables are not those of the baseline"
            databases[service] = await region.dump(engine, service)
        finally:
            await engine.dispose()
    return databases


def release_before_migrations() -> dict[str, dict[str, list[str]]]:
    """Per service and dialect, the DDL `SQLModel.metadata.create_all` ran for the service's tables, then the
    audit log's triggers: what the last release before migrations made."""
    made: dict[str, dict[str, list[str]]] = {}
    for service in migrations.SERVICES:
        tables = migrations.service_metadata(service).sorted_tables
        made[service] = {
            name: [" ".join(str(CreateTable(t).compile(dialect=dialect)).split()) for t in tables]
            + [str(CreateIndex(i).compile(dialect=dialect)) for t in tables
               for i in sorted(t.indexes, key=lambda index: str(index.name))]
            + AUDIT_TRIGGERS_BEFORE_MIGRATIONS[name]
            for name, dialect in DIALECTS.items()}
    return made


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="regiozorg-capture-") as tmp:
        data_dir = Path(tmp)
        stack = Stack(data_dir=data_dir, broker_port=free_port(),
                      ports={"triage": free_port(), "coordination": free_port(), "billing_shadow": free_port()},
                      env={"BILLING_FEED_DEBOUNCE_SECONDS": "0.3"})
        try:
            stack.start()
            served = fill(stack)
        except (httpx.HTTPError, TimeoutError):
            for log in sorted((data_dir / "logs").glob("*.log")):
                print(f"--- {log.name}\n{log.read_text()[-5000:]}")
            raise
        finally:
            stack.stop()
        databases = asyncio.run(dump_all(data_dir))
    region.DATA.mkdir(exist_ok=True)
    revisions = {service: migrations.BASELINE for service in migrations.SERVICES}
    region.REGION.write_text(json.dumps({"revisions": revisions, "served": served, "databases": databases},
                                        indent=1, ensure_ascii=False) + "\n")
    region.RELEASE_BEFORE_MIGRATIONS.write_text(json.dumps(release_before_migrations(), indent=1) + "\n")
    rows = sum(len(t["rows"]) for tables in databases.values() for t in tables.values())
    print(f"wrote {region.REGION.name} ({rows} rows) and {region.RELEASE_BEFORE_MIGRATIONS.name} in {region.DATA}")


if __name__ == "__main__":
    main()
