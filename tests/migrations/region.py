"""A region's databases as plain data, the same on SQLite and PostgreSQL: every row of every table of a service.

`python -m tests.migrations.capture` wrote `data/region-0001.json` with these functions at the baseline
revisions; the upgrade tests load it into empty databases at that revision and migrate them to head.
"""

from __future__ import annotations

import base64
import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, MetaData, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import migrations
from shared.region import DEMO_USERS

DATA = Path(__file__).resolve().parent / "data"
REGION = DATA / "region-0001.json"
RELEASE_BEFORE_MIGRATIONS = DATA / "release-before-migrations.json"


def encode(value: Any) -> Any:
    """A column value as JSON; what JSON has no type for is tagged (ISO 8601 times and dates, base64 bytes)."""
    if isinstance(value, datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, date):
        return {"date": value.isoformat()}
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode()}
    return value


def decode(value: Any) -> Any:
    if isinstance(value, dict):
        (kind, text_value), = value.items()
        return {"datetime": datetime.fromisoformat, "date": date.fromisoformat,
                "base64": base64.b64decode}[kind](text_value)
    return value


async def dump(engine: AsyncEngine, service: str) -> dict[str, dict[str, Any]]:
    """Every table of the service (its models' tables and the bus tables): columns and rows in key order."""
    metadata = migrations.service_metadata(service)
    found: dict[str, dict[str, Any]] = {}
    async with engine.connect() as conn:
        for name, table in sorted(metadata.tables.items()):
            rows = (await conn.execute(select(table).order_by(*table.primary_key.columns))).all()
            found[name] = {"columns": [c.name for c in table.columns],
                           "rows": [[encode(value) for value in row] for row in rows]}
    return found


async def load(engine: AsyncEngine, tables: dict[str, dict[str, Any]]) -> None:
    """Insert dumped rows into a database whose schema has those tables and columns (reflected, not the models:
    the schema is that of the revision the dump was taken at, whatever the models say today)."""
    async with engine.begin() as conn:
        await conn.run_sync(_insert, tables)


def _insert(conn: Connection, tables: dict[str, dict[str, Any]]) -> None:
    metadata = MetaData()
    metadata.reflect(conn, only=list(tables))
    for name, content in tables.items():
        if content["rows"]:
            conn.execute(metadata.tables[name].insert(),
                         [dict(zip(content["columns"], map(decode, row), strict=True)) for row in content["rows"]])
    if conn.dialect.name == "postgresql":
        # Rows came with their keys; the sequences behind serial keys go on after the highest, as a restore does.
        for name, table in metadata.tables.items():
            for column in table.primary_key.columns:
                sequence = conn.execute(text("SELECT pg_get_serial_sequence(:t, :c)"),
                                        {"t": name, "c": column.name}).scalar()
                highest = conn.execute(select(func.max(column))).scalar()
                if sequence and highest is not None:
                    conn.execute(text("SELECT setval(:s, :v)"), {"s": sequence, "v": highest})


async def counts(engine: AsyncEngine) -> dict[str, int]:
    """Rows per table of a database (the Alembic version table left out)."""
    def count(conn: Connection) -> dict[str, int]:
        metadata = MetaData()
        metadata.reflect(conn)
        return {name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
                for name, table in sorted(metadata.tables.items()) if name != migrations.VERSION_TABLE}

    async with engine.connect() as conn:
        return await conn.run_sync(count)


def region() -> dict[str, Any]:
    return dict(json.loads(REGION.read_text()))


def dumped_counts(service: str) -> dict[str, int]:
    """Rows per table of the captured region, with the tables a later revision added (empty after the upgrade)."""
    dumped = region()["databases"][service]
    return {name: len(dumped[name]["rows"]) if name in dumped else 0
            for name in sorted({*dumped, *migrations.service_metadata(service).tables})}


def counts_at_head(service: str) -> dict[str, int]:
    """Rows per table of the captured region once migrated to head: the dump's, and what later revisions made.

    Triage's 0002 links the region's one referral to what came in with it (its Patient and Coverage; the two
    Organizations are directory data, not the patient's) and starts the grant tables empty.
    """
    added = {"triage": {"referral_entry": 2, "task_ownership": 0, "treatment_grant": 0}}.get(service, {})
    return {**dumped_counts(service), **added}


def counts_when_served(service: str) -> dict[str, int]:
    """Rows per table of the migrated region once its services ran on a new broker, before anything was asked of
    them: coordination publishes its outbox again, and triage, which consumes `task-changed` since 0002, keeps
    each version of the region's one Task (one processed event each) and the one grant of its one owner; triage
    seeds the demo console users this release brings that the region did not have yet."""
    counts = counts_at_head(service)
    if service == "triage":
        accounts = region()["databases"]["triage"]["console_account"]
        known = {dict(zip(accounts["columns"], row, strict=True))["username"] for row in accounts["rows"]}
        counts["console_account"] += len({u.username for u in DEMO_USERS} - known)
        outbox = region()["databases"]["coordination"]["outbox"]
        topic = outbox["columns"].index("topic")
        versions = sum(1 for row in outbox["rows"] if row[topic] == "regiozorg.coordination.task-changed.v1")
        counts.update(processed_event=counts["processed_event"] + versions, task_ownership=versions,
                      treatment_grant=1)
    if service == "billing_shadow":
        # Billing's evaluation consumer (since its 0003) reads the region's triage and coordination events once
        # they are published again: one processed event each, one read-model row per acute request.
        topics = {"regiozorg.triage.triage-completed.v1", "regiozorg.coordination.contact-delivered.v1",
                  "regiozorg.coordination.acute-request-closed.v1"}
        requests: set[str] = set()
        for producer in ("triage", "coordination"):
            outbox = region()["databases"][producer]["outbox"]
            topic, subject = outbox["columns"].index("topic"), outbox["columns"].index("payload")
            for row in outbox["rows"]:
                if row[topic] in topics:
                    counts["processed_event"] += 1
                    value = json.loads(decode(row[subject]))
                    requests.add(value["id"] if row[topic] != "regiozorg.coordination.contact-delivered.v1"
                                 else value["basedOn"][0]["identifier"]["value"])
        counts["evaluation_request"] = len(requests)
    return counts
