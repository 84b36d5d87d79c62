"""In a real browser: single logout across the consoles, the refusal page of a console a role may not open, and
the admin disabling a user, resetting a password and lifting a lockout on triage's users page."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from infra.stack import Stack
from shared.console import SESSION_CHECK_SECONDS
from tests.conftest import started_stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from started_stack(tmp_path_factory, "sessions")


@pytest.fixture
def workstation(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile: one shared workstation, its cookies shared by every console."""
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    yield context
    context.close()


def log_in(page: Page, console_url: str, username: str, password: str) -> None:
    page.goto(f"{console_url}/console")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    with page.expect_navigation():  # the form's post and its redirects, to the console or the login page again
        page.keyboard.press("Enter")


def asks_for_login_within_the_check_interval(page: Page, url: str) -> bool:
    """Reload `url` until it shows the login form, for at most twice the consoles' session-check interval."""
    deadline = time.monotonic() + 2 * SESSION_CHECK_SECONDS + 2
    while time.monotonic() < deadline:
        page.goto(url)
        if page.locator("input[name=password]").count() == 1:
            return True
        time.sleep(0.5)
    return False


def test_logging_out_of_one_console_logs_out_of_every_console(stack: Stack, workstation: BrowserContext) -> None:
    page = workstation.new_page()
    log_in(page, stack.url("coordination"), "beheer", "demo-beheer")
    assert "Ingelogd als beheer" in page.inner_text("header")
    page.goto(f"{stack.url('triage')}/console")
    assert page.locator("input[name=password]").count() == 0 and "Werklijst" in page.inner_text("main")
    page.goto(f"{stack.url('billing_shadow')}/console")
    assert page.locator("input[name=password]").count() == 0
    # Log out in the triage console: coordination and billing, still holding their own cookies, ask for a login.
    page.goto(f"{stack.url('triage')}/console")
    with page.expect_navigation():
        page.click("text=Uitloggen")
    assert page.locator("input[name=password]").count() == 1
    assert asks_for_login_within_the_check_interval(page, f"{stack.url('coordination')}/console")
    assert asks_for_login_within_the_check_interval(page, f"{stack.url('billing_shadow')}/console")
    # Logging in again works, and opens the other consoles again without a second login.
    page.fill("input[name=username]", "beheer")
    page.fill("input[name=password]", "demo-beheer")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{stack.url('billing_shadow')}/console")
    page.goto(f"{stack.url('coordination')}/console")
    assert "Ingelogd als beheer" in page.inner_text("header")


def test_a_page_left_open_in_another_console_leaves_the_screen_for_the_login_after_a_logout(
        stack: Stack, workstation: BrowserContext) -> None:
    # A billing page has no live stream: on a shared workstation it must still not keep showing the last user's
    # figures once that user logged out in another console.
    billing = workstation.new_page()
    log_in(billing, stack.url("billing_shadow"), "beheer", "demo-beheer")
    assert "Ingelogd als beheer" in billing.inner_text("header")
    triage = workstation.new_page()
    triage.goto(f"{stack.url('triage')}/console")
    with triage.expect_navigation():
        triage.click("text=Uitloggen")
    # Nobody touches the billing page: it goes to the login by itself.
    billing.wait_for_selector("input[name=password]", timeout=(3 * SESSION_CHECK_SECONDS + 5) * 1000)
    assert "Ingelogd als beheer" not in billing.inner_text("body")


def test_a_console_the_role_may_not_open_answers_a_page_in_its_language(stack: Stack,
                                                                       workstation: BrowserContext) -> None:
    page = workstation.new_page()
    log_in(page, stack.url("coordination"), "triagist", "demo-triagist")
    answer = page.goto(f"{stack.url('coordination')}/console")
    assert answer is not None and answer.status == 403
    assert "text/html" in answer.headers["content-type"]
    assert page.locator("html").get_attribute("lang") == "nl"
    assert "Geen toegang tot deze console" in page.inner_text("h1")
    assert "Met de rol triagist kunt u deze console niet openen." in page.inner_text("main")
    english = page.goto(f"{stack.url('coordination')}/console?lang=en")
    assert english is not None and english.status == 403
    assert "No access to this console" in page.inner_text("h1")
    assert "The role triage nurse cannot open this console." in page.inner_text("main")  # the role in words
    page.goto(f"{stack.url('coordination')}/console?lang=nl")
    with page.expect_navigation():
        page.click("text=Inloggen als een andere gebruiker")
    assert page.locator("input[name=password]").count() == 1  # the shared login ended: no silent re-login
    page.fill("input[name=username]", "casemanager")
    page.fill("input[name=password]", "demo-casemanager")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{stack.url('coordination')}/console")
    assert "Ingelogd als casemanager" in page.inner_text("header")


def admin_page(browser: Browser, stack: Stack) -> Page:
    page = browser.new_context().new_page()
    log_in(page, stack.url("triage"), "beheer", "demo-beheer")
    page.goto(f"{stack.url('triage')}/console/users")
    return page


def row(page: Page, username: str):  # type: ignore[no-untyped-def]
    return page.locator(f"tr[data-username='{username}']")


def test_the_admin_disables_a_user_who_is_logged_out_and_cannot_log_in(stack: Stack, browser: Browser,
                                                                       workstation: BrowserContext) -> None:
    admin = admin_page(browser, stack)
    admin.fill("input[name=username]:not([type=password])", "nacht.verpleging")
    admin.fill("input[name=display_name]", "Nacht Verpleging")
    # Roles in words: the dropdown names the word with its code, the table the word.
    assert admin.locator("select[name=role] option[value=beheer]").inner_text() == "beheerder (beheer)"
    assert row(admin, "declaratie").locator("td").nth(2).inner_text() == "declaratiemedewerker"
    admin.select_option("select[name=role]", "triagist")
    admin.fill("form[action='/console/users'] input[name=password]", "nachtdienst-wachtwoord")
    admin.click("text=Aanmaken")
    admin.wait_for_url(f"{stack.url('triage')}/console/users")
    nurse = workstation.new_page()
    log_in(nurse, stack.url("triage"), "nacht.verpleging", "nachtdienst-wachtwoord")
    assert "Ingelogd als nacht.verpleging" in nurse.inner_text("header")

    # Disabling asks first; declining leaves the account as it was.
    asked: list[str] = []
    admin.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    row(admin, "nacht.verpleging").locator("text=Uitschakelen").click()
    assert asked == ["nacht.verpleging uitschakelen? Die wordt overal uitgelogd en kan niet meer inloggen."]
    assert "actief" in row(admin, "nacht.verpleging").inner_text()
    admin.once("dialog", lambda dialog: dialog.accept())
    with admin.expect_navigation():
        row(admin, "nacht.verpleging").locator("text=Uitschakelen").click()
    assert "nacht.verpleging is uitgeschakeld" in admin.inner_text("main")
    assert "Uitgeschakeld" in row(admin, "nacht.verpleging").inner_text()
    assert asks_for_login_within_the_check_interval(nurse, f"{stack.url('triage')}/console")
    nurse.fill("input[name=username]", "nacht.verpleging")
    nurse.fill("input[name=password]", "nachtdienst-wachtwoord")
    with nurse.expect_navigation():
        nurse.keyboard.press("Enter")
    assert "Dit account is uitgeschakeld" in nurse.inner_text("main")
    assert nurse.locator("input[name=password]").count() == 1

    admin.goto(f"{stack.url('triage')}/console/audit")
    assert "console account nacht.verpleging: disabled" in admin.inner_text("main")
    admin.goto(f"{stack.url('triage')}/console/users")
    with admin.expect_navigation():
        row(admin, "nacht.verpleging").locator("text=Inschakelen").click()
    log_in(nurse, stack.url("triage"), "nacht.verpleging", "nachtdienst-wachtwoord")
    assert "Ingelogd als nacht.verpleging" in nurse.inner_text("header")
    admin.context.close()


def test_the_admin_resets_a_password_and_lifts_a_lockout(stack: Stack, browser: Browser,
                                                         workstation: BrowserContext) -> None:
    admin = admin_page(browser, stack)
    # A password the admin types: the old one stops working.
    reset = row(admin, "casemanager").locator("form[action$='/password']")
    reset.locator("input[name=password]").fill("nieuw-wachtwoord-123")
    with admin.expect_navigation():
        reset.locator("button").click()
    assert "Het wachtwoord van casemanager is hersteld" in admin.inner_text("main")
    page = workstation.new_page()
    log_in(page, stack.url("coordination"), "casemanager", "demo-casemanager")
    assert "Onbekende gebruiker of verkeerd wachtwoord." in page.inner_text("main")
    page.fill("input[name=username]", "casemanager")
    page.fill("input[name=password]", "nieuw-wachtwoord-123")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{stack.url('coordination')}/console")
    page.goto(f"{stack.url('coordination')}/console/logout")
    # A generated password, shown once.
    with admin.expect_navigation():
        row(admin, "casemanager").locator("form[action$='/password'] button").click()
    generated = admin.inner_text("#new-password").strip()
    assert len(generated) >= 12
    admin.goto(f"{stack.url('triage')}/console/users")
    assert admin.locator("#new-password").count() == 0
    # Five wrong passwords lock the account, even for the right one; the admin unlocks it.
    for _ in range(5):
        log_in(page, stack.url("coordination"), "casemanager", "wrong-password-again")
    log_in(page, stack.url("coordination"), "casemanager", generated)
    assert "Te veel mislukte pogingen" in page.inner_text("main")
    admin.goto(f"{stack.url('triage')}/console/users")
    assert "Geblokkeerd" in row(admin, "casemanager").inner_text()
    with admin.expect_navigation():
        row(admin, "casemanager").locator("text=Deblokkeren").click()
    assert "casemanager is gedeblokkeerd" in admin.inner_text("main")
    log_in(page, stack.url("coordination"), "casemanager", generated)
    assert "Ingelogd als casemanager" in page.inner_text("header")
    admin.goto(f"{stack.url('triage')}/console/audit")
    audit = admin.inner_text("main")
    assert "console account casemanager: reset" in audit and "console account casemanager: unlocked" in audit
    admin.context.close()
