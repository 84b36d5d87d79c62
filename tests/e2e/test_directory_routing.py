"""The directory decides on the real stack: what the admin changes on the front door's settings page reaches
coordination, whose reassignments (Task API and the case manager's console) follow it. Removing a follow-up action
from an organisation makes a reassignment there 422; adding it makes one accepted."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from itertools import count
from typing import Any

import httpx
import pytest

from infra.client import service_request_of
from infra.polling import wait_until
from infra.referrals import referral_bundle
from infra.stack import Stack
from shared.identifiers import is_valid_bsn
from tests.conftest import started_stack
from tests.e2e.consoles import open_console

pytestmark = pytest.mark.e2e
_BSNS = (bsn for bsn in (f"{n:09d}" for n in count(900400000)) if is_valid_bsn(bsn))
URA = "http://fhir.nl/fhir/NamingSystem/ura"
WIJK, ZUIDRAND = f"{URA}|90000020", f"{URA}|90000010"
ROW = re.compile(r"<tr><td>([^<]+)</td>.*?</tr>", re.S)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from started_stack(tmp_path_factory, "directory")


def set_directory(stack: Stack, org: str, *, dispositions: list[str], hours: str = "00:00-24:00") -> None:
    """The admin saves one organisation's entry on the front door's settings page, as the browser posts it."""
    admin, _ = open_console(stack, "triage", username="beheer", password="demo-beheer")
    page = admin.get(f"{stack.url('triage')}/console/settings").text
    csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    saved = admin.post(f"{stack.url('triage')}/console/settings/directory",
                       data={"csrf_token": csrf, "org": org, "hours": hours, "dispositions": dispositions})
    assert saved.status_code == 200 and html.escape(hours) in saved.text, saved.text


def coordination_directory(stack: Stack) -> dict[str, str]:
    """The case manager's directory page on coordination: each organisation's row as text, by name."""
    manager, _ = open_console(stack, "coordination", username="casemanager", password="demo-casemanager")
    page = manager.get(f"{stack.url('coordination')}/console/directory")
    assert page.status_code == 200, page.text
    return {match[1]: html.unescape(re.sub(r"<[^>]+>", " ", match[0])) for match in ROW.finditer(page.text)}


def front_door_task(stack: Stack) -> dict[str, Any]:
    """A home visit the front door routes to itself (open around the clock), as ops sees its Task."""
    ops = stack.client("ops")
    posted = stack.client("ehr-delinde").post_referral(referral_bundle(bsn=next(_BSNS), reason="Koorts, suf"))
    request_id = ops.request_for(service_request_of(posted.json()))["id"]
    ops.triage_request(request_id, urgency="U3", disposition="home-visit",
                       organization="URA 90000001").raise_for_status()
    return ops.wait_for_task(request_id)


def to(token: str) -> list[dict[str, Any]]:
    system, _, value = token.partition("|")
    return [{"op": "replace", "path": "/owner", "value": {"identifier": {"system": system, "value": value}}}]


def test_admin_removes_home_visits_from_the_nursing_organisation_and_coordination_refuses_a_reassignment_there(
        stack: Stack) -> None:
    ops = stack.client("ops")
    task = front_door_task(stack)
    assert "Visite aan huis" in coordination_directory(stack)["Wijkverpleging Oost"]
    set_directory(stack, WIJK, dispositions=["community-nursing"])
    try:
        wait_until(lambda: "Visite aan huis" not in coordination_directory(stack)["Wijkverpleging Oost"],
                   "coordination hearing that Wijkverpleging Oost makes no home visits")
        refused = ops.patch_task(task["id"], to(WIJK))
        assert refused.status_code == 422, refused.text
        issue = refused.json()["issue"][0]
        assert issue["diagnostics"].startswith("Wijkverpleging Oost does not provide Visite aan huis (home-visit) "
                                               "according to the region's directory")
        assert "Wijkverpleging Oost" not in issue["diagnostics"].split("organisations that do:")[1]
        assert issue["expression"] == ["Task.owner.identifier"]
        assert ops.tasks(_id=task["id"])[0]["meta"]["versionId"] == "1"  # nothing changed
        # The case manager's console no longer offers it for the home visit.
        manager, _ = open_console(stack, "coordination", username="casemanager", password="demo-casemanager")
        page = manager.get(f"{stack.url('coordination')}/console/patients/{task['for']['identifier']['value']}")
        choices = page.text.split(f"/tasks/{task['id']}/reassign", 1)[1].split("</select>", 1)[0]
        assert "Wijkverpleging Oost" not in choices and "Huisartsenpraktijk De Linde" in choices
    finally:
        set_directory(stack, WIJK, dispositions=["community-nursing", "home-visit"])
    wait_until(lambda: "Visite aan huis" in coordination_directory(stack)["Wijkverpleging Oost"],
               "coordination hearing that Wijkverpleging Oost makes home visits again")
    moved = ops.patch_task(task["id"], to(WIJK))
    assert moved.status_code == 200, moved.text


def test_admin_adds_home_visits_to_the_hospital_and_coordination_accepts_a_reassignment_there(stack: Stack) -> None:
    ops = stack.client("ops")
    task = front_door_task(stack)
    refused = ops.patch_task(task["id"], to(ZUIDRAND))  # the region's defaults: the hospital makes no home visits
    assert refused.status_code == 422, refused.text
    set_directory(stack, ZUIDRAND, dispositions=["hospital-referral", "onsite-consult", "home-visit"])
    wait_until(lambda: "Visite aan huis" in coordination_directory(stack)["Ziekenhuis Zuidrand"],
               "coordination hearing that Ziekenhuis Zuidrand makes home visits")
    moved = ops.patch_task(task["id"], to(ZUIDRAND))
    assert moved.status_code == 200, moved.text
    assert moved.json()["owner"]["identifier"]["value"] == "90000010" and moved.json()["status"] == "requested"
    hospital = stack.client("ehr-zuidrand")
    assert task["id"] in [t["id"] for t in hospital.tasks()]
    timeline = httpx.get(f"{stack.url('coordination')}/fhir/Task/{task['id']}/_history",
                         headers=ops.headers()).json()
    assert [e["resource"]["owner"]["identifier"]["value"] for e in timeline["entry"]] == ["90000010", "90000001"]
