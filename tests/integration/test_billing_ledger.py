"""Shadow billing through its event handlers on a real database: order and redelivery do not matter, locked
lines only change by credit + rebill, and feed revisions add up."""

from __future__ import annotations

import asyncio
import random
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.billing_shadow import service
from services.coordination import events as coordination_events
from tests.billing_books import START, Books, request_events

pytestmark = pytest.mark.integration
CODE = {"VR": "ADV", "HH": "VIS", "AMB": "CON"}
RANK = {"ADV": 1, "VIS": 2, "CON": 3}


def expected_code(disposition: str, contacts: list[str]) -> str | None:
    if disposition == "hospital-referral":
        return None
    return max((CODE[c] for c in contacts), key=RANK.__getitem__, default="ADV")


request_plans = st.lists(st.tuples(st.sampled_from(["home-visit", "remote-advice", "onsite-consult",
                                                    "hospital-referral"]),
                                   st.sampled_from(["9001", "9002", None]),
                                   st.lists(st.sampled_from(["VR", "HH", "AMB"]), max_size=3)),
                         min_size=1, max_size=3)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans=request_plans, seed=st.integers(0, 10_000), duplicates=st.integers(0, 4))
def test_any_order_with_duplicates_gives_one_line_per_request_equal_to_the_rule(plans, seed, duplicates) -> None:
    async def run() -> None:
        with tempfile.TemporaryDirectory() as folder:
            books = await Books(f"sqlite+aiosqlite:///{Path(folder) / 'billing.db'}").open()
            try:
                stream = [e for n, (d, u, c) in enumerate(plans) for e in request_events(n, disposition=d, uzovi=u,
                                                                                       contacts=c)]
                shuffler = random.Random(seed)
                stream += [shuffler.choice(stream) for _ in range(duplicates)]
                shuffler.shuffle(stream)
                await books.apply(stream)
                for n, (disposition, uzovi, contacts) in enumerate(plans):
                    lines = await books.lines(f"req-{n}")
                    assert len(lines) == 1 and lines[0].kind == "original"
                    line = lines[0]
                    assert line.code == expected_code(disposition, contacts)
                    if disposition == "hospital-referral":
                        assert line.exclusion_reason == "delimited-dbc" and line.unit_price_cents is None
                    elif uzovi is None:
                        assert line.exclusion_reason == "no-dutch-insurer" and line.unit_price_cents is None
                    else:
                        assert line.exclusion_reason is None and line.unit_price_cents is not None
            finally:
                await books.engine.dispose()

    asyncio.run(run())


async def test_a_contact_arriving_after_the_lock_waits_for_an_officer_then_credits_and_rebills(
        database_url: str) -> None:
    books = await Books(database_url).open()
    try:
        triaged, contact, _closed = request_events(1, disposition="home-visit", uzovi="9001", contacts=["HH"])
        closed_without_contact = coordination_events.acute_request_closed(
            request_id="req-1", pseudonym="p-" + "0" * 31 + "1", closed_at=START + timedelta(hours=1),
            encounter_ids=[], traceparent=None)
        await books.apply([triaged, closed_without_contact], grace=timedelta(0))
        await books.publish()
        before = await books.feed("9001")
        assert before["lines"] == [{"code": "ADV", "quantity": 1, "unit_price_cents": 3500, "amount_cents": 3500,
                                    "shadow_amount_cents": 650}]
        await books.apply([contact], grace=timedelta(0))
        assert [(ln.kind, ln.code) for ln in await books.lines("req-1")] == [("original", "ADV")]  # locked: no change
        standing = await books.standing("req-1")
        assert standing is not None
        async with books.sessions() as session, session.begin():
            with pytest.raises(ValueError, match="correct the insurer"):
                await service.correct(session, line_id=standing.id, reason="x", uzovi=None, withdraw=False,
                                      actor="declaratie", grace=timedelta(0))
        async with books.sessions() as session, session.begin():
            await service.correct(session, line_id=standing.id, reason="huisbezoek later gemeld", uzovi=None,
                                  withdraw=False, apply_late_facts=True, actor="declaratie", grace=timedelta(0))
        lines = await books.lines("req-1")
        assert [(ln.kind, ln.quantity, ln.code) for ln in lines] == [("original", 1, "ADV"), ("credit", -1, "ADV"),
                                                                     ("rebill", 1, "VIS")]
        assert lines[1].corrects == lines[0].id and lines[2].reason == "huisbezoek later gemeld"
        assert lines[2].created_by == "declaratie"
        await books.publish()
        after = await books.feed("9001")
        assert after["revision"] == before["revision"] + 1
        assert after["lines"] == [{"code": "VIS", "quantity": 1, "unit_price_cents": 11000, "amount_cents": 11000,
                                   "shadow_amount_cents": 8200}]
        async with books.sessions() as session, session.begin():
            with pytest.raises(ValueError, match="no facts arrived"):
                await service.correct(session, line_id=lines[2].id, reason="again", uzovi=None, withdraw=False,
                                      apply_late_facts=True, actor="declaratie", grace=timedelta(0))
    finally:
        await books.engine.dispose()


async def test_correction_after_lock_makes_revisions_equal_old_minus_credit_plus_rebill(database_url: str) -> None:
    books = await Books(database_url).open()
    try:
        await books.apply(request_events(1, disposition="onsite-consult", uzovi="9001", contacts=["AMB"])
                          + request_events(2, disposition="home-visit", uzovi="9001", contacts=["HH"]),
                          grace=timedelta(0))
        await books.publish()
        old_9001, old_9002 = await books.feed("9001"), await books.feed("9002")
        standing = await books.standing("req-1")
        assert standing is not None and standing.code == "CON"
        async with books.sessions() as session, session.begin():
            with pytest.raises(ValueError, match="reason"):
                await service.correct(session, line_id=standing.id, reason=" ", uzovi="9002", withdraw=False,
                                      actor="declaratie", grace=timedelta(0))
        async with books.sessions() as session, session.begin():
            rebill = await service.correct(session, line_id=standing.id, reason="patient is insured with Zuid",
                                           uzovi="9002", withdraw=False, actor="declaratie", grace=timedelta(0))
        assert rebill.kind == "rebill" and rebill.uzovi == "9002" and rebill.created_by == "declaratie"
        await books.publish()
        new_9001, new_9002 = await books.feed("9001"), await books.feed("9002")
        assert new_9001["revision"] == old_9001["revision"] + 1 and new_9002["revision"] == old_9002["revision"] + 1
        # The service day is 10 November: Zuid's CON price before its change on 16 November is 7800 cents.
        assert new_9001["totals"]["amount_cents"] == old_9001["totals"]["amount_cents"] - 7500
        assert new_9002["totals"]["amount_cents"] == old_9002["totals"]["amount_cents"] + 7800
        assert [(ln.kind, ln.uzovi) for ln in await books.lines("req-1")] == [
            ("original", "9001"), ("credit", "9001"), ("rebill", "9002")]
        async with books.sessions() as session, session.begin():
            with pytest.raises(ValueError, match="standing line"):
                await service.correct(session, line_id=standing.id, reason="again", uzovi="9002", withdraw=False,
                                      actor="declaratie", grace=timedelta(0))
    finally:
        await books.engine.dispose()


async def test_open_dbc_from_the_referral_or_reported_by_the_hospital_delimits(database_url: str) -> None:
    books = await Books(database_url).open()
    try:
        await books.apply(request_events(1, disposition="home-visit", uzovi="9001", contacts=["HH"], open_dbc=True)
                          + request_events(2, disposition="home-visit", uzovi="9001", contacts=["HH"]),
                          grace=timedelta(0))
        referred = await books.standing("req-1")
        assert referred is not None and referred.code is None and referred.exclusion_reason == "delimited-dbc"
        assert "open DBC" in referred.explanation
        await books.publish()
        before = await books.feed("9001")
        assert before["totals"]["quantity"] == 1
        async with books.sessions() as session, session.begin():
            changed = await service.report_open_dbc(
                session, pseudonym="p-" + "0" * 31 + "2", reference="DBC-778", start=START.date(), end=None,
                reporter="ehr-zuidrand", reporter_org="http://fhir.nl/fhir/NamingSystem/ura|90000010",
                grace=timedelta(0))
        assert changed == 1
        lines = await books.lines("req-2")
        assert [(ln.kind, ln.exclusion_reason) for ln in lines] == [("original", None), ("credit", None),
                                                                    ("rebill", "delimited-dbc")]
        assert lines[2].reason == "open DBC DBC-778 reported by the hospital"
        await books.publish()
        after = await books.feed("9001")
        assert after["totals"]["quantity"] == 0 and after["exclusions"] == {"delimited-dbc": 2}
        async with books.sessions() as session:
            with pytest.raises(ValueError, match="ends before"):
                await service.report_open_dbc(session, pseudonym="p-x", reference="x", start=START.date(),
                                              end=START.date() - timedelta(days=1), reporter="r", reporter_org="o",
                                              grace=timedelta(0))
    finally:
        await books.engine.dispose()
