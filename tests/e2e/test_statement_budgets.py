"""The SQL statements of a referral, a triage, a Task PATCH and each consumed event stay within their budgets.

Counts are exact where timings are not: the real processes on PostgreSQL count every statement per unit of work
(shared/statements.py, `REGIOZORG_COUNT_STATEMENTS=1`), the bench driver works requests one at a time to their
prestation, and the counts of one request are compared with the budgets below. Background work that runs on a
timer (outbox relay, notification sender, feed publisher, deadline check) is not budgeted: how often it wakes is
not a property of one request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from infra.stack import Stack
from shared.statements import read_totals
from tests.bench.load import Driver
from tests.conftest import PostgresDatabases, started_stack

pytestmark = pytest.mark.e2e

# Budgets: the counts measured on PostgreSQL on 2026-11-30 (issue #17, before the lean write path). They must
# only go down: lower a budget when the code needs fewer statements, never raise one.
# triage, POST /fhir: one referral Bundle of a new patient accepted: its receipts and the identifiers it names read
# in one query, then every new row (the outbox's events and the audit event too) in one statement, without BEGIN
# or COMMIT.
REFERRAL_POST = 2
TRIAGE = 9  # triage, POST /api/v1/requests/{id}/triage
# coordination, PATCH /fhir/Task/{id}: one status step (accepted, in-progress, completed): the Task locked and
# everything written in one statement, two more for the step that completes it (the request locked, its Tasks).
TASK_PATCH = 3
ROUTE_BUDGETS: dict[tuple[str, str], int] = {
    ("triage", "POST /fhir"): REFERRAL_POST,
    ("triage", "POST /api/v1/requests/{request_id}/triage"): TRIAGE,
    ("coordination", "PATCH /fhir/Task/{task_id}"): TASK_PATCH,
}
# Per consumer: (statements, events) for all the events of one request it takes.
CONSUMER_BUDGETS: dict[tuple[str, ...], tuple[int, int]] = {
    ("coordination.referral-received",): (2, 1),
    ("coordination.patient-changed",): (4, 1),
    ("coordination.triage-completed",): (4, 1),
    # accepted, in-progress, completed and the Task made: per version its known versions read under their lock and
    # one statement writing it with the Task's grants remade (was 24: five per version), plus the consumer's claim
    # per poll (10 measured when the four come in two polls; 12 when each comes alone).
    ("triage.task-changed",): (12, 4),
    ("triage.acute-request-closed",): (3, 1),
    ("billing_shadow.triage-completed",): (2, 1),
    ("billing_shadow.evaluation",): (9, 3),
    # The prestation is derived by whichever of the two events comes second (no order across topics), so the
    # pair has one budget: 3 + 6 when the contact comes last, 3 + 5 the other way, and one more the first time a
    # process reads the tariff table.
    ("billing_shadow.acute-request-closed", "billing_shadow.contact-delivered"): (10, 2),
}
MEASURED_REQUESTS = 2


@pytest.fixture(scope="module")
def counting_stack(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresDatabases) -> Iterator[Stack]:
    urls = {name: postgres.new(f"budget_{name}") for name in ("triage", "coordination", "billing_shadow")}
    yield from started_stack(tmp_path_factory, "statements", env={"REGIOZORG_COUNT_STATEMENTS": "1"},
                             database_urls=urls)


def _service_of(consumer: str) -> str:
    return consumer.split(".", 1)[0]


def _budgeted(totals: dict[tuple[str, str], tuple[int, int]]) -> dict[str, tuple[int, int]]:
    """{label: (statements, units)} of every budgeted route and consumer group."""
    found = {f"{service} {unit}": totals.get((service, unit), (0, 0)) for service, unit in ROUTE_BUDGETS}
    for group in CONSUMER_BUDGETS:
        rows = [totals.get((_service_of(c), f"consumer {c}"), (0, 0)) for c in group]
        found[" + ".join(group)] = (sum(r[0] for r in rows), sum(r[1] for r in rows))
    return found


async def _settled(stack: Stack, before: dict[str, tuple[int, int]], timeout: float = 60) -> dict[str, tuple[int, int]]:
    """The budgeted counts once every consumer took its events of the request and nothing moved for a second."""
    expected = {" + ".join(group): events for group, (_, events) in CONSUMER_BUDGETS.items()}
    deadline = time.monotonic() + timeout
    last: dict[str, tuple[int, int]] | None = None
    while True:
        now = _budgeted(read_totals(stack.data_dir))
        complete = all(now[label][1] - before[label][1] >= events for label, events in expected.items())
        if complete and now == last:
            return now
        if time.monotonic() > deadline:
            return now  # the comparison names what is missing
        last = now
        await asyncio.sleep(1.0)


async def test_statements_of_a_request_stay_within_budget(counting_stack: Stack) -> None:
    stack = counting_stack
    async with Driver(triage=stack.url("triage"), coordination=stack.url("coordination"),
                      bootstrap=stack.bootstrap) as driver:
        # A first request warms what is read once (signing keys, tariffs, the client table) and is not counted.
        warm = driver.new_journey()
        await driver.run(warm)
        assert warm.error is None, warm.error
        before = await _settled(stack, _budgeted({}))
        measured = []
        for _ in range(MEASURED_REQUESTS):
            journey = driver.new_journey()
            await driver.run(journey)
            assert journey.error is None, journey.error
            after = await _settled(stack, before)
            measured.append({label: (after[label][0] - before[label][0], after[label][1] - before[label][1])
                             for label in after})
            before = after

    over = []
    for number, counts in enumerate(measured, 1):
        for (service, unit), budget in ROUTE_BUDGETS.items():
            statements, calls = counts[f"{service} {unit}"]
            # None counted means the counting lost track of the route (each of them writes), not a lean path.
            if not calls or not statements or statements > budget * calls:  # the Task PATCH runs three times
                over.append(f"request {number}: {service} {unit}: {statements} statements in {calls} call(s), "
                            f"budget {budget} per call")
        for group, (budget, events) in CONSUMER_BUDGETS.items():
            statements, taken = counts[" + ".join(group)]
            if taken != events or not statements or statements > budget:
                over.append(f"request {number}: {' + '.join(group)}: {statements} statements for {taken} "
                            f"event(s), budget {budget} for {events}")
    actual = "\n".join(f"  {label}: {statements} statements, {units} call(s) or event(s)"
                       for label, (statements, units) in measured[-1].items())
    assert not over, "over budget:\n  " + "\n  ".join(over) + "\nmeasured (last request):\n" + actual
