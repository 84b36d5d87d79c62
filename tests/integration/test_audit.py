"""The NEN 7513 audit log is append-only in the database itself, on both backends, and searchable per patient."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from shared import audit, migrations
from shared.auth import Caller
from shared.db import make_engine, session_factory

pytestmark = pytest.mark.integration
NURSE = Caller(subject="triagist", kind="user", org="http://fhir.nl/fhir/NamingSystem/ura|90000001",
               scopes=frozenset({"triage.write"}), role="triagist")


async def test_audit_events_can_be_added_and_found_but_never_changed_or_removed(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        await migrations.migrate(engine, "coordination")
        sessions = session_factory(engine)
        await audit.record_now(sessions, service="triage", caller=NURSE, subtype="read", entity="ServiceRequest/1",
                               patient="p-" + "a" * 32)
        await audit.record_now(sessions, service="triage", caller=None, subtype="search", entity="GET /fhir/Task",
                               outcome=audit.OUTCOME_REFUSED, description="401: a bearer access token is required")
        async with sessions() as session:
            mine = await audit.search(session, patient="p-" + "a" * 32, count=10)
            everything = await audit.search(session, patient=None, count=10)
            several = await audit.search(session, patients=["p-" + "a" * 32, "p-" + "b" * 32], count=10)
        assert len(mine) == 1 and len(everything) == 2
        assert [e["id"] for e in several] == [mine[0]["id"]]  # any of several patients: the admin's name search
        event = mine[0]
        assert event["resourceType"] == "AuditEvent" and event["action"] == "R" and event["outcome"] == "0"
        assert event["agent"][0]["who"]["identifier"]["value"] == "triagist"
        assert event["agent"][0]["onBehalfOf"]["identifier"]["value"] == "90000001"
        assert event["agent"][0]["purposeOfUse"][0]["coding"][0]["code"] == "TREAT"
        assert event["entity"][0]["what"]["identifier"]["value"] == "p-" + "a" * 32
        for statement in ("UPDATE audit_event SET outcome = '0'", "DELETE FROM audit_event"):
            with pytest.raises(DBAPIError, match="append-only"):
                async with engine.begin() as conn:
                    await conn.execute(text(statement))
        async with sessions() as session:
            assert len(await audit.search(session, patient=None, count=10)) == 2
    finally:
        await engine.dispose()
