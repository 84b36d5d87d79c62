"""The demo shift's data: valid and distinct patients, routes the directory allows, and every kind of case."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from infra.client import task_worker
from infra.demo import CASES, ROUTES, TASK_STEPS
from infra.referrals import DEMO_PATIENTS
from services.billing_shadow.domain.derivation import Contact, RequestFacts, derive
from services.triage.domain.rules import DISPOSITIONS, URGENCIES
from shared.identifiers import is_valid_bsn
from shared.region import ORGANISATIONS


def test_a_few_dozen_requests_for_distinct_patients_with_valid_bsns() -> None:
    assert 30 <= len(CASES) <= 40
    bsns = [c.patient.bsn for c in CASES if c.patient.bsn]
    assert all(is_valid_bsn(b) for b in bsns)
    assert len(set(bsns)) == len(bsns)
    new = {c.patient.bsn for c in CASES if c.patient not in DEMO_PATIENTS}
    assert not new & {p.bsn for p in DEMO_PATIENTS}
    assert any(c.patient.bsn is None for c in CASES), "someone without a BSN comes in too"


def test_every_route_goes_to_an_organisation_that_provides_it() -> None:
    provides = {o.label: o.dispositions for o in ORGANISATIONS}
    for route in ROUTES:
        assert route.disposition in provides[route.organisation], route
    assert {r.disposition for r in ROUTES} == set(DISPOSITIONS)


def test_the_client_that_works_a_task_is_the_one_acting_for_its_owner_with_task_write() -> None:
    assert task_worker("URA 90000001") == "ops"
    assert task_worker("URA 90000010") == "ehr-zuidrand"
    assert task_worker("URA 90000020") == "ehr-wijk-oost"
    assert task_worker("AGB 01000001") is None  # De Linde reads its Tasks only
    assert task_worker("URA 90000030") is None  # the transfer point has no client


def test_the_shift_covers_every_channel_urgency_and_disposition() -> None:
    assert {c.via for c in CASES} == {"ehr-delinde", "ehr-zuidrand", "phone", "walk-in"}
    assert {c.urgency for c in CASES if c.urgency} == set(URGENCIES)
    assert {c.route.disposition for c in CASES if c.route} == set(DISPOSITIONS)
    assert {c.patient.uzovi for c in CASES} == {"9001", "9002", None}
    assert sum(1 for c in CASES if c.urgency is None) >= 2, "some requests wait for the triage nurse"
    assert sum(1 for c in CASES if c.second_call) >= 2


def test_only_a_task_someone_can_work_moves_and_untriaged_requests_have_no_route() -> None:
    for case in CASES:
        assert case.until in TASK_STEPS
        assert (case.urgency is None) == (case.route is None)
        if case.route is not None and case.route.worker is None:
            assert case.until == "requested", case
    open_tasks = {c.until for c in CASES if c.route and c.until != "completed"}
    assert open_tasks == {"requested", "accepted", "in-progress"}


def test_each_insurer_gets_every_prestation_and_delimited_lines_from_the_closed_requests() -> None:
    derived: dict[str | None, list[tuple[str | None, str | None]]] = defaultdict(list)
    moment = datetime(2026, 11, 30, 12, tzinfo=UTC)
    for number, case in enumerate(CASES):
        if case.route is None or case.until != "completed":
            continue
        contacts = [Contact(f"c{number}", case.route.contact, moment)] if case.route.contact else []
        facts = RequestFacts(f"r{number}", case.route.disposition, case.patient.uzovi, moment, closed=True,
                             open_dbc=case.open_dbc)
        result = derive(facts, contacts)
        assert result is not None
        derived[case.patient.uzovi].append((result.code, result.exclusion_reason))
    for uzovi in ("9001", "9002"):
        assert {code for code, _ in derived[uzovi]} >= {"ADV", "VIS", "CON"}
        assert (None, "delimited-dbc") in derived[uzovi]
    assert {reason for _, reason in derived[None]} == {"no-dutch-insurer"}
