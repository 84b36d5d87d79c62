"""shared.writes: what a hot path collects reaches the database in one statement on PostgreSQL and in cached
statements on SQLite, with the same rows, in the order they were added, inside the caller's transaction."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import bindparam, event, select, update

from services.coordination import episodes
from services.coordination.models import TaskRecord, TimelineEntry
from shared import migrations
from shared.bus import outbox
from shared.bus.envelope import Event
from shared.bus.outbox import OutboxRecord
from shared.db import make_engine, session_factory
from shared.writes import Writes

pytestmark = pytest.mark.integration
AT = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
TASK = TaskRecord.__table__  # type: ignore[attr-defined]
RENAME = update(TASK).where(TASK.c.id == bindparam("task_id")).values(status=bindparam("new_status"))


def _event(n: int) -> Event:
    return Event.of(topic="regiozorg.coordination.task-changed.v1", key="p-1", source="/test", subject=f"Task/{n}",
                    payload={"resourceType": "Task", "id": str(n)})


async def test_rows_keep_their_order_and_postgresql_gets_one_statement(database_url: str) -> None:
    engine = make_engine(database_url)
    statements: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute",  # SQLite's BEGIN IMMEDIATE is not a write
                 lambda _c, _cur, statement, *_args: statement.startswith("BEGIN") or statements.append(statement))
    try:
        await migrations.migrate(engine, "coordination")
        sessions = session_factory(engine)
        async with sessions() as session, session.begin():
            session.add(TaskRecord(id="t1", status="requested", owner="o", requester="r", acute_request_id="a",
                                   source_event_id="e", pseudonym="p-1", due_at=AT, last_updated=AT, content="{}"))
        for round_ in range(2):  # the second time from the compiled shape
            statements.clear()
            sent = [_event(3 * round_ + n) for n in range(3)]
            async with sessions() as session, session.begin():
                writes = Writes()
                for item in sent:
                    writes.event(item, at=AT)
                for n in range(2):
                    episodes.note_in(writes, pseudonym="p-1", at=AT, kind="task", text=f"entry {round_}.{n}")
                episodes.join_episode(writes, dialect=engine.dialect.name, pseudonym="p-1", member=f"org|{round_}",
                                      at=AT)
                writes.statement(RENAME, {"task_id": "t1", "new_status": f"status-{round_}"})
                await writes.flush(session)
                assert not writes
            if engine.dialect.name == "postgresql":
                assert len(statements) == 1 and statements[0].lstrip().startswith("WITH")
            else:
                assert len(statements) == 4
            async with sessions() as session:
                published = (await session.execute(select(OutboxRecord.event_id).order_by(OutboxRecord.seq))).all()
                assert [row.event_id for row in published][-3:] == [item.id for item in sent]
                texts = (await session.execute(select(TimelineEntry.text).order_by(TimelineEntry.pk))).scalars()
                assert list(texts)[-2:] == [f"entry {round_}.0", f"entry {round_}.1"]
                status = (await session.execute(select(TaskRecord.status))).scalar_one()
                assert status == f"status-{round_}"
        async with sessions() as session:
            team = (await session.execute(select(episodes.EPISODE.c.care_team, episodes.EPISODE.c.lead))).one()
        assert (team.care_team, team.lead) == ('["org|0", "org|1"]', "org|0")
    finally:
        await engine.dispose()


async def test_nothing_collected_is_written_when_the_transaction_rolls_back(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        await migrations.migrate(engine, "coordination")
        sessions = session_factory(engine)
        with pytest.raises(RuntimeError, match="refused after the writes"):
            async with sessions() as session, session.begin():
                writes = Writes()
                writes.event(_event(1), at=AT)
                episodes.note_in(writes, pseudonym="p-1", at=AT, kind="task", text="never")
                await writes.flush(session)
                raise RuntimeError("refused after the writes")
        async with sessions() as session:
            assert (await session.execute(select(OutboxRecord))).first() is None
            assert (await session.execute(select(TimelineEntry))).first() is None
    finally:
        await engine.dispose()


async def test_an_event_written_with_the_others_wakes_the_relay_on_commit_only(database_url: str) -> None:
    # The relay's in-process wake-up (the only one on SQLite; PostgreSQL's trigger NOTIFYs as well) must not miss
    # events a hot path writes in its one statement instead of through outbox.enqueue.
    engine = make_engine(database_url)
    woken: list[str] = []
    try:
        await migrations.migrate(engine, "coordination")
        sessions = session_factory(engine)
        outbox.COMMITS.attach(sessions, lambda: woken.append("commit"))
        with pytest.raises(RuntimeError, match="refused"):
            async with sessions() as session, session.begin():
                writes = Writes()
                writes.event(_event(1), at=AT)
                await writes.flush(session)
                raise RuntimeError("refused")
        assert woken == []
        async with sessions() as session, session.begin():
            writes = Writes()
            episodes.note_in(writes, pseudonym="p-1", at=AT, kind="task", text="no event")
            await writes.flush(session)
        assert woken == []
        async with sessions() as session, session.begin():
            writes = Writes()
            writes.event(_event(2), at=AT)
            await writes.flush(session)
        assert woken == ["commit"]
    finally:
        await engine.dispose()
