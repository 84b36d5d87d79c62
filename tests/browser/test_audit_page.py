"""The admin's audit page in a real browser at 1,366 px: no horizontal scroll, Europe/Amsterdam times, actions and
outcomes in words in Dutch and English, and a search by BSN or by name (itself audited) where names are known;
billing, which holds no names, searches by BSN through the keyed hash and says where a name can be searched."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page

from infra.polling import wait_until
from infra.referrals import referral_bundle
from infra.stack import ROOT, Stack
from shared.console import AMSTERDAM
from shared.identifiers import pseudonym
from shared.settings import DEMO_PSEUDONYM_KEY
from tests.conftest import started_stack
from tests.e2e.consoles import open_console

pytestmark = pytest.mark.e2e
SHOTS = ROOT / "test-artifacts" / "screenshots"
AALTJE, CEES = "999990007", "999990056"
DUTCH_ACTIONS = {"Aangemaakt", "Gelezen", "Gewijzigd", "Verwijderd", "Gezocht", "Geëxporteerd", "Ingelogd"}
ENGLISH_ACTIONS = {"Created", "Read", "Updated", "Deleted", "Searched", "Exported", "Logged in"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from started_stack(tmp_path_factory, "audit")


@pytest.fixture(scope="module")
def admin(stack: Stack, browser: Browser) -> Iterator[Page]:
    ehr = stack.client("ehr-delinde")
    for bsn, given, family in ((AALTJE, "Aaltje", "Bakker"), (CEES, "Cees", "Jansen")):
        ehr.post_referral(referral_bundle(bsn=bsn, given=given, family=family)).raise_for_status()
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.goto(f"{stack.url('triage')}/console/audit?lang=nl")
    page.fill("input[name=username]", "beheer")
    page.fill("input[name=password]", "demo-beheer")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    yield page
    context.close()


def no_horizontal_scroll(page: Page) -> bool:
    width, client = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    return width <= client <= 1366


def column(page: Page, index: int) -> list[str]:
    return [text.strip() for text in page.locator(f"table.audit tbody td:nth-child({index})").all_inner_texts()]


def patients(page: Page) -> set[str]:
    return {link.get_attribute("title") or "" for link in page.locator("table.audit tbody td:nth-child(5) a").all()}


def test_the_audit_page_fits_1366_px_in_amsterdam_time_with_words(stack: Stack, admin: Page) -> None:
    admin.goto(f"{stack.url('triage')}/console/audit")
    assert admin.locator("table.audit tbody tr").count() >= 3
    assert no_horizontal_scroll(admin)
    times = column(admin, 1)
    shown = datetime.strptime(times[0], "%d-%m-%Y %H:%M:%S")
    now_here = datetime.now(AMSTERDAM).replace(tzinfo=None)
    assert abs(shown - now_here) < timedelta(minutes=5)  # Amsterdam's clock, an hour or two off UTC
    assert set(column(admin, 4)) <= DUTCH_ACTIONS and "Aangemaakt" in column(admin, 4)
    assert set(column(admin, 7)) <= {"Gelukt", "Geweigerd", "Fout", "Ernstige fout"}
    assert not {"TREAT", "HOPERAT", "HPAYMT"} & set(column(admin, 8))

    admin.goto(f"{stack.url('triage')}/console/audit?lang=en")
    assert admin.inner_text("table.audit thead").split("\t")[0] == "Time"
    assert set(column(admin, 4)) <= ENGLISH_ACTIONS and "Created" in column(admin, 4)
    assert "Succeeded" in column(admin, 7) and no_horizontal_scroll(admin)
    admin.goto(f"{stack.url('triage')}/console/audit?lang=nl")


def test_the_admin_finds_a_patient_by_bsn_and_by_name_and_the_search_is_audited(stack: Stack, admin: Page) -> None:
    aaltje, cees = (pseudonym(bsn, DEMO_PSEUDONYM_KEY.encode()) for bsn in (AALTJE, CEES))
    admin.goto(f"{stack.url('triage')}/console/audit")
    admin.fill("input[name=patient]", AALTJE)
    with admin.expect_navigation():
        admin.keyboard.press("Enter")
    assert "Aaltje Bakker" in admin.inner_text("p.found")
    assert patients(admin) == {aaltje} and "Aangemaakt" in column(admin, 4)
    assert no_horizontal_scroll(admin)

    admin.fill("input[name=patient]", "bakker")
    with admin.expect_navigation():
        admin.keyboard.press("Enter")
    assert "Aaltje Bakker (geboren 01-01-1950)" in admin.inner_text("p.found")
    assert "Cees" not in admin.inner_text("main")
    assert patients(admin) == {aaltje}
    SHOTS.mkdir(parents=True, exist_ok=True)
    admin.screenshot(path=str(SHOTS / "audit-page.png"), full_page=True)

    # Each search is in the log, by pseudonym: the BSN and the name typed are kept nowhere.
    admin.goto(f"{stack.url('triage')}/console/audit")
    searches = admin.locator("table.audit tbody tr", has_text="console audit log: search by")
    assert searches.count() >= 2
    assert "search by name" in searches.nth(0).inner_text() and "search by bsn" in searches.nth(1).inner_text()
    assert searches.nth(0).locator("td:nth-child(5) a").get_attribute("title") == aaltje
    assert AALTJE not in admin.inner_text("main") and cees in {*patients(admin)}

    def coordination_finds_aaltje() -> bool:  # coordination knows names too, once patient-changed arrived
        answer = admin.goto(f"{stack.url('coordination')}/console/audit?patient=Bakker")
        return answer is not None and answer.status == 200 and "Aaltje Bakker" in admin.inner_text("p.found")

    wait_until(coordination_finds_aaltje, "coordination knowing Aaltje Bakker by name", timeout=30, interval=0.5)
    assert "naam, BSN of pseudoniem" in admin.inner_text("form.audit-search") and "Cees" not in admin.inner_text("main")

    wrong = admin.goto(f"{stack.url('triage')}/console/audit?patient=123456789")
    assert wrong is not None and wrong.status == 400 and "elfproef" in admin.inner_text("[role=alert]")
    assert admin.input_value("input[name=patient]") == "123456789"


def test_billing_without_names_searches_by_bsn_through_the_keyed_hash_only(stack: Stack, admin: Page) -> None:
    aaltje = pseudonym(AALTJE, DEMO_PSEUDONYM_KEY.encode())
    billing = f"{stack.url('billing_shadow')}/console/audit"
    refused = admin.goto(f"{billing}?patient=Bakker")
    assert refused is not None and refused.status == 400
    assert "kent geen namen" in admin.inner_text("[role=alert]")
    assert admin.get_attribute("[role=alert] a", "href") == f"{stack.url('triage')}/console/audit"
    assert "BSN of pseudoniem" in admin.inner_text("form.audit-search")
    admin.goto(f"{billing}?patient={AALTJE}")
    admin.goto(f"{billing}?patient={aaltje}")  # the BSN search before this one is found by its pseudonym
    assert patients(admin) == {aaltje} and "search by bsn" in admin.inner_text("table.audit")
    assert "Bakker" not in admin.inner_text("main") and no_horizontal_scroll(admin)


def audit_events(stack: Stack, service: str, **params: str) -> list[dict[str, Any]]:
    """The service's AuditEvents that meet `params` (FHIR search), read by the ops client."""
    ops = stack.client("ops")
    answer = httpx.get(f"{stack.url(service)}/fhir/AuditEvent", params={"_count": "1000", **params},
                       headers=ops.headers())
    answer.raise_for_status()
    return [e["resource"] for e in answer.json().get("entry", [])]


def what(event: dict[str, Any]) -> str:
    return event["entity"][-1]["what"].get("display", "")


def test_the_nurses_patient_lookup_is_audited_with_each_patient_found(stack: Stack, admin: Page) -> None:
    """SPEC §10: a lookup on the contact page names the patients it found, so that the admin's search for that
    patient shows who looked them up; a lookup that finds nobody names no patient."""
    aaltje = pseudonym(AALTJE, DEMO_PSEUDONYM_KEY.encode())
    nurse, _ = open_console(stack, "triage", username="triagist", password="demo-triagist")
    found = nurse.get(f"{stack.url('triage')}/console/contacts/new", params={"bsn": AALTJE})
    assert found.status_code == 200 and "Aaltje" in found.text
    by_name = nurse.get(f"{stack.url('triage')}/console/contacts/new",
                        params={"name": "Bakker", "birth_date": "1950-01-01"})
    assert by_name.status_code == 200 and "Aaltje" in by_name.text
    nobody = nurse.get(f"{stack.url('triage')}/console/contacts/new",
                       params={"name": "Niemand Onbekend", "birth_date": "1901-02-03"})
    assert nobody.status_code == 200 and "Aaltje" not in nobody.text

    hers = [e for e in audit_events(stack, "triage", patient=aaltje) if what(e).startswith("console patient lookup")]
    assert {what(e) for e in hers} == {"console patient lookup by BSN", "console patient lookup by name"}
    assert all(e["agent"][0]["who"]["identifier"]["value"] == "triagist" and e["subtype"][0]["code"] == "search"
               and e["entity"][0]["what"]["identifier"]["value"] == aaltje for e in hers)
    unnamed = [e for e in audit_events(stack, "triage", **{"patient:missing": "true"})
               if what(e).startswith("console patient lookup")]
    assert [what(e) for e in unnamed] == ["console patient lookup by name"]  # the one that found nobody

    admin.goto(f"{stack.url('triage')}/console/audit")
    admin.fill("input[name=patient]", AALTJE)
    with admin.expect_navigation():
        admin.keyboard.press("Enter")
    lookups = admin.locator("table.audit tbody tr", has_text="console patient lookup")
    assert lookups.count() == 2 and "triagist" in lookups.nth(0).inner_text()
    assert lookups.nth(0).locator("td:nth-child(5) a").get_attribute("title") == aaltje
