"""The triage nurse's shift in a real browser: a referral appears live, is triaged and leaves the worklist;
a second call for the same patient is linked, not triaged again, unless the nurse explicitly re-triages."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import pytest
from playwright.sync_api import Browser

from infra.client import service_request_of
from infra.referrals import referral_bundle
from infra.stack import ROOT, Stack
from tests.conftest import started_stack
from tests.e2e.consoles import open_console

pytestmark = pytest.mark.e2e
SHOTS = ROOT / "test-artifacts" / "screenshots"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from started_stack(tmp_path_factory, "nurse")


def test_nurse_sees_a_referral_live_triages_it_and_a_second_call_is_linked(stack: Stack, browser: Browser) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    page.goto(f"{stack.url('triage')}/console")
    page.fill("input[name=username]", "triagist")
    page.fill("input[name=password]", "demo-triagist")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{stack.url('triage')}/console")
    page.wait_for_timeout(1500)  # the live stream is connected
    stack.client("ehr-delinde").post_referral(referral_bundle(
        bsn="999990032", given="Ingrid", family="Jansen-Ĳsselstein", reason="Benauwd, koorts")).raise_for_status()
    page.wait_for_function("document.getElementById('rows').innerText.includes('Jansen-Ĳsselstein')", timeout=20000)
    page.screenshot(path=str(SHOTS / "triage-worklist.png"), full_page=True)

    page.click("text=Triëren")
    assert "Benauwd, koorts" in page.inner_text("main")
    page.select_option("select[name=urgency]", "U2")
    page.select_option("select[name=disposition]", "home-visit")
    page.select_option("select[name=assigned_organization]", "http://fhir.nl/fhir/NamingSystem/ura|90000020")
    page.fill("textarea[name=note]", "Visite binnen het uur")
    page.screenshot(path=str(SHOTS / "triage-page.png"), full_page=True)
    page.click("button[type=submit]")
    page.wait_for_url(f"{stack.url('triage')}/console")
    assert "Jansen-Ĳsselstein" in page.inner_text("#rows")  # still listed, now triaged with its target time
    assert "U2" in page.inner_text("#rows") and "nog" in page.inner_text("#rows")
    page.goto(f"{stack.url('triage')}/console?urgency=U0")
    assert "Jansen-Ĳsselstein" not in page.inner_text("#rows")

    # The daughter calls: same patient, recorded by the nurse, linked to the open request.
    page.goto(f"{stack.url('triage')}/console/contacts/new?bsn=999990032")
    assert "Ingrid Jansen-Ĳsselstein" in page.inner_text("main")
    page.select_option("select[name=channel]", "phone")
    page.fill("textarea[name=complaint]", "Dochter belt: moeder erg benauwd")
    page.click("form[action='/console/contacts'] button")
    main = page.inner_text("main")
    assert "gekoppeld aan de open aanvraag" in main and "Eerdere triage" in main and "Visite aan huis" in main
    deadline = time.monotonic() + 20
    while "Wijkverpleging Oost · requested" not in page.inner_text("main"):  # the open Task, from coordination
        assert time.monotonic() < deadline, "the open Task did not show on the triage page"
        page.reload()
    assert "Opnieuw triëren" in main
    page.select_option("select[name=urgency]", "U1")
    page.select_option("select[name=disposition]", "ambulance")
    page.select_option("select[name=assigned_organization]", "http://fhir.nl/fhir/NamingSystem/ura|90000001")
    page.fill("input[name=retriage_reason]", "verslechterd volgens dochter")
    page.click("button[type=submit]")
    page.wait_for_url(f"{stack.url('triage')}/console")
    page.close()

    ops, wijk = stack.client("ops"), stack.client("ehr-wijk-oost")
    request = next(i for i in ops.worklist("triaged") if i["channel"] == "referral")
    assert request["urgency"] == "U1" and request["disposition"] == "ambulance"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        cancelled = [t for t in wijk.tasks() if t["status"] == "cancelled"]
        if cancelled:
            break
        time.sleep(0.3)
    assert cancelled and "opnieuw getrieerd: verslechterd volgens dochter" in cancelled[0]["statusReason"]["text"]
    assert len([t for t in ops.tasks() if t["basedOn"][0]["identifier"]["value"] == request["id"]]) == 2


def test_the_front_door_changes_target_times_and_the_directory_without_code(stack: Stack) -> None:
    admin, settings = open_console(stack, "triage", username="beheer", password="demo-beheer")
    page = admin.get(f"{stack.url('triage')}/console/settings")
    csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    targets = {"minutes_U0": "0", "minutes_U1": "10", "minutes_U2": "45", "minutes_U3": "120", "minutes_U4": "1440",
               "minutes_U5": ""}
    assert admin.post(f"{stack.url('triage')}/console/settings/targets",
                      data={**targets, "csrf_token": csrf}).status_code == 200
    refused = admin.post(f"{stack.url('triage')}/console/settings/directory", data={
        "csrf_token": csrf, "org": "http://fhir.nl/fhir/NamingSystem/agb-z|01000001", "hours": "25:00-08:00",
        "dispositions": ["home-visit"]})
    assert refused.status_code == 422 and "HH:MM-HH:MM" in refused.text
    saved = admin.post(f"{stack.url('triage')}/console/settings/directory", data={
        "csrf_token": csrf, "org": "http://fhir.nl/fhir/NamingSystem/agb-z|01000001", "hours": "17:00-08:00",
        "dispositions": ["home-visit", "remote-advice"]})
    assert saved.status_code == 200
    ops = stack.client("ops")
    entry = next(o for o in httpx.get(f"{stack.url('triage')}/api/v1/directory", headers=ops.headers()).json()[
        "organizations"] if o["identifier"] == "AGB 01000001")
    assert entry["hours"] == "17:00-08:00" and entry["dispositions"] == ["home-visit", "remote-advice"]

    posted = stack.client("ehr-delinde").post_referral(referral_bundle(bsn="999990020"))
    sr = service_request_of(posted.json())
    item = ops.request_for(sr)
    triaged = ops.triage_request(item["id"], urgency="U3", disposition="remote-advice", organization="AGB 01000001")
    body = triaged.json()
    due = datetime.fromisoformat(body["due_at"]) - datetime.fromisoformat(body["received_at"])
    assert due == timedelta(minutes=120)


def test_the_console_speaks_dutch_by_default_and_english_when_asked(stack: Stack) -> None:
    nurse, page = open_console(stack, "triage", username="triagist", password="demo-triagist")
    assert "Werklijst acute aanvragen" in page.text and '<html lang="nl">' in page.text
    english = nurse.get(f"{stack.url('triage')}/console?lang=en")
    assert "Worklist of acute requests" in english.text and '<html lang="en">' in english.text
    assert "Worklist of acute requests" in nurse.get(f"{stack.url('triage')}/console").text  # remembered
    assert "Record a phone or walk-in contact" in nurse.get(f"{stack.url('triage')}/console/contacts/new").text
    assert "Werklijst acute aanvragen" in nurse.get(f"{stack.url('triage')}/console?lang=nl").text
