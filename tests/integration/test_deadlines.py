"""The scheduled deadline check: a Task past its urgency's target time is reported once, as an event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from services.coordination import service
from services.coordination.models import TaskRecord
from services.triage import events as triage_events
from services.triage.models import AcuteRequest
from shared import migrations
from shared.bus.outbox import OutboxRecord
from shared.bus.topics import TASK_OVERDUE
from shared.db import make_engine, session_factory
from shared.settings import CODESYSTEM_BASE

pytestmark = pytest.mark.integration

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


async def test_overdue_tasks_are_reported_once_and_due_times_compare_in_utc(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        await migrations.migrate(engine, "coordination")
        sessions = session_factory(engine)
        now = datetime.now(UTC)
        for n, due in enumerate([now - timedelta(minutes=5), now + timedelta(hours=2)]):
            request = AcuteRequest(id=f"req-{n}", pseudonym=f"p-{n:032d}", channel="phone", submitted_by="x",
                                   received_at=now - timedelta(hours=1), urgency="U2", disposition="home-visit",
                                   assigned_org="http://fhir.nl/fhir/NamingSystem/ura|90000020",
                                   # Sent with an Amsterdam offset, as a U5 due time is computed.
                                   due_at=due.astimezone(AMSTERDAM), triaged_at=now - timedelta(minutes=50))
            async with sessions() as session, session.begin():
                await service.on_triage_completed(session, triage_events.triage_completed(
                    request, note="", codesystem_base=CODESYSTEM_BASE, traceparent=None),
                    front_door_fhir_base="https://voordeur.example/fhir", codesystem_base=CODESYSTEM_BASE)
        for expected in (1, 0):
            async with sessions() as session, session.begin():
                assert await service.flag_overdue(session) == expected
        async with sessions() as session:
            reported = list((await session.execute(select(OutboxRecord).where(
                OutboxRecord.topic == TASK_OVERDUE))).scalars())
            overdue = await service.overdue(session)
            flagged = (await session.execute(select(TaskRecord.acute_request_id).where(
                TaskRecord.overdue_flagged_at.is_not(None)))).scalars().all()  # type: ignore[union-attr]
        assert len(reported) == 1 and reported[0].key == "p-" + "0" * 32
        assert [t.acute_request_id for t in overdue] == ["req-0"] and flagged == ["req-0"]
    finally:
        await engine.dispose()
