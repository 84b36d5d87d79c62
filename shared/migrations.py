"""Schema migrations with Alembic: one migrations folder per service (each owns its database), run at start.

Each service has `services/<service>/migrations/` with `env.py` (one call to `run_environment`),
`script.py.mako` and `versions/`; revision `0001` is the schema of the last release before
migrations, on SQLite and PostgreSQL alike. There is no alembic.ini: the Alembic configuration is
built here, and the connection is handed to `env.py` in `config.attributes` (Alembic's connection
sharing), so the async engines run Alembic through `run_sync`. Operators use
`python -m infra.ops migrate`, developers `python -m infra.ops revision`.
"""

from __future__ import annotations

import importlib
import json
import logging
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, MetaData, Table, create_engine, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

from shared.audit import AuditRecord
from shared.bus.consumer import ProcessedEvent
from shared.bus.outbox import OutboxRecord

log = logging.getLogger(__name__)

SERVICES = ("triage", "coordination", "billing_shadow")
BASELINE = "0001"
VERSION_TABLE = "alembic_version"
SCHEMA_LOCK_KEY = 0x52_5A_0001  # any constant shared by the processes of one database
ROOT = Path(__file__).resolve().parent.parent

# Tables every service has besides its own: the bus's outbox and tracking, and the audit log.
BUS_TABLES: tuple[Table, ...] = (OutboxRecord.__table__, ProcessedEvent.__table__,  # type: ignore[attr-defined]
                                 AuditRecord.__table__)  # type: ignore[attr-defined]


class SchemaError(RuntimeError):
    """The database's schema is not one this release can migrate; the message says what to do."""


class SchemaAhead(SchemaError):
    """The database was migrated by a newer release: its revision is unknown to this code."""


@dataclass(frozen=True)
class Migration:
    """What a migration run found and did. Revisions are Alembic revision ids; None is an empty history."""

    service: str
    before: str | None
    after: str | None
    head: str
    stamped: bool = False  # a database of the release before migrations was recognised as the baseline
    ahead: bool = False  # left alone: the database is at a revision this code does not know (demo mode only)

    @property
    def changed(self) -> bool:
        return self.before != self.after


def service_metadata(service: str) -> MetaData:
    """The service's own MetaData: the bus tables and `services/<service>/models.py: TABLES`.

    SQLModel keeps every imported service's tables in one global MetaData; Alembic must compare a
    database with its own service's tables only, so they are copied into a MetaData of their own.
    """
    tables = importlib.import_module(f"services.{_known_service(service)}.models").TABLES
    metadata = MetaData()
    for table in (*BUS_TABLES, *tables):
        table.to_metadata(metadata)
    return metadata


def script_location(service: str) -> Path:
    return ROOT / "services" / _known_service(service) / "migrations"


def alembic_config(service: str, connection: Connection | None = None) -> Config:
    """A programmatic Alembic configuration of one service, using `connection` if given."""
    config = Config()
    config.set_main_option("script_location", str(script_location(service)))
    config.attributes["connection"] = connection
    return config


def head(service: str) -> str:
    """The newest revision this code knows for the service."""
    found = ScriptDirectory.from_config(alembic_config(service)).get_current_head()
    assert found is not None, f"{service} has no revisions"
    return found


def run_environment(service: str) -> None:
    """The body of every service's `env.py`: run the migrations on the connection handed in."""
    from alembic import context

    connection = context.config.attributes.get("connection")
    if connection is None:
        raise SchemaError(f"the migrations of {service} run through `python -m infra.ops migrate {service}` or "
                          "at the service's start, not through the alembic command")
    context.configure(connection=connection, target_metadata=service_metadata(service),
                      version_table=VERSION_TABLE, compare_type=True, render_item=_render_item,
                      # SQLite alters a table by copying it: later revisions use batch operations.
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """SQLModel's column types in the plain SQLAlchemy types they are made of, so revisions import no SQLModel:
    AutoString is a String, UTCDateTime a DateTime with time zone (it converts values to UTC in Python)."""
    if type_ == "type" and isinstance(obj, AutoString):
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


# Used by revisions ------------------------------------------------------------------------------------------------
# Revisions call these, so what they emit must never change (a changed trigger is a new function and revision).

def create_append_only(table: str, message: str) -> None:
    """Triggers that refuse every UPDATE and DELETE of `table` (and TRUNCATE on PostgreSQL) with `message`."""
    from alembic import op

    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger AS $$ "
                   f"BEGIN RAISE EXCEPTION '{message}'; END; $$ LANGUAGE plpgsql")
        op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {table} "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION {table}_append_only()")
        return
    for event in ("update", "delete"):
        op.execute(f"CREATE TRIGGER {table}_no_{event} BEFORE {event.upper()} ON {table} "
                   f"BEGIN SELECT RAISE(ABORT, '{message}'); END")


def drop_append_only(table: str) -> None:
    """Remove what `create_append_only` made."""
    from alembic import op

    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
        op.execute(f"DROP FUNCTION {table}_append_only()")
        return
    for event in ("update", "delete"):
        op.execute(f"DROP TRIGGER {table}_no_{event}")


def create_insert_notify(function: str, channel: str, triggers: dict[str, str], *, each: str = "STATEMENT") -> None:
    """PostgreSQL: a trigger function `function`() that NOTIFYs `channel` (empty payload), fired after INSERT by
    the triggers named in `triggers` ({trigger name: table}), so workers LISTENing in any process wake when the
    rows become visible. `each` is STATEMENT (one NOTIFY per statement, even one inserting nothing) or ROW (only
    when a row is inserted; PostgreSQL delivers identical notifications of one transaction once). SQLite:
    nothing (workers are woken in-process)."""
    from alembic import op

    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger AS $$ "
               f"BEGIN PERFORM pg_notify('{channel}', ''); RETURN NULL; END; $$ LANGUAGE plpgsql")
    for trigger, table in triggers.items():
        op.execute(f"CREATE TRIGGER {trigger} AFTER INSERT ON {table} "
                   f"FOR EACH {each} EXECUTE FUNCTION {function}()")


def drop_insert_notify(function: str, triggers: dict[str, str]) -> None:
    """Remove what `create_insert_notify` made."""
    from alembic import op

    if op.get_bind().dialect.name != "postgresql":
        return
    for trigger, table in triggers.items():
        op.execute(f"DROP TRIGGER {trigger} ON {table}")
    op.execute(f"DROP FUNCTION {function}()")


def create_outbox_notify(channel: str) -> None:
    """PostgreSQL: a trigger that NOTIFYs `channel` in every transaction that inserts outbox rows, so relays
    LISTENing in any process wake when the rows become visible. SQLite: nothing (the relay is woken in-process)."""
    create_insert_notify("outbox_notify", channel, {"outbox_notify": "outbox"})


def drop_outbox_notify() -> None:
    """Remove what `create_outbox_notify` made."""
    drop_insert_notify("outbox_notify", {"outbox_notify": "outbox"})


# Running migrations -------------------------------------------------------------------------------------------

async def migrate(engine: AsyncEngine, service: str, *, revision: str = "head", ahead_ok: bool = False) -> Migration:
    """Bring the service's database to `revision` (default: head) in one transaction, one process at a time.

    A database of the release before migrations (the service's tables, no Alembic history) is compared
    with the baseline and stamped as `0001` first; one that differs is refused (SchemaError). A database
    at a revision this code does not know (migrated by a newer release) is refused (SchemaAhead), or,
    with `ahead_ok` (demo mode), left alone with a warning.
    """
    async with engine.connect() as conn:
        result = await conn.run_sync(_migrate, service, revision, ahead_ok)
        await conn.commit()
    return result


async def downgrade(engine: AsyncEngine, service: str, revision: str, *, allow_base: bool = False) -> Migration:
    """Take the service's database back to `revision` (a revision id, or `-N` for N steps), in one transaction.

    Going back before the baseline (`base`) drops every table with its data: refused (SchemaError) unless
    `allow_base`. A revision this code does not know is refused as well.
    """
    async with engine.connect() as conn:
        result = await conn.run_sync(_downgrade, service, revision, allow_base)
        await conn.commit()
    return result


async def current(engine: AsyncEngine, service: str) -> str | None:
    """The database's revision, None if it has no migration history."""
    async with engine.connect() as conn:
        return await conn.run_sync(_current)


def _lock(conn: Connection) -> None:
    # Worker processes and the operator command may migrate at once: one at a time, the next finds the work
    # done. PostgreSQL: an advisory lock held until the transaction ends. SQLite: the connection's
    # transaction already starts with BEGIN IMMEDIATE, which takes the write lock.
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
    else:
        conn.execute(text("SELECT 1"))


def _current(conn: Connection) -> str | None:
    heads = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_heads()
    if len(heads) > 1:
        raise SchemaError(f"the database has several migration heads ({', '.join(heads)}); merge them first")
    return heads[0] if heads else None


def _migrate(conn: Connection, service: str, revision: str, ahead_ok: bool) -> Migration:
    _lock(conn)
    config = alembic_config(service, conn)
    script = ScriptDirectory.from_config(config)
    newest = script.get_current_head() or ""
    before = _current(conn)
    stamped = False
    if before is None and _owned_tables(conn, service):
        _require_baseline(conn, service)
        command.stamp(config, BASELINE)
        stamped = True
    elif before is not None and not _known(script, before):
        message = (f"the database of {service} is at revision {before}, which this release does not know (its "
                   f"newest is {newest}): a newer release has migrated it. Run that release, or take the database "
                   f"back with it first (python -m infra.ops migrate {service} --downgrade {newest})")
        if not ahead_ok:
            raise SchemaAhead(message)
        log.warning("%s; not migrating (demo mode)", message)
        return Migration(service, before, before, newest, ahead=True)
    try:
        command.upgrade(config, revision)
    except CommandError as exc:
        raise SchemaError(f"cannot migrate {service} to {revision}: {exc}") from exc
    return Migration(service, before, _current(conn), newest, stamped=stamped)


def _downgrade(conn: Connection, service: str, revision: str, allow_base: bool) -> Migration:
    _lock(conn)
    config = alembic_config(service, conn)
    script = ScriptDirectory.from_config(config)
    before = _current(conn)
    if before is not None and not _known(script, before):
        raise SchemaAhead(f"the database of {service} is at revision {before}, which this release does not know; "
                          "take it back with the release that made it")
    target = _target(script, before, revision)
    if target is None and not allow_base:
        raise SchemaError(f"taking {service} back to {revision} would go before the baseline ({BASELINE}) and drop "
                          "every table with its data; the oldest revision to go back to is the baseline")
    try:
        command.downgrade(config, target or "base")
    except CommandError as exc:
        raise SchemaError(f"cannot take {service} back to {revision}: {exc}") from exc
    return Migration(service, before, _current(conn), script.get_current_head() or "")


def _target(script: ScriptDirectory, current: str | None, revision: str) -> str | None:
    """The revision id `revision` names from `current` (`-N`: N steps back), None for before the baseline."""
    if revision == "base":
        return None
    if revision.startswith("-") and revision[1:].isdigit():
        target: str | None = current
        for _ in range(int(revision[1:])):
            if target is None:
                break
            down = script.get_revision(target).down_revision  # type: ignore[union-attr]
            if not (down is None or isinstance(down, str)):
                raise SchemaError(f"{target} merges several revisions; name the revision to go back to")
            target = down
        return target
    if not _known(script, revision):
        raise SchemaError(f"no revision {revision}; known: {', '.join(_revisions(script))}")
    return revision


def _known(script: ScriptDirectory, revision: str) -> bool:
    try:
        return script.get_revision(revision) is not None
    except CommandError:
        return False


def _owned_tables(conn: Connection, service: str) -> set[str]:
    return set(inspect(conn).get_table_names()) & set(service_metadata(service).tables)


def _require_baseline(conn: Connection, service: str) -> None:
    """A database with the service's tables and no history must be exactly the baseline to be stamped."""
    found = _comparable(schema_snapshot(conn))
    expected = _comparable(baseline_snapshot(conn, service))
    differences = snapshot_differences(expected, found)
    if differences:
        raise SchemaError(
            f"the database of {service} has tables but no migration history, and its schema is not that of the "
            f"release before migrations (revision {BASELINE}): " + "; ".join(differences[:10])
            + (f"; and {len(differences) - 10} more" if len(differences) > 10 else "")
            + ". Bring it to that schema first (an older release completes its own schema when started once; "
              "changes made by hand must be undone), then start this release again.")


def baseline_snapshot(conn: Connection, service: str) -> dict[str, Any]:
    """The schema of revision 0001 as this database's dialect makes it, built where nothing is kept.

    SQLite: a database in memory. PostgreSQL: a scratch schema inside a savepoint that is rolled back
    (PostgreSQL's DDL is transactional), so the caller's database is untouched.
    """
    if conn.dialect.name == "sqlite":
        scratch_engine = create_engine("sqlite://")
        try:
            with scratch_engine.connect() as scratch:
                command.upgrade(alembic_config(service, scratch), BASELINE)
                return schema_snapshot(scratch)
        finally:
            scratch_engine.dispose()
    schema = f"rz_baseline_{uuid.uuid4().hex[:12]}"
    savepoint = conn.begin_nested()
    try:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        conn.exec_driver_sql(f'SET LOCAL search_path TO "{schema}"')
        command.upgrade(alembic_config(service, conn), BASELINE)
        return schema_snapshot(conn, schema=schema)
    finally:
        savepoint.rollback()


# Comparing schemas -------------------------------------------------------------------------------------------

def differences(conn: Connection, service: str) -> list[Any]:
    """Alembic's autogenerate comparison of the database with the service's models: empty when they agree."""
    context = MigrationContext.configure(conn, opts={"compare_type": True, "version_table": VERSION_TABLE})
    return list(compare_metadata(context, service_metadata(service)))


def schema_snapshot(conn: Connection, *, schema: str | None = None) -> dict[str, Any]:
    """Everything that makes up a schema, as plain data: per table its columns (type, nullability, default),
    primary key, indexes, unique constraints and foreign keys; and the triggers with their definitions
    (on PostgreSQL with the source of their function). Two snapshots are equal when the schemas are."""
    inspector = inspect(conn)
    tables: dict[str, Any] = {}
    for name in sorted(inspector.get_table_names(schema=schema)):
        if name == VERSION_TABLE:
            continue
        tables[name] = {
            "columns": {c["name"]: {"type": c["type"].compile(dialect=conn.dialect), "nullable": c["nullable"],
                                    "default": c.get("default")}
                        for c in inspector.get_columns(name, schema=schema)},
            "primary_key": inspector.get_pk_constraint(name, schema=schema)["constrained_columns"],
            "indexes": sorted([i["name"], i["column_names"], bool(i["unique"])]
                              for i in inspector.get_indexes(name, schema=schema)),
            "unique": sorted([u["name"] or "", u["column_names"]]
                             for u in inspector.get_unique_constraints(name, schema=schema)),
            "foreign_keys": sorted([f["name"] or "", f["constrained_columns"], f["referred_table"],
                                    f["referred_columns"]] for f in inspector.get_foreign_keys(name, schema=schema)),
        }
    return {"tables": tables, "triggers": _triggers(conn, schema)}


def _triggers(conn: Connection, schema: str | None) -> dict[str, dict[str, str]]:
    if conn.dialect.name == "postgresql":
        rows = conn.execute(text(
            "SELECT t.tgname, c.relname, n.nspname, pg_get_triggerdef(t.oid), p.prosrc FROM pg_trigger t "
            "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_proc p ON p.oid = t.tgfoid "
            "WHERE NOT t.tgisinternal AND n.nspname = coalesce(:schema, current_schema())"), {"schema": schema})
        # The definition names the table with its schema; the schema is not part of what is compared.
        return {name: {"table": table, "definition": _words(definition.replace(f" ON {namespace}.", " ON ")),
                       "function": _words(source)}
                for name, table, namespace, definition, source in rows}
    rows = conn.execute(text("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'"))
    return {name: {"table": table, "definition": _words(sql)} for name, table, sql in rows}


def _words(sql: str) -> str:
    return " ".join(sql.split())


def _comparable(snapshot: dict[str, Any]) -> dict[str, Any]:
    """A snapshot without column defaults: the release before migrations added columns with a DEFAULT
    for the rows already there, which the baseline does not have; the code always fills them itself."""
    return {"tables": {name: {**table, "columns": {c: {k: v for k, v in column.items() if k != "default"}
                                                   for c, column in table["columns"].items()}}
                       for name, table in snapshot["tables"].items()},
            "triggers": snapshot["triggers"]}


def snapshot_differences(expected: dict[str, Any], found: dict[str, Any]) -> list[str]:
    """What differs between two snapshots, one phrase per difference ("table x: column y missing")."""
    result = _named_differences("table", expected["tables"], found["tables"], values=False)
    result += _named_differences("trigger", expected["triggers"], found["triggers"])
    for name in sorted(set(expected["tables"]) & set(found["tables"])):
        want, have = expected["tables"][name], found["tables"][name]
        result += [f"table {name}: {phrase}" for phrase in _named_differences("column", want["columns"],
                                                                              have["columns"])]
        if want["primary_key"] != have["primary_key"]:
            result.append(f"table {name}: primary key {have['primary_key']}, expected {want['primary_key']}")
        for part, noun in (("indexes", "index"), ("unique", "unique constraint"), ("foreign_keys", "foreign key")):
            described = {json.dumps(item): item for item in (*want[part], *have[part])}
            result += [f"table {name}: {phrase}" for phrase in _named_differences(
                noun, {key: 1 for key in map(json.dumps, want[part])}, {key: 1 for key in map(json.dumps, have[part])},
                label=lambda key, d=described: " ".join(map(str, d[key][:2])))]
    return result


def _named_differences(noun: str, want: dict[str, Any], have: dict[str, Any], *, values: bool = True,
                       label: Any = lambda name: name) -> list[str]:
    """Names in one mapping and not the other, and (with `values`) names whose values differ."""
    return ([f"{noun} {label(name)} missing" for name in sorted(set(want) - set(have))]
            + [f"{noun} {label(name)} not expected" for name in sorted(set(have) - set(want))]
            + [f"{noun} {label(name)} is {have[name]}, expected {want[name]}"
               for name in sorted(set(want) & set(have)) if values and want[name] != have[name]])


def _known_service(service: str) -> str:
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}; one of {', '.join(SERVICES)}")
    return service


def describe(result: Migration) -> str:
    """One log line for a migration run."""
    if result.ahead:
        return f"schema of {result.service} left at {result.before}, newer than this release ({result.head})"
    if result.stamped:
        return (f"schema of {result.service} recognised as the release before migrations, stamped {BASELINE} and "
                f"migrated to {result.after}")
    if result.changed:
        return f"schema of {result.service} migrated from {result.before or 'empty'} to {result.after}"
    return f"schema of {result.service} is at {result.after}, nothing to migrate"


def revisions(service: str) -> list[str]:
    """The service's revision ids, oldest first."""
    return _revisions(ScriptDirectory.from_config(alembic_config(service)))


def _revisions(script: ScriptDirectory) -> list[str]:
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def autogenerate(service: str, message: str) -> Path:
    """Write the service's next revision (`NNNN_<message words>.py`) from the difference between its models and
    a database at head, made in memory; returns the file's path. For developers: review before committing."""
    if not re.search(r"\w", message):
        raise ValueError("the message needs a few words")
    number = f"{int(head(service)) + 1:04d}"
    scratch_engine = create_engine("sqlite://")
    try:
        with scratch_engine.connect() as scratch:
            config = alembic_config(service, scratch)
            command.upgrade(config, "head")
            script = command.revision(config, message=message, autogenerate=True, rev_id=number)
    finally:
        scratch_engine.dispose()
    assert script is not None and not isinstance(script, list)
    return Path(script.path)
