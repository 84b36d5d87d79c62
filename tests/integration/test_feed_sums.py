"""An insurer's feed added up by the database (service.build_feed) is the feed the ledger's rule gives over every
line (domain.ledger.aggregate with the standing line of each request), after rebills that move a request to
another insurer and withdrawals, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import select

from services.billing_shadow import service
from services.billing_shadow.domain import ledger
from services.billing_shadow.models import PrestationLine
from tests.billing_books import Books, request_events

pytestmark = pytest.mark.integration
GRACE = timedelta(hours=72)


def rule_feed(lines: list[PrestationLine], uzovi: str, period: str) -> dict:
    month = [line for line in lines if line.uzovi == uzovi and line.period == period]
    of_request: dict[str, list[PrestationLine]] = {}
    for line in sorted(lines, key=lambda line: (line.acute_request_id, line.sequence)):
        of_request.setdefault(line.acute_request_id, []).append(line)
    effective = []
    for request_id in sorted({line.acute_request_id for line in month}):
        standing = service._standing(of_request[request_id])
        if standing is not None and standing.uzovi == uzovi and standing.period == period:
            effective.append(ledger.Entry(request_id, standing.kind, 1, service._values(standing)))
    entries = [ledger.Entry(line.acute_request_id, line.kind, line.quantity, service._values(line)) for line in month]
    return ledger.aggregate(uzovi, period, entries, effective)


async def test_the_databases_sums_are_the_rules_feed(database_url: str) -> None:
    books = await Books(database_url).open()
    try:
        plans = random.Random(17)
        stream = [event for n in range(30) for event in request_events(
            n, disposition=plans.choice(["home-visit", "remote-advice", "onsite-consult", "hospital-referral"]),
            uzovi=plans.choice(["9001", "9002", None]),
            contacts=plans.sample(["VR", "HH", "AMB"], plans.randint(0, 2)))]
        await books.apply(stream, grace=GRACE)
        corrected = 0
        for n in range(0, 30, 3):
            standing = await books.standing(f"req-{n}")
            if standing is None or standing.exclusion_reason == "delimited-dbc":
                continue
            async with books.sessions() as session, session.begin():
                if n % 2:
                    await service.correct(session, line_id=standing.id, reason="other insurer", withdraw=False,
                                          uzovi="9002" if standing.uzovi != "9002" else "9001", actor="t", grace=GRACE)
                else:
                    await service.correct(session, line_id=standing.id, reason="withdrawn", uzovi=None, withdraw=True,
                                          actor="t", grace=GRACE)
            corrected += 1
        assert corrected >= 5
        async with books.sessions() as session:
            lines = list((await session.execute(select(PrestationLine))).scalars())
            assert any(line.kind == "credit" for line in lines)
            for uzovi in ("9001", "9002"):
                feed = await service.build_feed(session, uzovi=uzovi, period="2026-11")
                assert feed == rule_feed(lines, uzovi, "2026-11")
                assert feed["lines"] and feed["exclusions"].get("withdrawn")
    finally:
        await books.engine.dispose()
