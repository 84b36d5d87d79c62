"""Each service's migrations against its models and against the databases they meet, on SQLite and PostgreSQL.

The first test is the check that every change to a model comes with a revision: Alembic's autogenerate
comparison of a freshly migrated database with the models finds nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from infra import ops
from shared import migrations
from shared.db import make_engine
from tests.migrations import region

pytestmark = pytest.mark.integration

APPEND_ONLY = {"audit_event": "the audit log is append-only",
               "prestation_ledger": "the prestation ledger is append-only",
               "shadow_ledger": "the shadow ledger is append-only"}
BILLING_LEDGERS = ("prestation_ledger", "shadow_ledger")


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    made = make_engine(database_url)
    yield made
    await made.dispose()


async def snapshot(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as conn:
        return await conn.run_sync(migrations.schema_snapshot)


async def differences(engine: AsyncEngine, service: str) -> list[Any]:
    async with engine.connect() as conn:
        return await conn.run_sync(migrations.differences, service)


async def execute(engine: AsyncEngine, *statements: str) -> None:
    async with engine.begin() as conn:
        for statement in statements:
            await conn.execute(text(statement))


async def make_release_before_migrations(engine: AsyncEngine, service: str) -> None:
    """What the last release before migrations made of an empty database (create_all and triggers), as recorded."""
    statements = json.loads(region.RELEASE_BEFORE_MIGRATIONS.read_text())[service][engine.dialect.name]
    await execute(engine, *statements)


@pytest.mark.parametrize("service", migrations.SERVICES)
async def test_migrations_at_head_are_exactly_the_models_with_append_only_triggers(engine: AsyncEngine,
                                                                                   service: str) -> None:
    result = await migrations.migrate(engine, service)
    assert (result.before, result.after) == (None, migrations.head(service))
    assert await differences(engine, service) == []
    tables = {t["table"] for t in (await snapshot(engine))["triggers"].values()}
    # PostgreSQL: the outbox's commit notification wakes the relays (SQLite wakes them in-process).
    outbox = {"outbox"} if engine.dialect.name == "postgresql" else set()
    # PostgreSQL: a new notification or subscription wakes coordination's notification senders.
    if engine.dialect.name == "postgresql" and service == "coordination":
        outbox |= {"notification", "subscription"}
    assert tables == ({"audit_event", *BILLING_LEDGERS} if service == "billing_shadow" else {"audit_event"}) | outbox


async def test_the_comparison_sees_a_schema_that_differs_from_the_models(engine: AsyncEngine) -> None:
    await migrations.migrate(engine, "coordination")
    await execute(engine, "DROP INDEX ix_task_owner_status", "ALTER TABLE timeline_entry ADD COLUMN extra INTEGER")
    found = {(d[0], d[1].name if d[0] == "add_index" else d[3].name) for d in await differences(engine, "coordination")}
    assert found == {("add_index", "ix_task_owner_status"), ("remove_column", "extra")}


@pytest.mark.parametrize("service", migrations.SERVICES)
async def test_downgrade_one_step_then_upgrade_leaves_the_schema_identical(engine: AsyncEngine,
                                                                           service: str) -> None:
    await migrations.migrate(engine, service)
    at_head = await snapshot(engine)
    stepped = await migrations.downgrade(engine, service, "-1", allow_base=True)
    between = await snapshot(engine)
    assert stepped.after == (migrations.revisions(service)[-2] if len(migrations.revisions(service)) > 1 else None)
    # A revision naming the dialects it changes (`changes_dialects`) leaves the others' schema as it was.
    newest = ScriptDirectory.from_config(migrations.alembic_config(service)).get_revision(migrations.head(service))
    if engine.dialect.name in getattr(newest.module, "changes_dialects", (engine.dialect.name,)):
        assert between != at_head
    else:
        assert between == at_head
    await migrations.migrate(engine, service)
    assert await snapshot(engine) == at_head
    assert await differences(engine, service) == []


async def test_ledgers_and_audit_log_refuse_updates_and_deletes(engine: AsyncEngine) -> None:
    await migrations.migrate(engine, "billing_shadow")
    await region.load(engine, {name: content for name, content in region.region()["databases"]["billing_shadow"].items()
                               if name in APPEND_ONLY})
    for table, message in APPEND_ONLY.items():
        for statement in (f"UPDATE {table} SET acute_request_id = 'x'" if table != "audit_event"
                          else "UPDATE audit_event SET outcome = '8'", f"DELETE FROM {table}"):
            with pytest.raises(DBAPIError, match=message):
                await execute(engine, statement)
    assert (await region.counts(engine))["prestation_ledger"] == 1
    # Taking the revision back takes the ledgers' triggers away, and only those.
    await migrations.downgrade(engine, "billing_shadow", "0001")
    await execute(engine, "UPDATE shadow_ledger SET code = code")
    with pytest.raises(DBAPIError, match=APPEND_ONLY["audit_event"]):
        await execute(engine, "DELETE FROM audit_event")


@pytest.mark.parametrize("service", migrations.SERVICES)
async def test_database_of_the_release_before_migrations_is_stamped_and_migrated_with_its_rows(
        engine: AsyncEngine, service: str) -> None:
    await make_release_before_migrations(engine, service)
    if service == "billing_shadow":
        # A region that ran an older release got this column from the start-up's additive code: at the end,
        # with a default for the rows already there. Such a database is the baseline as well.
        await execute(engine, "ALTER TABLE request_fact DROP COLUMN changed_after_lock",
                      "ALTER TABLE request_fact ADD COLUMN changed_after_lock BOOLEAN NOT NULL DEFAULT FALSE")
    rows = region.region()["databases"][service]
    await region.load(engine, rows)

    result = await migrations.migrate(engine, service)

    assert result.stamped and (result.before, result.after) == (None, migrations.head(service))
    assert await region.counts(engine) == region.counts_at_head(service)
    assert await differences(engine, service) == []
    async with engine.connect() as conn:
        content = (await conn.execute(text("SELECT content FROM audit_event ORDER BY id"))).scalars().all()
    assert content == [row[-1] for row in sorted(rows["audit_event"]["rows"], key=lambda row: row[0])]


async def test_database_of_the_release_before_migrations_that_differs_is_refused_and_left_alone(
        engine: AsyncEngine) -> None:
    await make_release_before_migrations(engine, "triage")
    await execute(engine, "DROP INDEX ix_fhir_resource_type_patient")
    with pytest.raises(migrations.SchemaError, match="index|indexes") as refused:
        await migrations.migrate(engine, "triage")
    assert "fhir_resource" in str(refused.value) and migrations.BASELINE in str(refused.value)
    assert await migrations.current(engine, "triage") is None
    async with engine.connect() as conn:
        assert not await conn.run_sync(lambda sync: inspect(sync).has_table(migrations.VERSION_TABLE))


async def test_database_migrated_by_a_newer_release_is_refused_outside_demo_mode_and_left_alone_in_it(
        engine: AsyncEngine, caplog: pytest.LogCaptureFixture) -> None:
    await migrations.migrate(engine, "billing_shadow", revision=migrations.BASELINE)
    await execute(engine, "UPDATE alembic_version SET version_num = '0099'")

    with pytest.raises(migrations.SchemaAhead) as refused:
        await migrations.migrate(engine, "billing_shadow")
    assert "0099" in str(refused.value) and migrations.head("billing_shadow") in str(refused.value)

    with caplog.at_level(logging.WARNING, logger="shared.migrations"):
        result = await migrations.migrate(engine, "billing_shadow", ahead_ok=True)
    assert result.ahead and result.after == "0099"
    assert any("0099" in r.getMessage() and "not migrating" in r.getMessage() for r in caplog.records)
    assert await migrations.current(engine, "billing_shadow") == "0099"
    assert not {"prestation_ledger", "shadow_ledger"} & {t["table"] for t in (await snapshot(engine))["triggers"]
                                                        .values()}


def test_operator_command_migrates_shows_and_takes_back_but_never_before_the_baseline(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("BILLING_SHADOW_DATABASE_URL", f"sqlite:///{tmp_path / 'billing.db'}")
    head = migrations.head("billing_shadow")

    def run(*args: str) -> tuple[int, str, str]:
        status = ops.main(["migrate", "billing_shadow", *args])
        out, err = capsys.readouterr()
        return status, out, err

    assert run("--revision", "0001")[:2] == (0, "schema of billing_shadow migrated from empty to 0001\n")
    status, out, _ = run("--current")
    assert status == 0 and f"database at 0001, this release's head {head} (behind" in out
    assert run()[:2] == (0, f"schema of billing_shadow migrated from 0001 to {head}\n")
    assert run()[:2] == (0, f"schema of billing_shadow is at {head}, nothing to migrate\n")
    assert run("--downgrade", "0001")[:2] == (0, f"schema of billing_shadow migrated from {head} to 0001\n")
    status, _, err = run("--downgrade", "-1")
    assert status == 1 and "before the baseline" in err
    status, _, err = run("--downgrade", "0042")
    assert status == 1 and "no revision 0042" in err
    assert run("--current")[1].endswith("database at 0001, this release's head "
                                        f"{head} (behind: `migrate` brings it to head)\n")
