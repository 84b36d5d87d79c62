"""The triage nurse's shift in a real browser: a referral appears live, is triaged and leaves the worklist;
a second call for the same patient is linked, not triaged again, unless the nurse explicitly re-triages."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

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

    page.click("#rows a:has-text('Triëren')")
    assert "Benauwd, koorts" in page.inner_text("main")
    triage_url = page.url
    # Nothing is preselected: submitting untouched records nothing, and each choice is needed.
    for name in ("urgency", "disposition", "assigned_organization"):
        assert page.eval_on_selector(f"select[name={name}]", "s => s.value") == ""
    page.click("button[type=submit]")
    assert page.url == triage_url and "Triage vastgelegd" not in page.inner_text("main")
    page.select_option("select[name=urgency]", "U2")
    page.select_option("select[name=disposition]", "home-visit")
    page.click("button[type=submit]")
    assert page.url == triage_url
    assert page.eval_on_selector("select[name=assigned_organization]", "s => s.validity.valueMissing")
    # The directory decides: an ambulance is not offered to the community nurses, a home visit is.
    wijk_oost = "select[name=assigned_organization] option[value='http://fhir.nl/fhir/NamingSystem/ura|90000020']"
    page.select_option("select[name=disposition]", "ambulance")
    assert page.eval_on_selector(wijk_oost, "o => o.disabled")
    page.select_option("select[name=disposition]", "home-visit")
    assert not page.eval_on_selector(wijk_oost, "o => o.disabled")
    page.select_option("select[name=assigned_organization]", "http://fhir.nl/fhir/NamingSystem/ura|90000020")
    assert "open op de streeftijd" in page.inner_text(wijk_oost)
    page.fill("textarea[name=note]", "Visite binnen het uur")
    page.screenshot(path=str(SHOTS / "triage-page.png"), full_page=True)
    page.click("button[type=submit]")
    page.wait_for_url("**?done=1")
    confirmation = page.inner_text("#confirmation")
    assert "Triage vastgelegd" in confirmation and "U2 · Visite aan huis → Wijkverpleging Oost" in confirmation
    page.click("#confirmation >> text=Terug naar de werklijst")
    page.wait_for_url(f"{stack.url('triage')}/console")
    assert "Jansen-Ĳsselstein" in page.inner_text("#rows")  # still listed, now triaged with its target time
    assert "U2" in page.inner_text("#rows") and "nog" in page.inner_text("#rows")
    page.goto(f"{stack.url('triage')}/console?urgency=U0")
    assert "Jansen-Ĳsselstein" not in page.inner_text("#rows")

    # The daughter calls: same patient, recorded by the nurse, linked to the open request.
    page.goto(f"{stack.url('triage')}/console/contacts/new?bsn=999990032")
    assert "Ingrid Jansen-Ĳsselstein" in page.inner_text("main")
    page.select_option("select[name=channel]", "phone")
    page.select_option("select[name=caller]", "relative")
    page.fill("input[name=callback_phone]", "06-12345678")
    page.fill("textarea[name=complaint]", "Dochter belt: moeder erg benauwd")
    page.click("form[action='/console/contacts'] button")
    main = page.inner_text("main")
    assert "gekoppeld aan de open aanvraag" in main and "Eerdere triage" in main and "Visite aan huis" in main
    # What the daughter said is kept, with who called and the number to call back.
    linked = page.inner_text("#linked-contacts")
    assert "via telefoon · naaste · terugbellen 06-12345678 · na de triage: Dochter belt: moeder erg benauwd" in linked
    request_url = page.url.split("?")[0]
    page.goto(f"{stack.url('triage')}/console")
    assert "nieuw contact sinds triage" in page.inner_text("#rows")
    page.goto(request_url)
    deadline = time.monotonic() + 20
    while "Wijkverpleging Oost · nieuw" not in page.inner_text("main"):  # the open Task, from coordination
        assert time.monotonic() < deadline, "the open Task did not show on the triage page"
        page.reload()
    assert "Opnieuw triëren" in main
    # The re-triage form starts from the current triage and says what changes.
    assert [page.eval_on_selector(f"select[name={name}]", "s => s.value")
            for name in ("urgency", "disposition", "assigned_organization")] == [
        "U2", "home-visit", "http://fhir.nl/fhir/NamingSystem/ura|90000020"]
    assert page.inner_text("#changes") == "Nog niets gewijzigd."
    page.select_option("select[name=urgency]", "U1")
    page.select_option("select[name=disposition]", "ambulance")
    assert page.eval_on_selector("select[name=assigned_organization]", "s => s.value") == ""  # no longer offered
    page.select_option("select[name=assigned_organization]", "http://fhir.nl/fhir/NamingSystem/ura|90000001")
    changes = page.inner_text("#changes")
    assert "urgentie U2 → U1" in changes and "vervolgactie → Ambulance" in changes
    assert "organisatie → Spoedzorg Regio Demo" in changes
    page.fill("input[name=retriage_reason]", "verslechterd volgens dochter")
    page.click("button[type=submit]")
    page.wait_for_url("**?done=1")
    assert "opnieuw getrieerd: verslechterd volgens dochter" in page.inner_text("#confirmation")
    page.close()

    ops, wijk = stack.client("ops"), stack.client("ehr-wijk-oost")
    request = next(i for i in ops.worklist("triaged") if i["channel"] == "referral")
    assert request["urgency"] == "U1" and request["disposition"] == "ambulance"
    detail = httpx.get(f"{stack.url('triage')}/api/v1/requests/{request['id']}", headers=ops.headers()).json()
    assert [(c["channel"], c["caller"], c["callback_phone"], c["complaint"]) for c in detail["contacts"]] == [
        ("phone", "relative", "06-12345678", "Dochter belt: moeder erg benauwd")]
    assert [(t["urgency"], t["disposition"], t["retriage_reason"]) for t in detail["triages"]] == [
        ("U2", "home-visit", None), ("U1", "ambulance", "verslechterd volgens dochter")]
    assert httpx.get(f"{stack.url('triage')}/api/v1/requests/unknown", headers=ops.headers()).status_code == 404
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        cancelled = [t for t in wijk.tasks() if t["status"] == "cancelled"]
        if cancelled:
            break
        time.sleep(0.3)
    assert cancelled and "opnieuw getrieerd: verslechterd volgens dochter" in cancelled[0]["statusReason"]["text"]
    assert len([t for t in ops.tasks() if t["basedOn"][0]["identifier"]["value"] == request["id"]]) == 2


def test_an_ambulance_to_the_community_nurses_is_refused_by_the_api_and_the_console(stack: Stack) -> None:
    ops = stack.client("ops")
    posted = stack.client("ehr-delinde").post_referral(referral_bundle(bsn="999990068", reason="Pijn op de borst"))
    request_id = ops.request_for(service_request_of(posted.json()))["id"]
    refused = ops.triage_request(request_id, urgency="U1", disposition="ambulance", organization="URA 90000020")
    assert refused.status_code == 422, refused.text
    assert "Wijkverpleging Oost does not provide Ambulance (ambulance)" in refused.json()["issue"][0]["diagnostics"]
    nurse, _ = open_console(stack, "triage", username="triagist", password="demo-triagist")
    form = nurse.get(f"{stack.url('triage')}/console/requests/{request_id}").text
    csrf = form.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    page = nurse.post(f"{stack.url('triage')}/console/requests/{request_id}/triage", data={
        "urgency": "U1", "disposition": "ambulance", "csrf_token": csrf,
        "assigned_organization": "http://fhir.nl/fhir/NamingSystem/ura|90000020"})
    assert page.status_code == 422 and "Wijkverpleging Oost levert deze vervolgactie niet" in page.text
    untouched = nurse.post(f"{stack.url('triage')}/console/requests/{request_id}/triage", data={"csrf_token": csrf})
    assert untouched.status_code == 422 and "Kies de urgentie. Kies de vervolgactie. Kies de organisatie." in \
        untouched.text
    assert request_id in [i["id"] for i in ops.worklist()]  # still open: nothing was recorded
    assert ops.triage_request(request_id, urgency="U1", disposition="ambulance",
                              organization="URA 90000001").status_code == 200


def test_routing_to_an_organisation_closed_at_the_due_time_needs_a_reason_which_is_recorded(stack: Stack) -> None:
    ops = stack.client("ops")
    posted = stack.client("ehr-delinde").post_referral(referral_bundle(bsn="999990081", reason="Hoest"))
    request = ops.request_for(service_request_of(posted.json()))
    due = datetime.fromisoformat(request["received_at"]).astimezone(ZoneInfo("Europe/Amsterdam")) + timedelta(hours=3)
    # Het Plein opens two hours after this U3 request is due (and closes three hours after).
    opens, closes = due + timedelta(hours=2), due + timedelta(hours=3)
    admin, _ = open_console(stack, "triage", username="beheer", password="demo-beheer")
    settings = admin.get(f"{stack.url('triage')}/console/settings").text
    csrf = settings.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    assert admin.post(f"{stack.url('triage')}/console/settings/directory", data={
        "csrf_token": csrf, "org": "http://fhir.nl/fhir/NamingSystem/agb-z|01000002",
        "hours": f"{opens:%H:%M}-{closes:%H:%M}", "dispositions": ["home-visit"]}).status_code == 200
    refused = ops.triage_request(request["id"], urgency="U3", disposition="home-visit", organization="AGB 01000002")
    assert refused.status_code == 422, refused.text
    assert "Huisartsenpraktijk Het Plein is closed at the due time" in refused.json()["issue"][0]["diagnostics"]
    assert ops.triage_request(request["id"], urgency="U3", disposition="home-visit", organization="AGB 01000002",
                              closed_reason="praktijk neemt de visite over").status_code == 200
    nurse, _ = open_console(stack, "triage", username="triagist", password="demo-triagist")
    page = nurse.get(f"{stack.url('triage')}/console/requests/{request['id']}").text
    assert "gesloten op de streeftijd, reden: praktijk neemt de visite over" in page


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
    # Open from 17:00 only, the practice may be closed when this is due: the reason is given either way.
    triaged = ops.triage_request(item["id"], urgency="U3", disposition="remote-advice", organization="AGB 01000001",
                                 closed_reason="praktijk belt zelf terug")
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
