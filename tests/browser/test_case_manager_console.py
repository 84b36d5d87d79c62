"""The case manager in a real browser: live worklists, a patient's timeline across organisations, taking the
case, handing over the hoofdbehandelaar role (accepted by the receiving organisation), reassigning a Task."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from math import ceil
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Browser, Page

from infra.client import service_request_of
from infra.referrals import referral_bundle
from infra.stack import ROOT, Stack
from shared.console import SESSION_CHECK_SECONDS
from tests.conftest import started_stack
from tests.e2e.consoles import open_console

pytestmark = pytest.mark.e2e
SHOTS = ROOT / "test-artifacts" / "screenshots"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from started_stack(tmp_path_factory, "casemanager")


# The patients of these tests: name, birth date, home address, mobile.
PEOPLE = {
    "999990019": ("Aaltje", "Bakker", "1937-11-02", ("Molenweg 3", "1234 AB", "Oostdorp"), "06-22334455"),
    "999990044": ("Sören", "Müller-Lüdenscheidt", "1979-09-09", ("Havenkade 8", "1235 CD", "Oostdorp"), "06-33445566"),
    "999990056": ("Fatma", "Yılmaz", "1990-04-17", ("Lindelaan 12", "1236 EF", "Oostdorp"), "06-44556677"),
    "999990111": ("Hendrik", "Jansen", "1936-02-29", ("Kerkstraat 4", "1237 GH", "Oostdorp"), "06-55667788"),
    "999990123": ("Grietje", "de Boer", "1944-07-01", ("Dijkweg 2", "1238 IJ", "Oostdorp"), "06-66778899"),
    "999990068": ("Willem", "Visser", "1941-03-15", ("Polderweg 7", "1239 KL", "Oostdorp"), "06-77889900"),
}


def route(stack: Stack, bsn: str, urgency: str, disposition: str, organisation: str,
          reason: str = "Val thuis, pijn in de heup", note: str = "") -> str:
    ops = stack.client("ops")
    given, family, born, address, phone = PEOPLE[bsn]
    posted = stack.client("ehr-delinde").post_referral(referral_bundle(
        bsn=bsn, reason=reason, given=given, family=family, birth_date=born, address=address, phone=phone))
    sr = service_request_of(posted.json())
    item = ops.request_for(sr)
    ops.triage_request(item["id"], urgency=urgency, disposition=disposition, organization=organisation,
                       note=note).raise_for_status()
    return str(item["patient"])


def log_in(stack: Stack, browser: Browser) -> Page:
    return log_in_on(stack, browser.new_page(viewport={"width": 1366, "height": 768}))


def log_in_on(stack: Stack, page: Page) -> Page:
    """Log in as the case manager on `page` (a tab of a workstation's browser context)."""
    page.goto(f"{stack.url('coordination')}/console")
    if page.locator("input[name=password]").count():
        page.fill("input[name=username]", "casemanager")
        page.fill("input[name=password]", "demo-casemanager")
        page.keyboard.press("Enter")
    page.wait_for_url(f"{stack.url('coordination')}/console")
    return page


def test_case_manager_follows_a_patient_and_hands_over_the_lead(stack: Stack, browser: Browser) -> None:
    patient = route(stack, "999990019", "U0", "home-visit", "URA 90000020")  # U0: due at once, so overdue
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = log_in(stack, browser)
    deadline = time.monotonic() + 30
    while "Aaltje Bakker" not in page.inner_text("#lists"):
        assert time.monotonic() < deadline, "the patient's Task did not show"
        page.reload()
    assert "(te laat)" in page.inner_text("#lists")
    # Live: a second patient appears without reloading the page.
    other = route(stack, "999990044", "U3", "community-nursing", "URA 90000020")
    page.wait_for_function(f"document.getElementById('lists').innerText.includes('{other}')", timeout=30000)
    page.screenshot(path=str(SHOTS / "casemanager-worklists.png"), full_page=True)

    page.click("#lists a:has-text('Aaltje Bakker') >> nth=0")
    assert page.inner_text("#patient-name").startswith("Aaltje Bakker, ")
    page.click("text=Ik ben casemanager")
    main = page.inner_text("main")
    assert "verwijzing ontvangen: Val thuis, pijn in de heup" in main
    assert "U0 reanimatie (Val thuis, pijn in de heup): Visite aan huis door Wijkverpleging Oost" in main
    # No organisation is preselected for the lead role; sent without one, it is refused with the reason kept.
    assert page.input_value("form[action$='/handover'] select[name=to]") == ""
    page.fill("form[action$='/handover'] input[name=reason]", "opname nodig, specialist neemt over")
    page.click("text=Overdracht voorstellen")
    assert page.inner_text("[role=alert]") == "Kies een organisatie uit de lijst."
    assert page.input_value("form[action$='/handover'] input[name=reason]") == "opname nodig, specialist neemt over"
    page.select_option("form[action$='/handover'] select[name=to]", "http://fhir.nl/fhir/NamingSystem/ura|90000010")
    page.click("text=Overdracht voorstellen")
    assert "Overdracht Wijkverpleging Oost → Ziekenhuis Zuidrand: voorgesteld" in page.inner_text("main")

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
    # The escalation is marked on the timeline and on the Task's row, which says what the Task is and how urgent.
    assert page.locator("#timeline tr.escalation .badge.escalation", has_text="escalatie").count() == 1
    escalated_row = page.inner_text("#tasks tr.escalation")
    assert "Visite aan huis" in escalated_row and "U0 reanimatie" in escalated_row and "geëscaleerd" in escalated_row
    escalated = [t for t in wijk.tasks() if t["for"]["identifier"]["value"] == patient][0]
    assert escalated["priority"] == "stat" and escalated["businessStatus"]["text"].startswith("geëscaleerd")
    # The transfer point only places patients in care beds: a home visit is not offered to it.
    offered = page.eval_on_selector_all("form[action$='/reassign'] select[name=to] option",
                                        "options => options.map(o => o.value)")
    assert "http://fhir.nl/fhir/NamingSystem/ura|90000030" not in offered
    assert "http://fhir.nl/fhir/NamingSystem/ura|90000001" in offered
    # Nothing is preselected: sent without a choice, the form is refused in words and keeps the reason.
    assert page.input_value("form[action$='/reassign'] select[name=to]") == ""
    page.fill("form[action$='/reassign'] input[name=reason]", "visite door de post")
    page.click("form[action$='/reassign'] button")
    assert page.inner_text("[role=alert]") == "Kies een organisatie uit de lijst."
    assert page.input_value("form[action$='/reassign'] input[name=reason]") == "visite door de post"
    page.select_option("form[action$='/reassign'] select[name=to]", "http://fhir.nl/fhir/NamingSystem/ura|90000001")
    page.click("form[action$='/reassign'] button")
    assert "overgedragen: Wijkverpleging Oost → Spoedzorg Regio Demo" in page.inner_text("main")
    page.screenshot(path=str(SHOTS / "casemanager-patient.png"), full_page=True)
    page.close()



def test_case_manager_finds_a_patient_by_name_and_birth_date_and_reads_the_timeline_with_names(
        stack: Stack, browser: Browser) -> None:
    patient = route(stack, "999990056", "U2", "home-visit", "URA 90000020",
                    reason="Koorts en rillingen, wond aan het onderbeen rood", note="Wond beoordelen binnen het uur")
    page = log_in(stack, browser)
    # The worklist names the patient, with age, complaint, urgency and triage note; the pseudonym stays small.
    page.wait_for_function("document.getElementById('lists').innerText.includes('Fatma Yılmaz')", timeout=30000)
    row = page.locator("#lists tr", has_text="Fatma Yılmaz").first
    for shown in ("Koorts en rillingen", "U2", "Wond beoordelen binnen het uur", patient):
        assert shown in row.inner_text(), shown
    assert row.locator("a.patient").inner_text() == "Fatma Yılmaz"

    page.fill("#patient-search input[name=name]", "yılmaz")
    page.fill("#patient-search input[name=birthdate]", "1990-04-17")
    page.click("#patient-search button")
    page.wait_for_url("**/console/patients?*")
    found = page.inner_text("#found")
    assert "Fatma Yılmaz" in found and "Lindelaan 12, 1236 EF Oostdorp" in found and "06-44556677" in found
    assert "Aaltje Bakker" not in found
    page.screenshot(path=str(SHOTS / "casemanager-search.png"), full_page=True)
    page.click("#found a.patient")
    assert page.inner_text("#patient-name").startswith("Fatma Yılmaz, ")
    details = page.inner_text("#person")
    for shown in ("17-04-1990", "Lindelaan 12, 1236 EF Oostdorp", "06-44556677", "999990056",
                  "Zorgverzekeraar Noord (UZOVI 9001)"):
        assert shown in details, shown
    requests = page.inner_text("#requests")
    assert "Koorts en rillingen" in requests and "U2" in requests and "Wond beoordelen binnen het uur" in requests
    main = page.inner_text("main")
    assert "U2 spoed (Koorts en rillingen, wond aan het onderbeen rood)" in main
    assert "notitie: Wond beoordelen binnen het uur" in main
    page.screenshot(path=str(SHOTS / "casemanager-patient-named.png"), full_page=True)

    # A search with a name but no birth date is refused and says why; nobody is shown.
    page.goto(f"{stack.url('coordination')}/console/patients?name=Bakker")
    assert "naam én geboortedatum" in page.inner_text("[role=alert]") and page.locator("#found").count() == 0

    ops = stack.client("ops")
    timeline = httpx.get(f"{stack.url('coordination')}/api/v1/patients/{patient}/timeline",
                         headers=ops.headers()).json()
    assert timeline["person"]["name"] == "Fatma Yılmaz" and timeline["person"]["age"] >= 36
    assert timeline["requests"][0]["complaint"].startswith("Koorts") and \
        timeline["requests"][0]["triage_note"] == "Wond beoordelen binnen het uur"
    audit = httpx.get(f"{stack.url('coordination')}/fhir/AuditEvent", params={"patient": patient},
                      headers=ops.headers()).json()
    what = "console patient search by name and birth date"
    searches = [e["resource"] for e in audit["entry"] if e["resource"]["entity"][-1]["what"].get("display") == what]
    assert searches and searches[0]["agent"][0]["who"]["identifier"]["value"] == "casemanager"
    page.close()


def test_a_second_call_shows_its_words_on_the_timeline_and_the_console_speaks_english_when_chosen(
        stack: Stack, browser: Browser) -> None:
    patient = route(stack, "999990111", "U3", "home-visit", "URA 90000020", reason="Benauwd sinds vanochtend")
    ops = stack.client("ops")
    call = ops.record_contact(channel="phone", bsn="999990111", name="Hendrik Jansen", birth_date="1936-02-29",
                              uzovi="9001", complaint="Dochter belt: vader is verward en valt steeds",
                              caller="relative", callback_phone="06-99887766")
    assert call.status_code == 201 and call.json()["linked_to_open_request"], call.text
    request_id = call.json()["request"]["id"]
    called = httpx.get(f"{stack.url('triage')}/api/v1/requests/{request_id}", headers=ops.headers()).json()
    heard = datetime.fromisoformat(called["contacts"][-1]["received_at"]).astimezone(ZoneInfo("Europe/Amsterdam"))

    page = log_in(stack, browser)
    page.goto(f"{stack.url('coordination')}/console/patients/{patient}")
    deadline = time.monotonic() + 30
    while page.locator("#timeline tr.call").count() == 0:
        assert time.monotonic() < deadline, "the linked call did not reach the timeline"
        page.reload()
    row = page.locator("#timeline tr.call")
    assert row.count() == 1
    said = row.inner_text()
    for shown in (heard.strftime("%d-%m %H:%M"), "gekoppeld contact", "telefoon", "naaste", "terugbellen 06-99887766",
                  "Dochter belt: vader is verward en valt steeds"):
        assert shown in said, shown
    assert "phone" not in said and "relative" not in said
    main = page.inner_text("main")
    assert "triage triage" not in main and "requested" not in main and "http://fhir.nl" not in main
    tasks = page.inner_text("#tasks")
    assert "Visite aan huis" in tasks and "U3 dringend" in tasks and "nieuw" in tasks
    # Each organisation offered for reassignment says, by name, whether it is open at the Task's due time.
    offered = page.eval_on_selector_all("form[action$='/reassign'] select[name=to] option:not([value=''])",
                                        "options => options.map(o => o.textContent)")
    assert offered and all(o.endswith(("open op de streeftijd", "gesloten op de streeftijd")) for o in offered)
    assert not any("|" in o or "http" in o for o in offered)
    # A form sent with an organisation that does not make home visits is refused in words, and nothing changes.
    page.eval_on_selector("form[action$='/reassign'] select[name=to] option",
                          "o => { o.value = 'http://fhir.nl/fhir/NamingSystem/ura|90000030'; o.selected = true; }")
    page.fill("form[action$='/reassign'] input[name=reason]", "bed nodig")
    page.click("form[action$='/reassign'] button")
    assert page.inner_text("[role=alert]") == ("Regionaal Transferpunt levert geen Visite aan huis; kies een "
                                               "organisatie die dat wel doet.")
    assert "Wijkverpleging Oost" in page.inner_text("#tasks") and "overgedragen:" not in page.inner_text("main")
    page.goto(f"{stack.url('coordination')}/console/patients/{patient}")
    page.screenshot(path=str(SHOTS / "casemanager-linked-call.png"), full_page=True)

    page.goto(f"{stack.url('coordination')}/console/patients/{patient}?lang=en")
    english = page.inner_text("main")
    for shown in ("Timeline", "Tasks", "linked contact", "phone", "relative", "call back 06-99887766",
                  "Dochter belt: vader is verward en valt steeds", "Home visit", "U3 urgent", "Reassign"):
        assert shown in english, shown
    for dutch in ("Tijdlijn", "Taken", "gekoppeld contact", "telefoon", "naaste", "Visite aan huis", "Overdragen",
                  "nieuw"):
        assert dutch not in english, dutch
    assert page.locator("#tasks .badge", has_text="new").count() >= 1
    page.screenshot(path=str(SHOTS / "casemanager-patient-english.png"), full_page=True)
    page.goto(f"{stack.url('coordination')}/console")  # the choice is remembered
    lists = page.inner_text("main")
    assert "Case management" in lists and "Open Tasks in the region" in lists and "Casemanagement" not in lists
    nav = page.inner_text("header nav")
    assert "Worklists" in nav and "Find a patient" in nav and "Werklijsten" not in nav
    page.goto(f"{stack.url('coordination')}/console/directory")
    directory = page.inner_text("main")
    assert "community nursing" in directory and "Home visit" in directory and "home-visit" not in directory
    # An unknown patient is a console page in the chosen language, with the menu and a way back.
    unknown = page.goto(f"{stack.url('coordination')}/console/patients/no-such-patient")
    assert unknown is not None and unknown.status == 404
    assert page.inner_text("h1") == "Unknown patient" and "no-such-patient" in page.inner_text("main")
    assert "Worklists" in page.inner_text("header nav")
    assert page.locator("main a", has_text="Back to the worklists").get_attribute("href") == "/console"
    page.goto(f"{stack.url('coordination')}/console/patients/{patient}?lang=nl")
    assert "Tijdlijn" in page.inner_text("main") and "gekoppeld contact" in page.inner_text("#timeline")
    page.close()


def set_u4_target(stack: Stack, minutes: str) -> None:
    """The admin sets U4's target time at the front door; the other urgencies keep their defaults."""
    admin, _ = open_console(stack, "triage", username="beheer", password="demo-beheer")
    page = admin.get(f"{stack.url('triage')}/console/settings").text
    csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    targets = {"U0": "0", "U1": "15", "U2": "60", "U3": "180", "U4": minutes, "U5": ""}
    assert admin.post(f"{stack.url('triage')}/console/settings/targets", data={
        "csrf_token": csrf, **{f"minutes_{u}": m for u, m in targets.items()}}).status_code == 200


def test_reassigning_in_the_console_to_a_practice_closed_at_the_due_time_asks_for_a_reason_and_records_it(
        stack: Stack, browser: Browser) -> None:
    # A U4 home visit due on a Saturday at noon, when the GP practices are closed.
    now = datetime.now(ZoneInfo("Europe/Amsterdam"))
    saturday = (now + timedelta(days=(5 - now.weekday()) % 7)).replace(hour=12, minute=0, second=0, microsecond=0)
    if saturday <= now:  # due a little after noon then, still on the Saturday; never over the 7-day maximum
        saturday += timedelta(days=7)
    set_u4_target(stack, str(ceil((saturday - now).total_seconds() / 60)))
    try:
        patient = route(stack, "999990123", "U4", "home-visit", "URA 90000020", reason="Katheter lekt")
    finally:
        set_u4_target(stack, "1440")
    page = log_in(stack, browser)
    page.goto(f"{stack.url('coordination')}/console/patients/{patient}")
    deadline = time.monotonic() + 30
    while page.locator("form[action$='/reassign']").count() == 0:
        assert time.monotonic() < deadline, "the Task did not show"
        page.reload()
    linde = "http://fhir.nl/fhir/NamingSystem/agb-z|01000001"
    option = page.locator(f"form[action$='/reassign'] select[name=to] option[value='{linde}']")
    assert option.inner_text() == "Huisartsenpraktijk De Linde — gesloten op de streeftijd"
    assert page.locator("form[action$='/reassign'] select[name=to] option[value$='|90000001']").inner_text() == \
        "Spoedzorg Regio Demo — open op de streeftijd"
    page.select_option("form[action$='/reassign'] select[name=to]", linde)
    page.fill("form[action$='/reassign'] input[name=reason]", "eigen huisarts")
    page.click("form[action$='/reassign'] button")
    assert page.inner_text("[role=alert]").startswith("Huisartsenpraktijk De Linde is gesloten op de streeftijd (")
    assert "overgedragen:" not in page.inner_text("#timeline")

    page.goto(f"{stack.url('coordination')}/console/patients/{patient}")
    page.select_option("form[action$='/reassign'] select[name=to]", linde)
    page.fill("form[action$='/reassign'] input[name=reason]", "eigen huisarts")
    page.fill("form[action$='/reassign'] input[name=closed_reason]", "huisarts belt zaterdag zelf")
    page.click("form[action$='/reassign'] button")
    page.wait_for_url(f"{stack.url('coordination')}/console/patients/{patient}")
    moved = page.locator("#timeline tr", has_text="overgedragen:").inner_text()
    assert ("overgedragen: Wijkverpleging Oost → Huisartsenpraktijk De Linde (gesloten op de streeftijd) "
            "(eigen huisarts; gesloten op de streeftijd, reden: huisarts belt zaterdag zelf)") in moved
    assert "Huisartsenpraktijk De Linde" in page.inner_text("#tasks")
    page.close()


def test_a_refusal_from_coordination_speaks_the_consoles_language_and_a_logout_elsewhere_ends_the_worklist(
        stack: Stack, browser: Browser) -> None:
    patient = route(stack, "999990068", "U3", "home-visit", "URA 90000020", reason="Kan niet meer opstaan")
    # Two workstations, one in each language; the English one has a second tab later.
    workstation = browser.new_context(viewport={"width": 1366, "height": 768})
    english, dutch = log_in_on(stack, workstation.new_page()), log_in(stack, browser)
    for page, lang in ((english, "en"), (dutch, "nl")):
        page.goto(f"{stack.url('coordination')}/console/patients/{patient}?lang={lang}")
        deadline = time.monotonic() + 30
        while page.locator("form[action$='/reassign']").count() == 0:
            assert time.monotonic() < deadline, "the Task did not show"
            page.reload()
    # Wijkverpleging Oost accepts the Task while both pages still offer to reassign it: coordination refuses.
    nurses = stack.client("ehr-wijk-oost")
    task = next(t for t in nurses.tasks(status="requested") if t["for"]["identifier"]["value"] == patient)
    nurses.patch_task(task["id"], [{"op": "replace", "path": "/status", "value": "accepted"}]).raise_for_status()
    spoedpost = "http://fhir.nl/fhir/NamingSystem/ura|90000001"
    for page in (english, dutch):
        page.select_option("form[action$='/reassign'] select[name=to]", spoedpost)
        page.fill("form[action$='/reassign'] input[name=reason]", "drukte")
        page.fill("form[action$='/reassign'] input[name=closed_reason]", "spoedpost kijkt mee")
        page.click("form[action$='/reassign'] button")
    assert english.inner_text("[role=alert]") == "A Task that is accepted is no longer reassigned."
    assert dutch.inner_text("[role=alert]") == "Een taak die geaccepteerd is, wordt niet meer overgedragen."
    for page in (english, dutch):
        assert "cannot be reassigned" not in page.inner_text("main") and "Task.owner" not in page.inner_text("main")
    assert task_owner(stack, task["id"]) == "90000020"

    # The worklists, left open; a logout in another tab of that workstation ends them: the page goes to the login.
    english.goto(f"{stack.url('coordination')}/console")
    english.wait_for_timeout(1500)  # its live stream is connected
    workstation.new_page().goto(f"{stack.url('coordination')}/console/logout")
    english.wait_for_selector("input[name=password]", timeout=(2 * SESSION_CHECK_SECONDS + 5) * 1000)
    workstation.close()
    dutch.close()


def task_owner(stack: Stack, task_id: str) -> str:
    ops = stack.client("ops")
    task = ops.http.get(f"{stack.url('coordination')}/fhir/Task/{task_id}", headers=ops.headers()).json()
    return str(task["owner"]["identifier"]["value"])
