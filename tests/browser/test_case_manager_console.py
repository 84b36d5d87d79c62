"""The case manager in a real browser: live worklists, a patient's timeline across organisations, taking the
case, handing over the hoofdbehandelaar role (accepted by the receiving organisation), reassigning a Task."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser

from infra.client import service_request_of
from infra.referrals import referral_bundle
from infra.stack import ROOT, Stack
from tests.conftest import started_stack

pytestmark = pytest.mark.e2e
SHOTS = ROOT / "test-artifacts" / "screenshots"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from started_stack(tmp_path_factory, "casemanager")


def route(stack: Stack, bsn: str, urgency: str, disposition: str, organisation: str) -> str:
    ops = stack.client("ops")
    posted = stack.client("ehr-delinde").post_referral(referral_bundle(bsn=bsn, reason="Val thuis, pijn in de heup"))
    sr = service_request_of(posted.json())
    item = ops.request_for(sr)
    ops.triage_request(item["id"], urgency=urgency, disposition=disposition, organization=organisation) \
        .raise_for_status()
    return str(item["patient"])


def test_case_manager_follows_a_patient_and_hands_over_the_lead(stack: Stack, browser: Browser) -> None:
    patient = route(stack, "999990019", "U0", "home-visit", "URA 90000020")  # U0: due at once, so overdue
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    page.goto(f"{stack.url('coordination')}/console")
    page.fill("input[name=username]", "casemanager")
    page.fill("input[name=password]", "demo-casemanager")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{stack.url('coordination')}/console")
    deadline = time.monotonic() + 30
    while patient not in page.inner_text("#lists"):
        assert time.monotonic() < deadline, "the patient's Task did not show"
        page.reload()
    assert "(te laat)" in page.inner_text("#lists")
    # Live: a second patient appears without reloading the page.
    other = route(stack, "999990044", "U3", "community-nursing", "URA 90000020")
    page.wait_for_function(f"document.getElementById('lists').innerText.includes('{other}')", timeout=30000)
    page.screenshot(path=str(SHOTS / "casemanager-worklists.png"), full_page=True)

    page.click(f"#lists a:has-text('{patient}') >> nth=0")
    page.click("text=Ik ben casemanager")
    main = page.inner_text("main")
    assert "verwijzing ontvangen: Val thuis, pijn in de heup" in main
    assert "triage U0" in main and "Wijkverpleging Oost" in main
    page.select_option("form[action$='/handover'] select[name=to]", "http://fhir.nl/fhir/NamingSystem/ura|90000010")
    page.fill("form[action$='/handover'] input[name=reason]", "opname nodig, specialist neemt over")
    page.click("text=Overdracht voorstellen")
    assert "Overdracht Wijkverpleging Oost → Ziekenhuis Zuidrand: proposed" in page.inner_text("main")

    ops = stack.client("ops")
    timeline = httpx.get(f"{stack.url('coordination')}/api/v1/patients/{patient}/timeline",
                         headers=ops.headers()).json()
    proposal = next(e for e in timeline["episodes"] if e["patient"]["identifier"]["value"] == patient)
    handovers = httpx.get(f"{stack.url('coordination')}/fhir/EpisodeOfCare", params={"patient": patient},
                          headers=ops.headers()).json()
    assert handovers["entry"][0]["resource"]["careManager"]["display"] == "casemanager"
    zuidrand, wijk = stack.client("ehr-zuidrand"), stack.client("ehr-wijk-oost")
    waiting = httpx.get(f"{stack.url('coordination')}/api/v1/lead-handovers", headers=zuidrand.headers()).json()
    handover_id = next(h["id"] for h in waiting["items"] if h["episode_id"] == proposal["id"])
    assert httpx.get(f"{stack.url('coordination')}/api/v1/lead-handovers",
                     headers=wijk.headers()).json()["items"] == []
    refused = httpx.post(f"{stack.url('coordination')}/api/v1/lead-handovers/{handover_id}/accept",
                         headers=wijk.headers())
    assert refused.status_code == 403  # only the receiving organisation answers
    accepted = httpx.post(f"{stack.url('coordination')}/api/v1/lead-handovers/{handover_id}/accept",
                          headers=zuidrand.headers())
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    page.reload()
    assert page.inner_text("#lead") == "Ziekenhuis Zuidrand"
    assert "overdracht geaccepteerd door Ziekenhuis Zuidrand" in page.inner_text("main")

    page.fill("form[action$='/escalate'] input[name=reason]", "patiënt belt opnieuw, pijn neemt toe")
    page.click("form[action$='/escalate'] button")
    assert "taak geëscaleerd bij Wijkverpleging Oost: patiënt belt opnieuw, pijn neemt toe" in page.inner_text("main")
    escalated = [t for t in wijk.tasks() if t["for"]["identifier"]["value"] == patient][0]
    assert escalated["priority"] == "stat" and escalated["businessStatus"]["text"].startswith("geëscaleerd")
    page.select_option("form[action$='/reassign'] select[name=to]", "http://fhir.nl/fhir/NamingSystem/ura|90000030")
    page.fill("form[action$='/reassign'] input[name=reason]", "kortdurend verblijf")
    page.click("form[action$='/reassign'] button")
    assert "taak overgedragen: Wijkverpleging Oost → Regionaal Transferpunt" in page.inner_text("main")
    page.screenshot(path=str(SHOTS / "casemanager-patient.png"), full_page=True)
    page.close()

