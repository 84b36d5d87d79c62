"""In a real browser, the triage console as a night nurse reads it: channels, statuses and due days in words, a
lookup result that fills the contact form and points at the patient's open request, the referrer by name, how to
reach the patient, Dutch form errors that keep what was typed, login refusals as Dutch pages, a plain logout link,
a favicon and no errors in the browser's console. Screenshots of the pages go to test-artifacts/screenshots."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from infra.client import service_request_of
from infra.referrals import referral_bundle
from infra.stack import ROOT, Stack
from shared.console import SESSION_CHECK_SECONDS
from tests.conftest import started_stack
from tests.e2e.consoles import open_console

pytestmark = pytest.mark.e2e
SHOTS = ROOT / "test-artifacts" / "screenshots"
RAW_CODES = re.compile(r"\b(referral|phone|walk-in|open|triaged|in-progress|requested)\b")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from started_stack(tmp_path_factory, "nurse-words")


@pytest.fixture
def workstation(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="nl-NL")
    yield context
    context.close()


class Watched:
    """What the browser itself complains about on a page: console errors, uncaught exceptions, failed loads."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"page: {e}"))
        page.on("response", lambda r: self.errors.append(f"{r.status}: {r.url}") if r.status >= 400 else None)


def log_in(page: Page, url: str, username: str, password: str) -> None:
    page.goto(f"{url}/console")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.keyboard.press("Enter")


def shoot(page: Page, name: str) -> None:
    """A screenshot as the other browser tests take them (test-artifacts/screenshots; the README's copies are in
    tests/browser/screenshots)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


def test_a_lookup_result_fills_the_form_and_the_request_page_says_who_referred_and_how_to_reach(
        stack: Stack, workstation: BrowserContext) -> None:
    stack.client("ehr-delinde").post_referral(referral_bundle(
        bsn="999990032", given="Ingrid", family="Jansen-Ĳsselstein", birth_date="1948-03-12",
        reason="Benauwd, koorts", address=("Lindelaan 4", "1234 AB", "Regiostad"),
        phone="06-11112222")).raise_for_status()
    page = workstation.new_page()
    watched = Watched(page)
    log_in(page, stack.url("triage"), "triagist", "demo-triagist")
    page.goto(f"{stack.url('triage')}/console/contacts/new")
    page.fill("#lookup input[name=bsn]", "999990032")
    with page.expect_navigation():
        page.click("#lookup button")
    match = page.locator("li.match")
    assert match.count() == 1
    assert not page.is_visible("#chosen")  # "filled in from the chosen patient" only once one was chosen
    text = match.inner_text()
    assert "Ingrid Jansen-Ĳsselstein" in text and "12-03-1948" in text and "jaar)" in text
    assert "heeft een open aanvraag" in text and "te triëren" in text
    open_link = match.locator("a").get_attribute("href")
    assert open_link is not None and open_link.startswith("/console/requests/")
    # What the caller says is typed while the patient is looked up; choosing the patient keeps it.
    page.fill("textarea[name=complaint]", "Dochter belt: moeder erg benauwd")
    page.click("button.choose")
    form = "#contact-form"
    assert [page.input_value(f"{form} [name={n}]") for n in (
        "name", "birth_date", "bsn", "address_line", "postal_code", "city", "callback_phone", "uzovi")] == [
        "Ingrid Jansen-Ĳsselstein", "1948-03-12", "999990032", "Lindelaan 4", "1234 AB", "Regiostad", "06-11112222",
        "9001"]
    assert page.input_value(f"{form} textarea[name=complaint]") == "Dochter belt: moeder erg benauwd"
    assert page.is_visible("#chosen")
    page.select_option(f"{form} select[name=caller]", "relative")
    page.fill(f"{form} input[name=callback_phone]", "06-12345678")
    shoot(page, "triage-contact.png")
    assert page.eval_on_selector(f"{form} input[name=callback_phone]", "i => i.validity.valid")
    with page.expect_navigation():
        page.click(f"{form} button")
    assert page.url.startswith(f"{stack.url('triage')}{open_link}") and "linked=1" in page.url

    main = page.inner_text("main")
    assert "Aanvraag via verwijzing" in main
    assert re.search(r"geboren 12-03-1948 \(\d+ jaar\)", main)
    assert page.inner_text("#referrer") == "Verwijzer: Huisartsenpraktijk De Linde"
    reach = page.inner_text("#reach")
    assert "Wie belt: naaste · Terugbelnummer 06-12345678" in reach
    assert "Telefoon patiënt 06-11112222" in reach and "Huidig adres: Lindelaan 4, 1234 AB Regiostad" in reach
    assert "via telefoon · naaste · terugbellen 06-12345678" in page.inner_text("#linked-contacts")
    assert "Status: te triëren" in main and "http://fhir.nl" not in main
    shoot(page, "triage-request.png")
    request_url = page.url.split("?")[0]
    page.goto(f"{request_url}?lang=en")
    english = page.inner_text("main")
    assert "Request via referral" in english and "Referrer: Huisartsenpraktijk De Linde" in english
    assert "Caller: relative · Callback number 06-12345678" in english and "Current address: Lindelaan 4" in english
    assert "via phone · relative · call back 06-12345678" in page.inner_text("#linked-contacts")
    assert re.search(r"born 12-03-1948 \(\d+ years\)", english) and "Status: to triage" in english
    page.goto(f"{request_url}?lang=nl")

    # The triage page before the nurse has chosen anything, then with her choices.
    page.select_option("select[name=urgency]", "U2")
    page.select_option("select[name=disposition]", "home-visit")
    page.select_option("select[name=assigned_organization]", "http://fhir.nl/fhir/NamingSystem/ura|90000020")
    page.fill("textarea[name=note]", "Visite binnen het uur")
    shoot(page, "triage-page-choices.png")
    assert watched.errors == []


def test_a_patient_without_bsn_chosen_from_the_lookup_gets_the_call_linked_to_the_open_request(
        stack: Stack, workstation: BrowserContext) -> None:
    nurse, _ = open_console(stack, "triage", username="triagist", password="demo-triagist")
    form_page = nurse.get(f"{stack.url('triage')}/console/contacts/new").text
    csrf = form_page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    first = nurse.post(f"{stack.url('triage')}/console/contacts", data={
        "csrf_token": csrf, "channel": "walk-in", "name": "Els Zonderbsn", "birth_date": "1961-05-04",
        "complaint": "Duizelig aan de balie"})
    assert first.status_code == 200 and "linked=1" not in str(first.url)
    request_path = first.url.path

    page = workstation.new_page()
    watched = Watched(page)
    log_in(page, stack.url("triage"), "triagist", "demo-triagist")
    page.goto(f"{stack.url('triage')}/console/contacts/new?name=zonderbsn&birth_date=1961-05-04")
    match = page.locator("li.match", has_text="Els Zonderbsn")
    assert "heeft een open aanvraag" in match.inner_text() and match.locator("a").get_attribute("href") == request_path
    match.locator("button.choose").click()
    form = "#contact-form"
    assert page.input_value(f"{form} [name=name]") == "Els Zonderbsn"
    assert page.input_value(f"{form} [name=bsn]") == ""
    page.fill(f"{form} textarea[name=complaint]", "Zoon belt: ze is thuis gevallen")
    page.select_option(f"{form} select[name=caller]", "relative")
    with page.expect_navigation():
        page.click(f"{form} button")
    assert page.url == f"{stack.url('triage')}{request_path}?linked=1"
    assert "Zoon belt: ze is thuis gevallen" in page.inner_text("#linked-contacts")
    assert watched.errors == []


def test_the_worklist_says_channels_and_statuses_in_words_and_a_due_time_tomorrow_with_its_day(
        stack: Stack, workstation: BrowserContext) -> None:
    ops = stack.client("ops")
    posted = stack.client("ehr-delinde").post_referral(referral_bundle(bsn="999990044", given="Piet",
                                                                       family="Tomorrow", reason="Wondcontrole"))
    request_id = ops.request_for(service_request_of(posted.json()))["id"]
    assert ops.triage_request(request_id, urgency="U4", disposition="home-visit", organization="URA 90000020",
                              closed_reason="wijkverpleging plant de visite").status_code == 200
    nurse, _ = open_console(stack, "triage", username="triagist", password="demo-triagist")
    page_html = nurse.get(f"{stack.url('triage')}/console/contacts/new").text
    csrf = page_html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    walk_in = {"csrf_token": csrf, "channel": "walk-in", "name": "Kees Balie", "complaint": "Snijwond hand"}
    assert nurse.post(f"{stack.url('triage')}/console/contacts", data=walk_in).status_code == 200

    page = workstation.new_page()
    watched = Watched(page)
    log_in(page, stack.url("triage"), "triagist", "demo-triagist")
    rows = page.inner_text("#rows")
    assert "verwijzing" in rows and "balie" in rows and "te triëren" in rows and "getrieerd" in rows
    assert RAW_CODES.search(rows) is None, rows
    row = page.locator("#rows tr", has_text="Piet Tomorrow")
    # U4 is due 24 hours after it came in: tomorrow, said with its day (or its date across a time change).
    assert re.fullmatch(r"morgen \d\d:\d\d|\d\d-\d\d \d\d:\d\d", row.locator("td.due").inner_text().strip())
    options = page.locator("select[name=channel] option").all_inner_texts()
    assert options == ["alle", "verwijzing", "telefoon", "balie"]
    page.select_option("select[name=channel]", "walk-in")
    with page.expect_navigation():
        page.click("text=Filter")
    assert "Kees Balie" in page.inner_text("#rows") and "Piet Tomorrow" not in page.inner_text("#rows")
    page.goto(f"{stack.url('triage')}/console")
    shoot(page, "triage-worklist-words.png")
    page.goto(f"{stack.url('triage')}/console?lang=en")
    english = page.inner_text("#rows")
    assert "referral" in english and "walk-in" in english and "to triage" in english
    assert re.fullmatch(r"tomorrow \d\d:\d\d|\d\d-\d\d \d\d:\d\d",
                        page.locator("#rows tr", has_text="Piet Tomorrow").locator("td.due").inner_text().strip())
    page.goto(f"{stack.url('triage')}/console?lang=nl")
    assert watched.errors == []
    # An unknown request is a console page in the console's language with the menu and a way back (a 404, which
    # the watcher would count, so it comes last).
    unknown = page.goto(f"{stack.url('triage')}/console/requests/no-such-request?lang=en")
    assert unknown is not None and unknown.status == 404
    assert page.inner_text("h1") == "Unknown request" and "no-such-request" in page.inner_text("main")
    assert page.locator("nav a", has_text="Worklist").count() == 1
    assert page.locator("main a", has_text="Back to the worklist").get_attribute("href") == "/console"
    assert "Onbekende" not in page.inner_text("body")
    page.goto(f"{stack.url('triage')}/console?lang=nl")


def test_an_invalid_bsn_keeps_what_was_typed_and_answers_in_dutch(stack: Stack, workstation: BrowserContext) -> None:
    page = workstation.new_page()
    watched = Watched(page)
    log_in(page, stack.url("triage"), "triagist", "demo-triagist")
    page.goto(f"{stack.url('triage')}/console/contacts/new")
    form = "#contact-form"
    page.select_option(f"{form} select[name=channel]", "walk-in")
    page.fill(f"{form} input[name=bsn]", "999990033")  # nine digits, fails the 11-proof
    page.fill(f"{form} input[name=name]", "Anna de Balie")
    page.select_option(f"{form} select[name=caller]", "carer")
    page.fill(f"{form} input[name=callback_phone]", "+31 6 1234 5678")
    page.fill(f"{form} input[name=address_line]", "Kerkstraat 2")
    page.fill(f"{form} textarea[name=complaint]", "Gevallen, pols dik")
    with page.expect_response(lambda r: r.url.endswith("/console/contacts")) as answer:
        page.click(f"{form} button")
    assert answer.value.status == 422 and "text/html" in answer.value.headers["content-type"]
    assert "Het BSN klopt niet" in page.inner_text("#form-errors")
    assert page.locator("html").get_attribute("lang") == "nl"
    assert [page.input_value(f"{form} [name={n}]") for n in (
        "channel", "bsn", "name", "caller", "callback_phone", "address_line", "complaint")] == [
        "walk-in", "999990033", "Anna de Balie", "carer", "+31 6 1234 5678", "Kerkstraat 2", "Gevallen, pols dik"]
    # Corrected, it is recorded.
    page.fill(f"{form} input[name=bsn]", "")
    with page.expect_navigation():
        page.click(f"{form} button")
    assert "/console/requests/" in page.url and "Gevallen, pols dik" in page.inner_text("main")
    # The refusal's own 422 (and Chromium's line on it) is the answer; nothing else went wrong.
    assert [e for e in watched.errors if "422" not in e] == []


def test_login_refusals_are_pages_in_dutch_never_json(stack: Stack, workstation: BrowserContext) -> None:
    page = workstation.new_page()
    log_in(page, stack.url("triage"), "triagist", "wrong-password-here")
    assert page.locator("html").get_attribute("lang") == "nl"
    assert "Onbekende gebruiker of verkeerd wachtwoord." in page.inner_text("main")
    assert page.locator("input[name=password]").count() == 1
    # A partner may not open the triage console: a Dutch page offering another login.
    page.fill("input[name=username]", "wijk-oost")
    page.fill("input[name=password]", "demo-wijk-oost")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "Geen toegang tot deze console" in page.inner_text("h1")
    assert "Met de rol zorgaanbieder kunt u deze console niet openen." in page.inner_text("main")
    # The browser's back button to a used login callback: a Dutch page with a way to log in again, not JSON.
    answer = page.goto(f"{stack.url('triage')}/console/callback?code=used&state=old")
    assert answer is not None and answer.status == 400 and "text/html" in answer.headers["content-type"]
    assert page.inner_text("h1") == "Inloggen niet gelukt"
    assert "Deze inlogpoging is onbekend of verlopen" in page.inner_text("main")
    english = page.goto(f"{stack.url('triage')}/console/callback?code=used&state=old&lang=en")
    assert english is not None and english.status == 400 and page.inner_text("h1") == "Login failed"
    page.goto(f"{stack.url('triage')}/console/callback?lang=nl")
    with page.expect_navigation():
        page.click("text=Opnieuw inloggen")
    # The shared login still stands: logging in again lands on the console, which this role may not open.
    assert page.url == f"{stack.url('triage')}/console" and "Geen toegang tot deze console" in page.inner_text("h1")


def test_the_logout_link_ends_every_console_and_the_favicon_is_served(stack: Stack,
                                                                      workstation: BrowserContext) -> None:
    page = workstation.new_page()
    watched = Watched(page)
    log_in(page, stack.url("triage"), "beheer", "demo-beheer")
    other = workstation.new_page()  # coordination in a second tab of the same workstation
    other.goto(f"{stack.url('coordination')}/console")
    assert "Ingelogd als beheer" in other.inner_text("header")
    icon = page.goto(f"{stack.url('triage')}/favicon.ico")
    assert icon is not None and icon.status == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert page.evaluate("fetch('/favicon.svg').then(r => r.status)") == 200
    page.goto(f"{stack.url('triage')}/console")
    assert page.locator("link[rel=icon]").get_attribute("href") == "/favicon.svg"
    worklist = workstation.new_page()  # the live worklist, left open in a third tab
    watched_worklist = Watched(worklist)
    worklist.goto(f"{stack.url('triage')}/console")
    worklist.wait_for_timeout(1500)  # its live stream is connected
    # A plain GET of the logout link (typed, bookmarked or followed) is the single logout.
    page.goto(f"{stack.url('triage')}/console/logout")
    assert page.locator("input[name=password]").count() == 1
    # The open worklist ends its stream and reloads itself to the login, without a click.
    worklist.wait_for_selector("input[name=password]", timeout=(2 * SESSION_CHECK_SECONDS + 5) * 1000)
    deadline = time.monotonic() + 2 * SESSION_CHECK_SECONDS + 2
    while True:
        other.goto(f"{stack.url('coordination')}/console")
        if other.locator("input[name=password]").count() == 1:
            break
        assert time.monotonic() < deadline, "coordination still open after the logout link"
        time.sleep(0.5)
    assert watched.errors == []
    # The stream's reconnect, or the page's session check, after the logout is answered 401 on purpose: that is
    # how the page knows (whichever asks first).
    assert [e for e in watched_worklist.errors if "401" not in e] == []
    assert any(e.endswith(("/console/stream", "/console/session")) for e in watched_worklist.errors)


def test_the_admins_account_messages_speak_the_consoles_language(stack: Stack) -> None:
    admin, _ = open_console(stack, "triage", username="beheer", password="demo-beheer")
    page = admin.get(f"{stack.url('triage')}/console/users").text
    csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    # A form from an expired page, or sent after the login ended: a page that says so, not an error in JSON.
    expired = admin.post(f"{stack.url('triage')}/console/users/casemanager/unlock", data={"csrf_token": "old"})
    assert expired.status_code == 403 and "text/html" in expired.headers["content-type"]
    assert "Dit formulier is verlopen en niet verwerkt." in expired.text
    logged_out = httpx.post(f"{stack.url('triage')}/console/contacts", data={"csrf_token": "x", "channel": "phone"})
    assert logged_out.status_code == 401 and "U bent niet (meer) ingelogd" in logged_out.text
    missing = admin.post(f"{stack.url('triage')}/console/users/nobody/unlock", data={"csrf_token": csrf})
    assert missing.status_code == 404 and "Er is geen account nobody." in missing.text
    own = admin.post(f"{stack.url('triage')}/console/users/beheer/disable", data={"csrf_token": csrf})
    assert own.status_code == 422 and "U kunt uw eigen account niet uitschakelen." in own.text
    short = admin.post(f"{stack.url('triage')}/console/users/casemanager/password",
                       data={"csrf_token": csrf, "password": "kort"})
    assert short.status_code == 422 and "Een wachtwoord heeft minstens 12 tekens." in short.text
    taken = admin.post(f"{stack.url('triage')}/console/users", data={
        "csrf_token": csrf, "username": "triagist", "display_name": "T", "role": "triagist",
        "password": "lang-genoeg-wachtwoord"})
    assert taken.status_code == 422 and "De gebruikersnaam triagist is al in gebruik." in taken.text
    admin.get(f"{stack.url('triage')}/console/users?lang=en")
    english = admin.post(f"{stack.url('triage')}/console/users/beheer/disable", data={"csrf_token": csrf})
    assert "You cannot disable your own account." in english.text and 'lang="en"' in english.text
    done = admin.post(f"{stack.url('triage')}/console/users/casemanager/unlock", data={"csrf_token": csrf})
    assert "casemanager is unlocked." in done.text


def test_a_lookup_keeps_what_was_typed_in_the_contact_form_and_puts_no_identifier_in_the_url(
        stack: Stack, workstation: BrowserContext) -> None:
    stack.client("ehr-delinde").post_referral(referral_bundle(
        bsn="999990056", given="Fatma", family="Yılmaz", birth_date="1990-04-17", reason="Buikpijn")).raise_for_status()
    page = workstation.new_page()
    watched = Watched(page)
    log_in(page, stack.url("triage"), "triagist", "demo-triagist")
    page.goto(f"{stack.url('triage')}/console/contacts/new")
    form = "#contact-form"
    # The caller talks first; the nurse types what she hears, then looks the patient up.
    page.select_option(f"{form} select[name=channel]", "phone")
    page.select_option(f"{form} select[name=caller]", "relative")
    page.fill(f"{form} input[name=callback_phone]", "06-24681357")
    page.fill(f"{form} textarea[name=complaint]", "Man belt: buikpijn erger, braakt")
    # The caller gives only the name: the page says why nothing was searched, not that the patient is unknown.
    page.fill("#lookup input[name=name]", "Fatma Yılmaz")
    with page.expect_navigation():
        page.click("#lookup button")
    assert "geboortedatum" in page.inner_text("#lookup-incomplete")
    assert "Geen patiënt gevonden" not in page.inner_text("main")
    page.fill("#lookup input[name=name]", "")
    page.fill("#lookup input[name=bsn]", "999990056")
    with page.expect_navigation():
        page.click("#lookup button")
    assert "999990056" not in page.url and "bsn=" not in page.url  # posted: no BSN in history or access logs
    assert page.locator("li.match", has_text="Fatma Yılmaz").count() == 1
    assert page.input_value("#lookup input[name=bsn]") == "999990056"
    assert [page.input_value(f"{form} [name={n}]") for n in ("channel", "caller", "callback_phone", "complaint")] == [
        "phone", "relative", "06-24681357", "Man belt: buikpijn erger, braakt"]
    page.click("li.match:has-text('Fatma Yılmaz') button.choose")
    assert page.input_value(f"{form} [name=name]") == "Fatma Yılmaz"
    assert page.input_value(f"{form} textarea[name=complaint]") == "Man belt: buikpijn erger, braakt"
    with page.expect_navigation():
        page.click(f"{form} button")
    assert "linked=1" in page.url
    assert "Man belt: buikpijn erger, braakt" in page.inner_text("#linked-contacts")
    # The worklist's search finds the request by what the later call said, not only by the first complaint.
    page.goto(f"{stack.url('triage')}/console?q=braakt")
    assert "Fatma Yılmaz" in page.inner_text("#rows")
    page.goto(f"{stack.url('triage')}/console?q=onbekendwoord")
    assert "Fatma Yılmaz" not in page.inner_text("#rows")
    assert watched.errors == []


def test_the_settings_page_refuses_in_the_consoles_language_and_keeps_what_the_admin_typed(
        stack: Stack, workstation: BrowserContext) -> None:
    page = workstation.new_page()
    log_in(page, stack.url("triage"), "beheer", "demo-beheer")
    targets = "form[action='/console/settings/targets']"
    linde = "form.directory-entry:has(input[name=org][value$='agb-z|01000001'])"

    page.goto(f"{stack.url('triage')}/console/settings?lang=en")
    page.fill(f"{targets} input[name=minutes_U2]", "een uur")
    page.fill(f"{targets} input[name=minutes_U3]", "200")
    with page.expect_response(lambda r: r.url.endswith("/console/settings/targets")) as answer:
        page.click(f"{targets} button")
    assert answer.value.status == 422
    said = page.inner_text("[role=alert]")
    assert said == "The target for U2 is a whole number of minutes from 0 to 10080, or empty for the next working day."
    assert "streeftijd" not in said and "invalid literal" not in said
    assert page.input_value(f"{targets} input[name=minutes_U2]") == "een uur"
    assert page.input_value(f"{targets} input[name=minutes_U3]") == "200"
    page.fill(f"{linde} input[name=hours]", "25:00-08:00")
    page.check(f"{linde} input[name=dispositions][value=ambulance]")
    with page.expect_response(lambda r: r.url.endswith("/console/settings/directory")) as answer:
        page.click(f"{linde} button")
    assert answer.value.status == 422
    assert page.inner_text(f"{linde} [role=alert]") == (
        "Hours are HH:MM-HH:MM, e.g. 08:00-17:00, or 17:00-08:00 for open over midnight.")
    assert page.input_value(f"{linde} input[name=hours]") == "25:00-08:00"
    assert page.is_checked(f"{linde} input[name=dispositions][value=ambulance]")
    assert "Ambulance" in page.inner_text(linde) and "Home visit" in page.inner_text(linde)

    page.goto(f"{stack.url('triage')}/console/settings?lang=nl")
    page.fill(f"{linde} input[name=hours]", "08:00-25:00")
    with page.expect_navigation():
        page.click(f"{linde} button")
    said = page.inner_text(f"{linde} [role=alert]")
    assert said.startswith("De uren zijn UU:MM-UU:MM") and "Hours are" not in said
    assert page.input_value(f"{linde} input[name=hours]") == "08:00-25:00"
    page.fill(f"{targets} input[name=minutes_U4]", "99999")
    with page.expect_navigation():
        page.click(f"{targets} button")
    assert page.inner_text("[role=alert]").startswith("De streeftijd voor U4 is een heel aantal minuten")
    assert page.input_value(f"{targets} input[name=minutes_U4]") == "99999"
    # Nothing was saved: the directory still has De Linde in office hours without ambulances.
    page.goto(f"{stack.url('triage')}/console/settings")
    assert page.input_value(f"{linde} input[name=hours]") == "08:00-17:00"
    assert not page.is_checked(f"{linde} input[name=dispositions][value=ambulance]")
    assert page.input_value(f"{targets} input[name=minutes_U4]") == "1440"


def test_the_billing_officers_patient_page_speaks_english_when_chosen(stack: Stack, browser: Browser) -> None:
    ops = stack.client("ops")
    posted = stack.client("ehr-delinde").post_referral(referral_bundle(
        bsn="999990068", given="Bram", family="Declaratie", uzovi="9001", reason="Koorts"))
    request_id = ops.request_for(service_request_of(posted.json()))["id"]
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="nl-NL")
    page = context.new_page()
    log_in(page, stack.url("triage"), "declaratie", "demo-declaratie")  # the worklist itself is not theirs
    page.goto(f"{stack.url('triage')}/console/billing/requests/{request_id}?lang=en")
    english = page.inner_text("main")
    for shown in ("Patient of request", "Name", "Bram Declaratie", "BSN", "999990068", "Insurer", "UZOVI 9001",
                  "Received", "For billing (purpose: payment)", "Back to the ledger in shadow billing"):
        assert shown in english, shown
    for dutch in ("Patiënt van aanvraag", "Naam", "Verzekeraar", "Ontvangen", "Terug naar", "inzage"):
        assert dutch not in english, dutch
    assert page.locator("a", has_text="Back to the ledger").get_attribute("href").endswith("?lang=en")  # type: ignore[union-attr]
    page.goto(f"{stack.url('triage')}/console/billing/requests/unknown-request?lang=en")
    assert page.inner_text("h1") == "Unknown request"
    assert page.locator("a", has_text="Back to the overview").get_attribute("href") == \
        f"{stack.url('billing_shadow')}/console?lang=en"  # a way back to billing's overview
    page.goto(f"{stack.url('triage')}/console/billing/requests/{request_id}?lang=nl")
    dutch_page = page.inner_text("main")
    assert "Patiënt van aanvraag" in dutch_page and "Verzekeraar" in dutch_page and "Insurer" not in dutch_page
    context.close()
