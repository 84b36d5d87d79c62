"""The billing officer's console in a real browser: month view with charts, drill-down, a correction."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page

from infra.client import service_request_of
from infra.referrals import referral_bundle
from infra.stack import ROOT, Stack
from shared.identifiers import pseudonym
from shared.settings import DEMO_PSEUDONYM_KEY
from tests.conftest import started_stack

pytestmark = pytest.mark.e2e
# Words of the other language where the kinds, statuses and derivations are shown, and what no reader should see.
ENGLISH_WORDS = re.compile(r"\b(original|credit|rebill|on|tariff|home visit|remote advice|triage only|not claimed|"
                           r"no prestation|draft|locked|superseded|booked)\b", re.IGNORECASE)
DUTCH_WORDS = re.compile(r"\b(oorspronkelijk|creditering|herdeclaratie|op|tarief|visite aan huis|advies op afstand|"
                         r"alleen triage|niet gedeclareerd|geen prestatie|concept|vastgezet|vervangen|geboekt|"
                         r"onderbouwing|totaal|grootboek|soort|bedrag|afleiding)\b", re.IGNORECASE)
RAW = re.compile(r"delimited-dbc|no-dutch-insurer|\bcents\b|most intensive")
SHOTS = ROOT / "test-artifacts" / "screenshots"
# bsn, disposition, organisation, worked by, contact
CASES = [("999990007", "home-visit", "URA 90000020", "ehr-wijk-oost", "HH"),
         ("999990056", "remote-advice", "URA 90000001", "ops", "VR"),
         ("999990068", "onsite-consult", "URA 90000001", "ops", "AMB")]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from started_stack(tmp_path_factory, "billing",
                             env={"BILLING_LOCK_GRACE_HOURS": "0", "BILLING_FEED_DEBOUNCE_SECONDS": "0.3"})


def deliver_cases(stack: Stack) -> None:
    ehr, ops = stack.client("ehr-delinde"), stack.client("ops")
    for bsn, disposition, org, worker, contact in CASES:
        posted = ehr.post_referral(referral_bundle(bsn=bsn, uzovi="9001"))
        posted.raise_for_status()
        sr = service_request_of(posted.json())
        request_id = ops.request_for(sr)["id"]
        ops.triage_request(request_id, urgency="U3", disposition=disposition, organization=org).raise_for_status()
        partner = stack.client(worker)
        tasks = [partner.wait_for_task(request_id)]
        partner.work_task(tasks[0]["id"], contact=contact, start=datetime.now(UTC).isoformat()).raise_for_status()
    insurer = stack.client("insurer-9001")
    period = datetime.now(UTC).strftime("%Y-%m")
    deadline = time.monotonic() + 60
    while insurer.feed("9001", period)["totals"]["quantity"] < len(CASES):
        assert time.monotonic() < deadline, "the feed did not fill up"
        time.sleep(0.3)


def fits_1366(page: Page) -> bool:
    """No horizontal scroll at 1,366 px."""
    width, client = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    return width <= client <= 1366


def amounts_on_one_line(page: Page) -> bool:
    """Every amount in the page's tables stands on one line: its text has a single line box (cells themselves
    stretch to the height of their row)."""
    lines = page.eval_on_selector_all("td.money", """cells => cells.map(cell => {
        const range = document.createRange();
        range.selectNodeContents(cell);
        return new Set(Array.from(range.getClientRects()).map(rect => Math.round(rect.top))).size;
    })""")
    return bool(lines) and all(count == 1 for count in lines)


def log_in_as_billing_officer(page: Page, url: str) -> None:
    page.goto(url)
    page.fill("input[name=username]", "declaratie")
    page.fill("input[name=password]", "demo-declaratie")
    with page.expect_navigation():
        page.keyboard.press("Enter")


def test_billing_officer_reviews_the_month_drills_down_and_corrects_the_insurer(stack: Stack,
                                                                                 browser: Browser) -> None:
    deliver_cases(stack)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    page.goto(f"{stack.url('billing_shadow')}/console")
    page.fill("input[name=username]", "declaratie")
    page.fill("input[name=password]", "demo-declaratie")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{stack.url('billing_shadow')}/console")
    main = page.inner_text("main")
    assert "Zorgverzekeraar Noord (UZOVI 9001)" in main and "Integraal − schaduw" in main
    assert page.locator("svg[aria-label='Integrale en schaduwkosten per maand'] rect").count() >= 12
    assert page.locator("svg[aria-label='Prestatiemix'] rect").count() == 3
    page.screenshot(path=str(SHOTS / "billing-overview.png"), full_page=True)

    assert page.locator("td", has_text="€\u00a0110,00").count() >= 1  # the VIS tariff, Dutch money
    cell = page.locator("td", has_text="€\u00a0110,00").first.bounding_box()
    assert cell is not None and cell["height"] < 40  # one line at 1366 px: the amount does not wrap
    assert amounts_on_one_line(page) and fits_1366(page)
    with page.expect_download() as csv_download:
        page.click("text=CSV (Excel) >> nth=0")
    dutch_csv = csv_download.value.path().read_bytes().decode("utf-8-sig").splitlines()
    assert dutch_csv[0].startswith("UZOVI;Periode;Revisie;Prestatie") and ";110,00;" in dutch_csv[2]
    with page.expect_download() as xlsx_download:
        page.click("text=XLSX >> nth=0")
    assert xlsx_download.value.path().read_bytes().startswith(b"PK")  # a zip: the workbook

    page.click("text=Onderbouwing >> nth=1")  # the VIS line of 9001
    assert "Visite aan huis (HH) op " in page.inner_text("main") and "→ VIS" in page.inner_text("main")
    assert "Oorspronkelijk" in page.inner_text("table.lines") and fits_1366(page)
    assert not ENGLISH_WORDS.search(page.inner_text("table.lines")) and not RAW.search(page.inner_text("table.lines"))
    assert amounts_on_one_line(page)
    page.screenshot(path=str(SHOTS / "billing-drilldown.png"), full_page=True)
    page.click("table a >> nth=0")
    ledger_url, patient_url = page.url, page.get_attribute("a.patient", "href")
    assert patient_url.startswith(stack.url("triage"))
    page.goto(patient_url)  # the front door shows who it was for, to the billing role only
    if page.locator("input[name=username]").count():
        page.fill("input[name=username]", "declaratie")
        page.fill("input[name=password]", "demo-declaratie")
        page.keyboard.press("Enter")
        page.wait_for_url(patient_url)
    assert "999990007" in page.inner_text("table.billing-patient")
    assert "Zorgverzekeraar Noord (UZOVI 9001)" in page.inner_text("table.billing-patient")
    page.goto(ledger_url)
    page.check("input[value=rebill]")
    page.select_option("select[name=uzovi]", "9002")
    page.fill("textarea[name=reason]", "Patiënt is verzekerd bij Zuid (polis gecontroleerd)")
    page.click("button[type=submit]")
    ledger = page.inner_text("main")
    assert "Creditering" in ledger and "Herdeclaratie" in ledger and "Vervangen" in ledger and "Geboekt" in ledger
    assert not ENGLISH_WORDS.search(page.inner_text("table.ledger")) and fits_1366(page) and amounts_on_one_line(page)
    assert "Patiënt is verzekerd bij Zuid (polis gecontroleerd) (declaratie)" in ledger
    page.screenshot(path=str(SHOTS / "billing-correction.png"), full_page=True)

    period = datetime.now(UTC).strftime("%Y-%m")
    deadline = time.monotonic() + 30
    while stack.client("insurer-9002").feed("9002", period)["totals"]["quantity"] != 1:
        assert time.monotonic() < deadline, "the rebill did not reach insurer 9002's feed"
        time.sleep(0.3)
    assert stack.client("insurer-9001").feed("9001", period)["totals"]["quantity"] == len(CASES) - 1
    page.goto(f"{stack.url('billing_shadow')}/console/tariffs")
    assert "NZa 2025" in page.inner_text("main") and "illustrative" in page.inner_text("main")
    assert page.locator("form.tariff").count() == 0  # tariffs are the admin's
    bad = page.goto(f"{stack.url('billing_shadow')}/console?period=2026-13")
    assert bad.status == 400 and "Ongeldige periode" in page.inner_text("h1")
    page.goto(f"{stack.url('billing_shadow')}/console/requests/unknown?lang=en")
    assert "Unknown request" in page.inner_text("h1")
    assert page.locator("main a", has_text="Back to the overview").get_attribute("href") == "/console"
    page.goto(f"{stack.url('billing_shadow')}/console?lang=nl")
    page.close()

    # SPEC §10: the ledger read and the correction name the request's patient by pseudonym (billing holds no BSN),
    # so the admin's audit search by BSN, which becomes that pseudonym, finds who read and corrected it.
    patient = pseudonym(CASES[0][0], DEMO_PSEUDONYM_KEY.encode())
    hers = billing_audit(stack, patient=patient)
    ledger_id = ledger_url.split("/console/requests/")[1].split("?")[0]
    assert {(e["subtype"][0]["code"], what(e).split(":")[0]) for e in hers} >= {
        ("read", f"console ledger of acute request {ledger_id}"),
        ("update", f"correction of acute request {ledger_id}")}
    assert all(e["agent"][0]["who"]["identifier"]["value"] == "declaratie" for e in hers
               if what(e).startswith(("console ledger", "correction")))
    assert not any(what(e).startswith("console ledger") for e in billing_audit(stack, **{"patient:missing": "true"}))


def billing_audit(stack: Stack, **params: str) -> list[dict[str, Any]]:
    """Billing's AuditEvents that meet `params` (FHIR search), read by the ops client."""
    answer = httpx.get(f"{stack.url('billing_shadow')}/fhir/AuditEvent", params={"_count": "1000", **params},
                       headers=stack.client("ops").headers())
    answer.raise_for_status()
    return [e["resource"] for e in answer.json().get("entry", [])]


def what(event: dict[str, Any]) -> str:
    """The text of the event's System Object entity (what was accessed)."""
    return next((e["what"].get("display", "") for e in event["entity"] if e["type"]["code"] == "2"), "")


def test_the_billing_console_in_english_has_no_dutch_words_and_english_money(stack: Stack, browser: Browser) -> None:
    """After the first test (three lines of 9001, the VIS one rebilled to 9002): every page in English when chosen."""
    period = datetime.now(UTC).strftime("%Y-%m")
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    base = stack.url("billing_shadow")
    log_in_as_billing_officer(page, f"{base}/console?lang=en")
    main = page.inner_text("main")
    assert "Integrated prestations" in main and "Integrated − shadow" in main
    assert "Prestations" in page.inner_text("nav")
    assert page.locator("td.money", has_text="€75.00").count() >= 1 and "€\u00a0" not in main  # CON of 9001
    assert not DUTCH_WORDS.search(main) and fits_1366(page) and amounts_on_one_line(page)

    page.goto(f"{base}/console/lines?period={period}&uzovi=9001")
    lines = page.inner_text("table.lines")
    assert "Original" in lines and "Credit" in lines and "Home visit (HH) on " in lines and "tariff €110.00" in lines
    assert not DUTCH_WORDS.search(lines) and not RAW.search(lines) and fits_1366(page) and amounts_on_one_line(page)
    page.screenshot(path=str(SHOTS / "billing-drilldown-en.png"), full_page=True)
    page.locator("tr", has_text="Credit").locator("a").first.click()
    ledger = page.inner_text("table.ledger")
    assert "Superseded" in ledger and "Booked" in ledger and "Rebill" in ledger and "Zorgverzekeraar Zuid" in ledger
    assert not DUTCH_WORDS.search(ledger) and not RAW.search(ledger) and fits_1366(page)
    assert "Record the correction" in page.inner_text("main")

    page.goto(f"{base}/console/tariffs")
    assert "Tariff tables" in page.inner_text("h1") and "Home visit" in page.inner_text("table")
    assert "€110.00" in page.inner_text("table") and fits_1366(page) and amounts_on_one_line(page)
    page.goto(f"{base}/console/evaluation")
    assert "Evaluation of the integrated-funding experiment" in page.inner_text("h1")
    assert "scope: region" in page.inner_text("main") and "Per month" in page.inner_text("main")
    assert page.locator("svg[aria-label='Inclusion (target ≥ 95%) per month'] line.target").count() == 1
    assert "€" in page.inner_text("table.months") and "€\u00a0" not in page.inner_text("table.months")
    assert fits_1366(page) and amounts_on_one_line(page)
    page.screenshot(path=str(SHOTS / "billing-evaluation-en.png"), full_page=True)
    page.goto(f"{base}/console?lang=nl")  # the language cookie is shared by the consoles of this host
    page.close()


def test_the_admin_adds_a_tariff_version_and_the_running_one_ends_the_day_before(stack: Stack,
                                                                                 browser: Browser) -> None:
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    page.goto(f"{stack.url('billing_shadow')}/console/tariffs")
    page.fill("input[name=username]", "beheer")
    page.fill("input[name=password]", "demo-beheer")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{stack.url('billing_shadow')}/console/tariffs")
    page.select_option("select[name=key]", "9001")
    page.select_option("select[name=code]", "CON")
    page.fill("input[name=price]", "80.00")
    page.fill("input[name=valid_from]", "2099-01-01")
    page.click("text=Versie toevoegen")
    assert "Prijs in euro's met een komma" in page.inner_text("[role=alert]")
    assert page.input_value("input[name=price]") == "80.00"  # the form comes back as typed
    page.fill("input[name=price]", "80,25")
    page.fill("input[name=source]", "contract Noord 2099")
    page.click("text=Versie toevoegen")
    page.wait_for_url(f"{stack.url('billing_shadow')}/console/tariffs")
    added = page.locator("tr", has_text="contract Noord 2099").inner_text()
    assert added.startswith("UZOVI 9001\tCON\t") and "€\u00a080,25\t01-01-2099\t–\t" in added
    closed = page.locator("tr", has_text="31-12-2098").inner_text()  # the running version ends the day before
    assert fits_1366(page) and amounts_on_one_line(page)
    assert closed.startswith("UZOVI 9001\tCON\t") and "€\u00a075,00\t01-01-2026\t31-12-2098\t" in closed
    page.select_option("select[name=key]", "9001")  # after a success the form starts afresh
    page.select_option("select[name=code]", "CON")
    page.fill("input[name=price]", "81,00")
    page.fill("input[name=valid_from]", "2098-06-01")
    page.click("text=Versie toevoegen")
    assert "01-01-2099" in page.inner_text("[role=alert]")
    page.close()


def _evaluation(stack: Stack, client: str, query: str, path: str = "/api/v1/evaluation") -> httpx.Response:
    return httpx.get(f"{stack.url('billing_shadow')}{path}?{query}", headers=stack.client(client).headers())


def test_evaluation_by_role_and_the_evaluators_page_with_a_printable_quarterly_report(stack: Stack,
                                                                                     browser: Browser) -> None:
    """After the first test: three U3 referrals of this month, insured with 9001 at triage, one line rebilled to
    9002. The ops client (billing role) reads exact figures; an insurer and the evaluator see "<5"."""
    period = datetime.now(UTC).strftime("%Y-%m")
    deadline = time.monotonic() + 30
    while (exact := _evaluation(stack, "ops", f"from={period}&to={period}").json())["months"][0]["requests"] \
            < len(CASES):
        assert time.monotonic() < deadline, "the evaluation read model did not fill up"
        time.sleep(0.3)
    month = exact["months"][0]
    assert exact["scope"] == "region" and not exact["suppressed"]
    assert month["by_channel"]["referral"] == 3 and month["by_urgency"]["U3"] == 3
    assert month["prestations"] == {"ADV": 1, "VIS": 1, "CON": 1}
    assert month["measures"]["outside_hospital_share"] == 1.0 and month["measures"]["inclusion_rate"] == 1.0

    noord = _evaluation(stack, "insurer-9001", f"from={period}&to={period}").json()
    assert noord["scope"] == "9001" and noord["suppressed"]
    assert noord["months"][0]["requests"] == "<5" and noord["months"][0]["measures"]["outside_hospital_share"] is None
    assert "<5" in _evaluation(stack, "insurer-9001", f"from={period}&to={period}", "/api/v1/evaluation.csv").text
    refused = {"from=2026-13&to=2026-12": 400, "from=2026-12&to=2026-10": 400, "from=2020-01&to=2026-01": 400,
               "from=x&to=2026-01": 400, f"from={period}&to={period}&uzovi=9002": 403}
    for query, status in refused.items():
        answer = _evaluation(stack, "insurer-9001", query)
        assert answer.status_code == status, query
        assert answer.json()["issue"][0]["diagnostics"], query
    reports = _evaluation(stack, "ops", f"period={period}", "/fhir/MeasureReport").json()
    assert reports["total"] == 8 and {e["resource"]["type"] for e in reports["entry"]} == {"summary"}
    assert _evaluation(stack, "insurer-9001", "", "/fhir/Measure").json()["total"] == 8

    page = browser.new_page(viewport={"width": 1366, "height": 900})
    page.goto(f"{stack.url('billing_shadow')}/console/evaluation")
    page.fill("input[name=username]", "evaluator")
    page.fill("input[name=password]", "demo-evaluator")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{stack.url('billing_shadow')}/console/evaluation")
    main = page.inner_text("main")
    assert "Evaluatie van het experiment" in main and "scope: regio" in main
    assert "<5" in page.inner_text("table.months")
    assert page.locator("svg[aria-label='Inclusie (norm ≥ 95 %) per maand'] line.target").count() == 1
    assert page.locator("svg[aria-label='Prestatiemix per maand'] rect").count() == 36  # 12 months × 3 codes
    assert page.locator("select[name=uzovi]").count() == 0  # the evaluator reads the region only
    assert fits_1366(page) and amounts_on_one_line(page) and "€\u00a0" in page.inner_text("table.months")
    page.screenshot(path=str(SHOTS / "billing-evaluation.png"), full_page=True)
    assert page.goto(f"{stack.url('billing_shadow')}/console").status == 403  # nothing else of billing
    page.goto(f"{stack.url('billing_shadow')}/console/evaluation")
    page.click("text=Kwartaalrapport")
    assert "Kwartaalrapport" in page.inner_text("h1")
    page.emulate_media(media="print")
    assert not page.locator(".noprint").is_visible()
    pdf = page.pdf(format="A4", landscape=True)
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
    page.screenshot(path=str(SHOTS / "billing-evaluation-report.png"), full_page=True)
    page.close()

    officer = browser.new_page(viewport={"width": 1366, "height": 900})
    officer.goto(f"{stack.url('billing_shadow')}/console/evaluation?uzovi=9001")
    officer.fill("input[name=username]", "declaratie")
    officer.fill("input[name=password]", "demo-declaratie")
    officer.keyboard.press("Enter")
    officer.wait_for_url("**/console/evaluation?uzovi=9001")
    current = officer.locator("table.months tr", has_text=period).inner_text()
    # Exact: 3 requests triaged for 9001; ADV and CON billed to it (3500 + 7500), the VIS rebilled to 9002.
    assert "<5" not in current and "\t3\t1/0/1\t€\u00a0110,00\t" in current
    officer.screenshot(path=str(SHOTS / "billing-evaluation-officer.png"), full_page=True)
    officer.close()

    # Showing the evaluation (aggregates, no patient) is audited as a read, the API's CSV as an export.
    evaluations = [e for e in billing_audit(stack, **{"patient:missing": "true"}) if what(e).startswith("evaluation ")]
    by = {(e["agent"][0]["who"]["identifier"]["value"], e["subtype"][0]["code"]) for e in evaluations}
    assert {("declaratie", "read"), ("evaluator", "read"), ("insurer-9001", "export")} <= by
    assert not {("declaratie", "export"), ("evaluator", "export")} & by


def test_only_a_hospital_reports_an_open_dbc_and_the_bsn_must_pass_the_eleven_proof(stack: Stack) -> None:
    url = f"{stack.url('billing_shadow')}/api/v1/open-dbcs"
    report = {"bsn": "999990007", "reference": "DBC-1", "start": "2026-11-01"}
    gp = httpx.post(url, json=report, headers=stack.client("ehr-delinde").headers())
    assert gp.status_code == 403 and gp.json()["issue"][0]["code"] == "forbidden"
    hospital = stack.client("ehr-zuidrand")
    assert httpx.post(url, json={**report, "bsn": "123456789"}, headers=hospital.headers()).status_code == 422
    accepted = httpx.post(url, json=report, headers=hospital.headers())
    assert accepted.status_code == 201 and accepted.json()["patient"].startswith("p-")


def test_a_referral_that_names_an_open_dbc_ends_delimited_in_billing(stack: Stack) -> None:
    ops, wijk = stack.client("ops"), stack.client("ehr-wijk-oost")
    posted = stack.client("ehr-delinde").post_referral(referral_bundle(bsn="999990081", uzovi="9002", open_dbc=True))
    posted.raise_for_status()
    sr = service_request_of(posted.json())
    request_id = ops.request_for(sr)["id"]
    ops.triage_request(request_id, urgency="U3", disposition="home-visit", organization="URA 90000020") \
        .raise_for_status()
    tasks = [wijk.wait_for_task(request_id)]
    wijk.work_task(tasks[0]["id"], contact="HH", start=datetime.now(UTC).isoformat()).raise_for_status()
    period = datetime.now(UTC).strftime("%Y-%m")
    deadline = time.monotonic() + 30
    while stack.client("insurer-9002").feed("9002", period)["exclusions"].get("delimited-dbc", 0) < 1:
        assert time.monotonic() < deadline, "the request was not delimited"
        time.sleep(0.3)


def test_a_call_linked_to_an_open_request_counts_as_double_triage_avoided(stack: Stack) -> None:
    """Front door to billing: a call for a patient whose referral is still open is linked, not triaged again;
    the triage then tells billing, whose evaluation counts one more linked contact."""
    ops, period = stack.client("ops"), datetime.now(UTC).strftime("%Y-%m")

    def linked() -> int:
        return _evaluation(stack, "ops", f"from={period}&to={period}").json()["months"][0]["linked_contacts"]

    before = linked()
    posted = stack.client("ehr-delinde").post_referral(referral_bundle(bsn="999990093", uzovi="9001"))
    posted.raise_for_status()
    request_id = ops.request_for(service_request_of(posted.json()))["id"]
    call = ops.record_contact(channel="phone", bsn="999990093", name="Bel Terug", birth_date=None, uzovi="9001",
                              complaint="nog steeds koorts")
    call.raise_for_status()
    assert call.json()["linked_to_open_request"] is True
    ops.triage_request(request_id, urgency="U4", disposition="remote-advice", organization="URA 90000001") \
        .raise_for_status()
    deadline = time.monotonic() + 30
    while linked() != before + 1:
        assert time.monotonic() < deadline, "billing's evaluation did not count the linked call"
        time.sleep(0.3)


def test_refusals_with_the_values_they_quote_speak_the_consoles_language(stack: Stack, browser: Browser) -> None:
    """After the first test: a correction, a tariff version and an evaluation period refused, in English and in Dutch,
    each with the values it quotes and none of the service's English text."""
    base, period = stack.url("billing_shadow"), datetime.now(UTC).strftime("%Y-%m")
    ops = stack.client("ops")
    lines = ops.http.get(f"{base}/api/v1/prestations", params={"period": period, "uzovi": "9001"},
                         headers=ops.headers()).json()["items"]
    request_id = next(line["acute_request"] for line in lines if line["code"] == "CON")
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    page.goto(f"{base}/console/tariffs?lang=en")
    page.fill("input[name=username]", "beheer")
    page.fill("input[name=password]", "demo-beheer")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/console/tariffs?lang=en")

    # A correction the service refuses (the line is already for that insurer).
    for lang, said in (("en", "The line is already for this insurer."),
                       ("nl", "De regel staat al op naam van deze verzekeraar.")):
        page.goto(f"{base}/console/requests/{request_id}?lang={lang}")
        page.check("input[value=rebill]")
        page.select_option("select[name=uzovi]", "9001")
        page.fill("textarea[name=reason]", "polis gecontroleerd")
        page.click("button[type=submit]")
        assert page.inner_text("[role=alert]") == said
        assert "UZOVI 9001" not in page.inner_text("[role=alert]")

    # A tariff version starting before one already planned, with that one's date; and the form's check of the price.
    page.goto(f"{base}/console/tariffs?lang=en")
    page.select_option("select[name=key]", "9001")
    page.select_option("select[name=code]", "VIS")
    page.fill("input[name=price]", "120,00")
    page.fill("input[name=valid_from]", "2098-03-01")
    page.click("form.tariff button")
    page.wait_for_url(f"{base}/console/tariffs")
    for lang, planned, price in (
            ("en", "There is already a version of VIS starting on 01-03-2098; choose a later date.",
             "A price in euros with a decimal comma, e.g. 110,00."),
            ("nl", "Er is al een versie van VIS die begint op 01-03-2098; kies een latere datum.",
             "Prijs in euro's met een komma, bijvoorbeeld 110,00.")):
        page.goto(f"{base}/console/tariffs?lang={lang}")
        page.select_option("select[name=key]", "9001")
        page.select_option("select[name=code]", "VIS")
        page.fill("input[name=price]", "115,00")
        page.fill("input[name=valid_from]", "2098-02-01")
        page.click("form.tariff button")
        assert page.inner_text("[role=alert]") == planned
        assert page.input_value("input[name=valid_from]") == "2098-02-01"  # the form comes back as typed
        page.fill("input[name=price]", "115.00")
        page.click("form.tariff button")
        assert page.inner_text("[role=alert]") == price and page.input_value("input[name=price]") == "115.00"

    # An evaluation period the wrong way round: a page saying which months, in words of the console.
    for lang, said in (("en", "Invalid period: The first month (2026-12) is after the last (2026-10)."),
                       ("nl", "Ongeldige periode: De eerste maand (2026-12) ligt na de laatste (2026-10).")):
        answer = page.goto(f"{base}/console/evaluation?from=2026-12&to=2026-10&lang={lang}")
        assert answer is not None and answer.status == 400
        assert page.inner_text("[role=alert]") == said and "is after to" not in page.inner_text("main")
    page.close()
