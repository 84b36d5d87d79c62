"""The demo shift `make run` loads on first start, against the real processes: the insurers' feeds, the
case-manager side and the front door's worklist all hold its figures, counted here by hand from the cases."""

from __future__ import annotations

import html
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from infra.client import ApiClient
from infra.demo import Loaded, load_demo_region
from infra.polling import wait_until
from infra.stack import Stack
from services.triage.domain.rules import DISPOSITIONS
from tests.conftest import started_stack
from tests.e2e.consoles import open_console

pytestmark = pytest.mark.e2e

# Independent of billing's code: the most intensive contact of the case, a triage alone is advice.
PRESTATION_OF_CONTACT = {"VR": "ADV", "HH": "VIS", "AMB": "CON", None: "ADV"}


@dataclass
class Demo:
    stack: Stack
    loaded: list[Loaded]
    seconds: float


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    for stack in started_stack(tmp_path_factory, "demo", env={"BILLING_FEED_DEBOUNCE_SECONDS": "0.3"}):
        began = time.monotonic()
        loaded = load_demo_region(stack, progress=lambda line: None)
        yield Demo(stack, loaded, time.monotonic() - began)


def closed(demo: Demo) -> list[Loaded]:
    return [item for item in demo.loaded if item.case.route and item.case.until == "completed"]


def test_the_shift_loads_well_within_a_minute(demo: Demo) -> None:
    assert demo.seconds < 60
    assert len(demo.loaded) == len({item.request_id for item in demo.loaded}) >= 30


def fed(insurer: ApiClient, uzovi: str, periods: set[str]) -> Counter[str]:
    """Quantities per prestation code, and the delimited count, of an insurer's feeds over these months."""
    counted: Counter[str] = Counter()
    for period in periods:
        feed = insurer.feed(uzovi, period)
        counted.update({line["code"]: line["quantity"] for line in feed["lines"]})
        counted["delimited-dbc"] += feed.get("exclusions", {}).get("delimited-dbc", 0)
    return counted


@pytest.mark.parametrize("uzovi", ["9001", "9002"])
def test_each_insurer_feed_has_advice_visits_and_consults_as_counted_from_the_cases(demo: Demo, uzovi: str) -> None:
    mine = [item.case for item in closed(demo) if item.case.patient.uzovi == uzovi]
    routes = [(case.route, case.open_dbc) for case in mine if case.route]
    delimited = [route for route, open_dbc in routes if open_dbc or route.disposition == "hospital-referral"]
    want = Counter(PRESTATION_OF_CONTACT[route.contact] for route, open_dbc in routes
                   if not (open_dbc or route.disposition == "hospital-referral"))
    assert set(want) == {"ADV", "VIS", "CON"} and delimited
    want["delimited-dbc"] = len(delimited)
    # The month of each line's contact (a shift loaded at midnight may span two).
    periods = {line["period"] for line in demo.stack.client("ops").prestations() if line["uzovi"] == uzovi}
    insurer = demo.stack.client(f"insurer-{uzovi}")
    wait_until(lambda: fed(insurer, uzovi, periods) == want, f"feed {uzovi} with {dict(want)}")
    for period in periods:
        assert all(line["amount_cents"] == line["quantity"] * line["unit_price_cents"] > 0
                   for line in insurer.feed(uzovi, period)["lines"])


def test_patients_without_a_dutch_insurer_are_billed_with_an_exclusion_not_a_feed_line(demo: Demo) -> None:
    uninsured = {item.request_id for item in closed(demo) if item.case.patient.uzovi is None}
    assert len(uninsured) == 2
    lines = [line for line in demo.stack.client("ops").prestations() if line["acute_request"] in uninsured]
    assert {(line["acute_request"], line["exclusion_reason"], line["uzovi"]) for line in lines} == {
        (request_id, "no-dutch-insurer", None) for request_id in uninsured}


def test_every_triaged_request_has_its_task_with_the_owner_and_status_its_case_says(demo: Demo) -> None:
    tasks = {t["basedOn"][0]["identifier"]["value"]: t for t in demo.stack.client("ops").tasks(_count="500")}
    triaged = [item for item in demo.loaded if item.case.route]
    assert len(tasks) == len(triaged)
    for item in triaged:
        task, route = tasks[item.request_id], item.case.route
        assert route is not None
        assert task["owner"]["identifier"]["value"] == route.organisation.split()[1]
        assert task["code"]["coding"][0]["code"] == route.disposition
        assert task["status"] == item.case.until, item.case
    assert {t["code"]["coding"][0]["code"] for t in tasks.values()} == set(DISPOSITIONS)


def test_delivered_contacts_lie_between_the_requests_receipt_and_now(demo: Demo) -> None:
    ops = demo.stack.client("ops")
    now = datetime.now(UTC)
    for item in closed(demo):
        route = item.case.route
        assert route is not None
        response = ops.http.get(f"{demo.stack.url('coordination')}/fhir/Encounter",
                                params={"patient": item.patient}, headers=ops.headers())
        response.raise_for_status()
        encounters = [e["resource"] for e in response.json().get("entry", [])]
        assert [e["class"]["code"] for e in encounters] == ([route.contact] if route.contact else []), item.case
        for encounter in encounters:
            start = datetime.fromisoformat(encounter["period"]["start"])
            end = datetime.fromisoformat(encounter["period"]["end"])
            assert item.received_at < start < end < now


def test_the_case_manager_sees_the_open_tasks_by_name_and_each_patients_timeline(demo: Demo) -> None:
    browser, page = open_console(demo.stack, "coordination", username="casemanager", password="demo-casemanager")
    assert page.status_code == 200
    open_work = [item for item in demo.loaded if item.case.route and item.case.until != "completed"]
    names = [html.escape(f"{item.case.patient.given} {item.case.patient.family}") for item in open_work]

    def named() -> Any:
        shown = browser.get(f"{demo.stack.url('coordination')}/console")
        return shown if all(name in shown.text for name in names) else None

    page = wait_until(named, "every open Task's patient by name")
    for item in open_work:
        assert item.patient in page.text, item.case  # the pseudonym stays, as a technical reference
    assert "Regionaal Transferpunt" in page.text and "Huisartsenpraktijk Het Plein" in page.text
    ops = demo.stack.client("ops")
    for item in demo.loaded:
        if item.case.route is None:
            continue
        response = ops.http.get(f"{demo.stack.url('coordination')}/api/v1/patients/{item.patient}/timeline",
                                headers=ops.headers())
        response.raise_for_status()
        kinds = {entry["kind"] for entry in response.json()["items"]}
        assert "triage" in kinds
        if item.case.until == "completed":
            wait_until(lambda item=item: "closed" in {e["kind"] for e in ops.http.get(
                f"{demo.stack.url('coordination')}/api/v1/patients/{item.patient}/timeline",
                headers=ops.headers()).json()["items"]}, f"the close of {item.request_id} on the timeline")


def test_the_worklist_holds_the_open_requests_and_the_closed_ones_have_left_it(demo: Demo) -> None:
    ops = demo.stack.client("ops")
    want = {item.request_id: "open" if item.case.route is None else "triaged"
            for item in demo.loaded if item.case.until != "completed" or item.case.route is None}
    assert "open" in want.values() and "triaged" in want.values()
    wait_until(lambda: {i["id"]: i["status"] for i in ops.worklist("open,triaged")} == want,
               "the worklist of the open requests only")
    assert {i["id"] for i in ops.worklist("closed")} == {item.request_id for item in closed(demo)}


def test_later_calls_show_on_the_request_they_were_linked_to(demo: Demo) -> None:
    browser, _ = open_console(demo.stack, "triage", username="triagist", password="demo-triagist")
    called_again = [item for item in demo.loaded if item.case.second_call]
    assert called_again
    for item in called_again:
        page = browser.get(f"{demo.stack.url('triage')}/console/requests/{item.request_id}")
        assert page.status_code == 200
        assert "Gekoppelde contacten" in page.text and "via telefoon" in page.text, item.case
    # The case manager reads the same words on the patient's timeline at coordination.
    ops = demo.stack.client("ops")
    for item in called_again:
        def told(item: Any = item) -> Any:
            items = ops.http.get(f"{demo.stack.url('coordination')}/api/v1/patients/{item.patient}/timeline",
                                 headers=ops.headers()).json()["items"]
            return [i["facts"] for i in items if i["kind"] == "call"] or None

        calls = wait_until(told, f"the second call about {item.patient} on the case manager's timeline")
        assert [(c["channel"], c["caller"], c["complaint"]) for c in calls] == [
            ("phone", "relative", item.case.second_call)], item.case
