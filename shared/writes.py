"""The writes of one unit of work sent together: rows collected per table, one statement on PostgreSQL.

A hot path (a consumed event, a Task PATCH) decides first and writes after; what it writes (new rows, updates,
outbox events) is collected here and sent at the end as SQLAlchemy Core statements. On PostgreSQL all of them go
in one round trip, as data-modifying CTEs of one statement (`WITH w0 AS (INSERT …), w1 AS (UPDATE …) INSERT …`),
compiled once per shape (which tables with how many rows, which statement templates) and then only executed; on
SQLite, which has no data-modifying CTEs, one cached statement per table (executemany) or template, in the order
they were added. Either way they run in the caller's transaction: the effect, its audit row and its outbox event
commit together.

The rows of one table go in one multi-row INSERT in the order they were added, so a serial key (the outbox's
`seq`, a timeline's `pk`) numbers them in that order. The sub-statements of one PostgreSQL statement see the same
snapshot and cannot see each other's rows: nothing collected here may depend on another write collected here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, Table, bindparam, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import visitors
from sqlalchemy.sql.dml import UpdateBase

from shared.bus.envelope import Event
from shared.bus.outbox import OutboxRecord, written

OUTBOX: Table = OutboxRecord.__table__  # type: ignore[attr-defined]
_MAX_SHAPES = 512


def outbox_row(event: Event, *, at: datetime) -> dict[str, Any]:
    """The outbox row of an event, as `shared.bus.outbox.enqueue` writes it (status pending, no attempts yet)."""
    return {"event_id": event.id, "topic": event.topic, "key": event.key, "ce_type": event.type,
            "ce_source": event.source, "ce_subject": event.subject, "ce_time": event.time,
            "content_type": event.content_type, "traceparent": event.traceparent, "payload": event.data,
            "status": "pending", "attempts": 0, "created_at": at, "sent_at": None, "broker_epoch": None,
            "last_error": None}


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # the bound parameters' names in the order of the SQL's positional parameters
    constants: dict[str, Any]  # values fixed in the templates (a literal 1, say); the others are replaced
    processors: dict[str, Callable[[Any], Any]]  # the dialect's conversions of bound values, by name


_SHAPES: dict[tuple[Any, ...], _Compiled] = {}


class Writes:
    """Rows and statements of one transaction, sent by `flush` (PostgreSQL: one statement)."""

    def __init__(self) -> None:
        self._rows: dict[Table, list[dict[str, Any]]] = {}
        self._statements: list[tuple[UpdateBase, Mapping[str, Any],
                                     Callable[[AsyncSession], Awaitable[None]] | None]] = []
        self._names = 0
        self._flushed: list[Callable[[AsyncSession], None]] = []

    def name(self, prefix: str) -> str:
        """A CTE name unique within this unit of work (the same on every run, so the shape stays cached)."""
        self._names += 1
        return f"{prefix}{self._names}"

    def insert(self, table: Table, **values: Any) -> None:
        """A new row of `table`; every row of one table must name the same columns."""
        self._rows.setdefault(table, []).append(values)

    def event(self, event: Event, *, at: datetime) -> None:
        """An event for the outbox, published only if the transaction commits."""
        self.insert(OUTBOX, **outbox_row(event, at=at))

    def statement(self, template: UpdateBase, params: Mapping[str, Any], *,
                  on_sqlite: Callable[[AsyncSession], Awaitable[None]] | None = None) -> None:
        """An UPDATE, upsert or INSERT … SELECT: `template` is built once (module level) with named bind
        parameters, `params` their values. `on_sqlite` does the same work where the template cannot be a CTE
        (an UPDATE … RETURNING feeding an INSERT, say)."""
        self._statements.append((template, params, on_sqlite))

    def on_flush(self, callback: Callable[[AsyncSession], None]) -> None:
        """Call `callback(session)` when the writes are sent, to note in the session what its commit should
        signal (a worker to wake, as `shared.bus.outbox.written` does for the relay)."""
        self._flushed.append(callback)

    def __bool__(self) -> bool:
        return bool(self._rows or self._statements)

    async def flush(self, session: AsyncSession) -> None:
        """Send everything collected, in the caller's transaction, and start empty again."""
        rows, statements, flushed = self._rows, self._statements, self._flushed
        self._rows, self._statements, self._flushed = {}, [], []
        for callback in flushed:
            callback(session)
        if not rows and not statements:
            return
        if OUTBOX in rows:
            written(session)  # the commit wakes the relay in-process (SQLite; PostgreSQL's trigger NOTIFYs)
        if session.get_bind().dialect.name != "postgresql":
            for table, table_rows in rows.items():
                await session.execute(insert(table), table_rows)
            for template, params, on_sqlite in statements:
                if on_sqlite is not None:
                    await on_sqlite(session)
                else:
                    await session.execute(template, dict(params))
            return
        shape = (tuple((table, tuple(table_rows[0]), len(table_rows)) for table, table_rows in rows.items())
                 + tuple(template for template, _, _ in statements))
        compiled = _SHAPES.get(shape)
        if compiled is None:
            compiled = _compile(session, rows, statements)
            if len(_SHAPES) >= _MAX_SHAPES:
                _SHAPES.clear()
            _SHAPES[shape] = compiled
        values: dict[str, Any] = dict(compiled.constants)
        for i, table_rows in enumerate(rows.values()):
            columns = tuple(table_rows[0])
            for r, row in enumerate(table_rows):
                for column in columns:
                    values[f"r{i}_{r}_{column}"] = row[column]
        for i, (_, params, _) in enumerate(statements):
            for name, value in params.items():
                values[f"s{i}_{name}"] = value
        for name, process in compiled.processors.items():
            values[name] = process(values[name])
        connection = await session.connection()
        await connection.exec_driver_sql(compiled.sql, tuple(values[name] for name in compiled.names))


def _compile(session: AsyncSession, rows: dict[Table, list[dict[str, Any]]],
             statements: list[tuple[UpdateBase, Mapping[str, Any], Any]]) -> _Compiled:
    """One statement for this shape: the inserts and the templates (their parameters renamed apart) as CTEs of
    the last one, compiled for the session's dialect."""
    parts: list[UpdateBase] = []
    for i, (table, table_rows) in enumerate(rows.items()):
        columns = tuple(table_rows[0])
        parts.append(insert(table).values([{column: bindparam(f"r{i}_{r}_{column}", type_=table.c[column].type)
                                            for column in columns} for r in range(len(table_rows))]))
    for i, (template, _, _) in enumerate(statements):
        parts.append(_renamed(template, f"s{i}_"))
    *others, main = parts
    combined = main.add_cte(*(part.cte(f"w{i}") for i, part in enumerate(others))) if others else main
    compiled = combined.compile(dialect=session.get_bind().dialect)
    names = tuple(compiled.positiontup or ())
    constants = dict(compiled.params)  # the rows' and templates' own values replace these at each flush
    processors = {name: process for name, process in (compiled._bind_processors or {}).items()
                  if name in names and process is not None}
    return _Compiled(sql=str(compiled), names=names, constants=constants, processors=processors)


def _renamed(template: UpdateBase, prefix: str) -> UpdateBase:
    def rename(element: Any, **_kw: Any) -> Any:
        if isinstance(element, BindParameter) and not element.unique:
            return bindparam(prefix + element.key, type_=element.type)
        return None

    return visitors.replacement_traverse(template, {}, rename)  # type: ignore[return-value]
