"""The partner console in a real browser: the transfer point, with no EHR link, logs in, sees its Task live, accepts,
starts and completes it with the delivered contact, and billing records the prestation; a refused action says why
and changes nothing; the console works at phone width; an admin binds a new user to an organisation."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Browser, Page

from infra.client import service_request_of
from infra.polling import wait_until
from infra.referrals import referral_bundle
from infra.stack import ROOT, Stack
from tests.conftest import started_stack
from tests.e2e.consoles import login_form_fields, open_console

pytestmark = pytest.mark.e2e
SHOTS = ROOT / "test-artifacts" / "screenshots"
RTP, WIJK_OOST = "URA 90000030", "URA 90000020"
AMSTERDAM = ZoneInfo("Europe/Amsterdam")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from started_stack(tmp_path_factory, "partner")


def routed(stack: Stack, *, bsn: str | None, complaint: str, urgency: str, disposition: str, organisation: str,
           note: str) -> tuple[str, dict[str, Any]]:
    """A referral from De Linde triaged to `organisation`: its acute request id and the Task coordination made."""
    ops = stack.client("ops")
    posted = stack.client("ehr-delinde").post_referral(
        referral_bundle(bsn=bsn, given="Aaltje", family="Bakker", birth_date="1937-11-02", gender="female",
                        reason=complaint, address=("Kerkstraat 12", "1234 AB", "Oostdorp"), phone="06 12345678"))
    posted.raise_for_status()
    request_id = str(ops.request_for(service_request_of(posted.json()))["id"])
    ops.triage_request(request_id, urgency=urgency, disposition=disposition, organization=organisation,
                       note=note).raise_for_status()
    return request_id, ops.wait_for_task(request_id)


def task_now(stack: Stack, task_id: str) -> dict[str, Any]:
    ops = stack.client("ops")
    response = ops.http.get(f"{stack.url('coordination')}/fhir/Task/{task_id}", headers=ops.headers())
    response.raise_for_status()
    return dict(response.json())


def log_in(page: Page, stack: Stack, username: str, password: str, query: str = "") -> None:
    page.goto(f"{stack.url('coordination')}/console/partner{query}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    with page.expect_navigation(url=f"{stack.url('coordination')}/console/partner{query}"):
        page.keyboard.press("Enter")


def act(page: Page, task_id: str, button: str) -> None:
    with page.expect_navigation():
        page.click(f"#task-{task_id} button:has-text('{button}')")


def test_transfer_point_works_its_task_live_and_the_prestation_reaches_billing(stack: Stack,
                                                                                browser: Browser) -> None:
    request_id, task = routed(stack, bsn="999990019", complaint="Valt steeds, woont alleen", urgency="U3",
                              disposition="rtp-placement", organisation=RTP,
                              note="Kortdurend verblijf nodig, dochter kan niet meer")
    _, elsewhere = routed(stack, bsn="999990032", complaint="Wond verzorgen", urgency="U4",
                                     disposition="community-nursing", organisation=WIJK_OOST, note="Dagelijks")
    task_id, pseudonym = task["id"], task["for"]["identifier"]["value"]
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1366, "height": 768}, locale="nl-NL")
    log_in(page, stack, "rtp", "demo-rtp")
    assert "Regionaal Transferpunt" in page.inner_text("h1")
    card = page.locator(f"#group-new #task-{task_id}")
    assert "U3" in card.inner_text() and "Plaatsing via transferpunt" in card.inner_text()
    assert card.locator(".note").inner_text() == "Kortdurend verblijf nodig, dochter kan niet meer"
    assert card.locator(".complaint").inner_text() == (task.get("description") or "–")
    due = datetime.fromisoformat(task["restriction"]["period"]["end"]).astimezone(AMSTERDAM)
    shown_due = due.strftime("%H:%M" if due.date() == datetime.now(AMSTERDAM).date() else "%d-%m %H:%M")
    assert card.locator("time").inner_text() == shown_due
    # The patient as the front door knows them (patient-changed), by name with age, address and phone.
    born = date(1937, 11, 2)
    today = datetime.now(AMSTERDAM).date()
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    wait_until(lambda: (page.reload(), "Aaltje Bakker" in card.locator(".patient").inner_text())[1],
               "patient name on the card")
    assert f"Aaltje Bakker, {age} jaar" in card.locator(".patient").inner_text()
    assert pseudonym[:14] not in card.locator(".patient").inner_text()
    address = card.locator(".address").inner_text()
    assert "Kerkstraat 12" in address and "Oostdorp" in address
    assert card.locator("a[href^='tel:']").inner_text() == "06 12345678"
    assert page.locator(f"#task-{elsewhere['id']}").count() == 0  # Wijkverpleging Oost's work is not shown

    # Live: a new Task for the transfer point appears without reloading the page.
    _, second = routed(stack, bsn="999990020", complaint="Kan niet meer lopen", urgency="U2",
                       disposition="rtp-placement", organisation=RTP, note="Bed nodig vandaag")
    page.wait_for_selector(f"#group-new #task-{second['id']}", timeout=30000)
    page.screenshot(path=str(SHOTS / "partner-console-new.png"))

    act(page, task_id, "Accepteren")
    assert page.inner_text("[role=status]") == "Taak geaccepteerd."
    assert page.locator(f"#group-accepted #task-{task_id}").count() == 1
    assert task_now(stack, task_id)["status"] == "accepted"
    act(page, task_id, "Starten")
    started = task_now(stack, task_id)
    assert started["status"] == "in-progress" and started["executionPeriod"]["start"]
    card = page.locator(f"#group-in-progress #task-{task_id}")
    card.locator("summary:has-text('Afronden')").click()
    assert card.locator("input[name=contact][value=AMB]").is_checked()  # a placement is a contact on site
    started_at = datetime.fromisoformat(started["executionPeriod"]["start"]).astimezone(AMSTERDAM)
    assert card.locator("input[name=start]").input_value() == started_at.strftime("%Y-%m-%dT%H:%M")
    page.screenshot(path=str(SHOTS / "partner-console.png"), full_page=True)
    act(page, task_id, "Contact vastleggen en afronden")
    assert page.inner_text("[role=status]") == "Taak afgerond, het contact is vastgelegd."
    assert "Op locatie (AMB)" in page.inner_text(f"#group-finished #task-{task_id}")

    done = task_now(stack, task_id)
    assert done["status"] == "completed" and done["output"][0]["valueCoding"]["code"] == "AMB"
    # The start the form offered (to the minute) was left alone: the contact began when the Task was started.
    assert datetime.fromisoformat(done["executionPeriod"]["start"]) == started_at
    assert datetime.fromisoformat(done["executionPeriod"]["end"]) > started_at
    ops = stack.client("ops")
    period = datetime.now(AMSTERDAM).strftime("%Y-%m")

    def prestation() -> list[dict[str, Any]]:
        response = ops.http.get(f"{stack.url('billing_shadow')}/api/v1/prestations",
                                params={"period": period, "uzovi": "9001"}, headers=ops.headers())
        response.raise_for_status()
        return [line for line in response.json()["items"] if line["acute_request"] == request_id]

    lines = wait_until(prestation, "prestation for the transfer point's contact")
    assert [(line["code"], line["quantity"]) for line in lines] == [("CON", 1)]

    # Every page showing the patient and every action is in the audit log, as the transfer point.
    audit = ops.http.get(f"{stack.url('coordination')}/fhir/AuditEvent", params={"patient": pseudonym},
                         headers=ops.headers()).json()
    by_rtp = [e["resource"] for e in audit["entry"] if e["resource"]["agent"][0]["who"]["identifier"]["value"] == "rtp"]
    assert {e["agent"][0]["onBehalfOf"]["identifier"]["value"] for e in by_rtp} == {"90000030"}
    assert {e["subtype"][0]["code"] for e in by_rtp} == {"read", "update"}
    assert all(e["agent"][0]["purposeOfUse"][0]["coding"][0]["code"] == "TREAT" for e in by_rtp)
    page.close()


def test_a_refused_action_says_why_in_the_consoles_language_and_changes_nothing(stack: Stack,
                                                                                 browser: Browser) -> None:
    _, cancelled = routed(stack, bsn="999990044", complaint="Verward", urgency="U3", disposition="rtp-placement",
                          organisation=RTP, note="Opvang zoeken")
    _, taken = routed(stack, bsn="999990056", complaint="Gevallen", urgency="U3", disposition="rtp-placement",
                      organisation=RTP, note="Geen mantelzorg")
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    page.route("**/console/partner/stream", lambda route: route.abort())  # this page hears of no change
    log_in(page, stack, "rtp", "demo-rtp")
    page.wait_for_selector(f"#task-{cancelled['id']}")

    # The front door withdraws the request while the page still offers to accept it.
    ops = stack.client("ops")
    ops.patch_task(cancelled["id"], [{"op": "replace", "path": "/status", "value": "cancelled"},
                                     {"op": "add", "path": "/statusReason", "value": {"text": "opgelost"}}]) \
        .raise_for_status()
    version = task_now(stack, cancelled["id"])["meta"]["versionId"]
    act(page, cancelled["id"], "Accepteren")
    assert page.inner_text("#refusal") == "Deze taak is al geannuleerd en verandert niet meer: accepteren kan niet."
    after = task_now(stack, cancelled["id"])
    assert (after["status"], after["meta"]["versionId"]) == ("cancelled", version)

    # In English, while a colleague accepts and starts the other Task from another browser.
    page.goto(f"{stack.url('coordination')}/console/partner?lang=en")
    page.wait_for_selector(f"#task-{taken['id']} button:has-text('Accept')")
    colleague, _ = open_console(stack, "coordination", username="rtp", password="demo-rtp")
    partner_page = colleague.get(f"{stack.url('coordination')}/console/partner")
    csrf = partner_page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    forged = colleague.post(f"{stack.url('coordination')}/console/partner/tasks/{taken['id']}/accept",
                            data={"csrf_token": "forged"}, follow_redirects=False)
    assert forged.status_code == 403 and task_now(stack, taken["id"])["status"] == "requested"
    accepted = colleague.post(f"{stack.url('coordination')}/console/partner/tasks/{taken['id']}/accept",
                              data={"csrf_token": csrf}, follow_redirects=False)
    started = colleague.post(f"{stack.url('coordination')}/console/partner/tasks/{taken['id']}/start",
                             data={"csrf_token": csrf}, follow_redirects=False)
    assert (accepted.status_code, started.status_code) == (303, 303)
    version = task_now(stack, taken["id"])["meta"]["versionId"]
    act(page, taken["id"], "Accept")
    assert page.inner_text("#refusal") == "This Task is in progress: accepting it is not possible now."
    after = task_now(stack, taken["id"])
    assert (after["status"], after["meta"]["versionId"]) == ("in-progress", version)
    refusals = ops.http.get(f"{stack.url('coordination')}/fhir/AuditEvent",
                            params={"patient": cancelled["for"]["identifier"]["value"]}, headers=ops.headers()).json()
    assert any(e["resource"]["outcome"] == "4" and "partner console" in e["resource"]["entity"][-1]["what"]["display"]
               for e in refusals["entry"])
    page.close()


def test_at_phone_width_one_column_large_targets_and_only_the_partner_console(stack: Stack,
                                                                                browser: Browser) -> None:
    _, task = routed(stack, bsn=None, complaint="Kortademig", urgency="U2", disposition="home-visit",
                     organisation=WIJK_OOST, note="Saturatie 91%, zuurstof thuis")
    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, locale="nl-NL")
    log_in(page, stack, "wijk-oost", "demo-wijk-oost")
    card = page.locator(f"#group-new #task-{task['id']}")
    assert "Visite aan huis" in card.inner_text() and "Saturatie 91%, zuurstof thuis" in card.inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the phone
    boxes = [page.locator(f"#group-{g}").bounding_box() for g in ("new", "accepted", "in-progress")]
    assert len({round(b["x"]) for b in boxes if b}) == 1  # the groups stack in one column
    accept = card.locator("button:has-text('Accepteren')").bounding_box()
    assert accept is not None and accept["height"] >= 44 and accept["width"] >= 300
    page.screenshot(path=str(SHOTS / "partner-console-phone.png"), full_page=True)

    # A partner opens its own console only: the case manager's and the nurse's answer 403.
    for url in (f"{stack.url('coordination')}/console", f"{stack.url('triage')}/console",
                f"{stack.url('billing_shadow')}/console"):
        assert page.goto(url).status == 403, url  # type: ignore[union-attr]
    page.close()


def test_the_admin_binds_a_new_partner_user_to_an_organisation(stack: Stack) -> None:
    _, task = routed(stack, bsn="999990007", complaint="Pijn op de borst", urgency="U1", disposition="onsite-consult",
                     organisation="URA 90000010", note="ECG op de SEH")
    admin, users = open_console(stack, "triage", username="beheer", password="demo-beheer")
    users = admin.get(f"{stack.url('triage')}/console/users")
    assert "Regionaal Transferpunt (URA 90000030)" in users.text and "Zorgverzekeraar Noord" not in users.text
    csrf = users.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    form = {"username": "seh.de.jong", "display_name": "S. de Jong", "role": "partner",
            "password": "a long enough password", "csrf_token": csrf}
    unbound = admin.post(f"{stack.url('triage')}/console/users", data=form)
    assert unbound.status_code == 422 and "kies de organisatie" in unbound.text
    created = admin.post(f"{stack.url('triage')}/console/users",
                         data={**form, "org": "http://fhir.nl/fhir/NamingSystem/ura|90000010"})
    assert created.status_code == 200 and "Ziekenhuis Zuidrand (URA 90000010)" in created.text
    assert admin.get(f"{stack.url('coordination')}/console/partner").status_code == 403  # the admin treats no one

    browser = httpx.Client(follow_redirects=True, timeout=15)
    page = browser.get(f"{stack.url('coordination')}/console/partner")
    page = browser.post(f"{stack.url('triage')}/oauth/login", data={
        **login_form_fields(page.text), "username": "seh.de.jong", "password": "a long enough password"})
    assert page.status_code == 200 and "Ziekenhuis Zuidrand" in page.text and f'id="task-{task["id"]}"' in page.text
    ops = stack.client("ops")
    audit = ops.http.get(f"{stack.url('coordination')}/fhir/AuditEvent",
                         params={"patient": task["for"]["identifier"]["value"]}, headers=ops.headers()).json()
    reads = [e["resource"]["agent"][0] for e in audit["entry"]
             if e["resource"]["agent"][0]["who"]["identifier"]["value"] == "seh.de.jong"]
    assert reads and {a["onBehalfOf"]["identifier"]["value"] for a in reads} == {"90000010"}
