"""The whole referral-to-feed flow through real processes over the wire, as `make run` starts them."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy import Connection, MetaData, select

from infra.client import service_request_of
from infra.referrals import referral_bundle
from infra.stack import Stack
from shared.bus.topics import (
    ACUTE_REQUEST_CLOSED,
    CONTACT_DELIVERED,
    LINKED_CONTACT_RECORDED,
    PATIENT_CHANGED,
    PRESTATION_FEED,
    TASK_CHANGED,
    TASK_OVERDUE,
    TRIAGE_COMPLETED,
    every_topic,
)
from shared.console import SESSION_CHECK_SECONDS
from shared.db import make_engine
from tests.conftest import PostgresDatabases, free_port
from tests.e2e.consoles import open_console

pytestmark = pytest.mark.e2e

# Five demo-region patients insured with UZOVI 9001 (valid BSNs), each routed differently.
PLAN = [
    # bsn, disposition, organisation, worked by, delivered contact → expected prestation
    ("999990007", "home-visit", "URA 90000020", "ehr-wijk-oost", "HH"),
    ("999990019", "home-visit", "URA 90000020", "ehr-wijk-oost", "HH"),
    ("999990056", "remote-advice", "URA 90000001", "ops", "VR"),
    ("999990068", "onsite-consult", "URA 90000001", "ops", "AMB"),
    ("999990081", "remote-advice", "URA 90000001", "ops", None),
]
# Who they are: name, birth date, home address and mobile, which the privacy scan then looks for everywhere.
PEOPLE = {
    "999990007": ("Jan", "de Vries", "1941-03-12", ("Scanweg 1", "9901 AA", "Privacydorp"), "06-90000001"),
    "999990019": ("Aaltje", "Bakker", "1937-11-02", ("Scanweg 2", "9901 AB", "Privacydorp"), "06-90000002"),
    "999990056": ("Fatma", "Yılmaz", "1990-04-17", ("Scanweg 3", "9901 AC", "Privacydorp"), "06-90000003"),
    "999990068": ("Kees", "Meijer", "1946-12-19", ("Scanweg 4", "9901 AD", "Privacydorp"), "06-90000004"),
    "999990081": ("Gerda", "Huisman", "1947-09-09", ("Scanweg 5", "9901 AE", "Privacydorp"), "06-90000005"),
}
# From the demo tariff tables: 9001 contract prices and the shadow equivalents (2025+ NZa, illustrative).
EXPECTED_LINES = [
    {"code": "ADV", "quantity": 2, "unit_price_cents": 3500, "amount_cents": 7000, "shadow_amount_cents": 650 + 650},
    {"code": "VIS", "quantity": 2, "unit_price_cents": 11000, "amount_cents": 22000, "shadow_amount_cents": 2 * 8200},
    {"code": "CON", "quantity": 1, "unit_price_cents": 7500, "amount_cents": 7500, "shadow_amount_cents": 1243},
]


def wait_until(check: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.25)
    raise AssertionError(f"{what} not reached within {timeout}s")


@pytest.fixture(params=["sqlite", "postgresql"], scope="module")
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    database_urls: dict[str, str] = {}
    if request.param == "postgresql":
        databases: PostgresDatabases = request.getfixturevalue("postgres")
        database_urls = {name: databases.new(name) for name in ("triage", "coordination", "billing_shadow")}
    s = Stack(data_dir=tmp_path_factory.mktemp(f"stack-{request.param}"),
              ports={"triage": free_port(), "coordination": free_port(), "billing_shadow": free_port()},
              broker_port=free_port(), database_urls=database_urls, env={"BILLING_FEED_DEBOUNCE_SECONDS": "0.3"})
    try:
        s.start()
        yield s
    finally:
        s.stop()
        for log in sorted((s.data_dir / "logs").glob("*.log")):
            print(f"--- {log.name}\n{log.read_text()[-20000:]}")


def read_feed_topic(bootstrap: str, uzovi: str) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        consumer = AIOKafkaConsumer(PRESTATION_FEED, bootstrap_servers=bootstrap, group_id=None,
                                    auto_offset_reset="earliest")
        await consumer.start()
        found = []
        try:
            for _ in range(6):
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    found += [json.loads(r.value) for r in records if r.key == uzovi.encode()]
        finally:
            await consumer.stop()
        return found

    return asyncio.run(read())


def read_all_topics(bootstrap: str) -> list[tuple[str, bytes, list[tuple[str, bytes]], bytes]]:
    """Every record on every product topic: (topic, key, headers, value)."""
    async def read() -> list[tuple[str, bytes, list[tuple[str, bytes]], bytes]]:
        consumer = AIOKafkaConsumer(*every_topic(), bootstrap_servers=bootstrap, group_id=None,
                                    auto_offset_reset="earliest")
        await consumer.start()
        found = []
        try:
            for _ in range(8):
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    found += [(r.topic, r.key or b"", list(r.headers), r.value or b"") for r in records]
        finally:
            await consumer.stop()
        return found

    return asyncio.run(read())


def billing_rows(stack: Stack) -> list[tuple[str, str, str]]:
    """Every value of every column of every table in billing's database: (table, column, value as text)."""
    url = stack.database_urls.get("billing_shadow") or f"sqlite+aiosqlite:///{stack.data_dir / 'billing_shadow.db'}"

    async def read() -> list[tuple[str, str, str]]:
        engine = make_engine(url)
        try:
            async with engine.connect() as conn:
                def everything(sync: Connection) -> list[tuple[str, str, str]]:
                    metadata = MetaData()
                    metadata.reflect(sync)
                    return [(name, column, str(value)) for name, table in metadata.tables.items()
                            for row in sync.execute(select(table)).mappings()
                            for column, value in row.items() if value is not None]
                return await conn.run_sync(everything)
        finally:
            await engine.dispose()

    return asyncio.run(read())


def assert_patient_data_stays_where_it_belongs(stack: Stack, people: dict[str, tuple[Any, ...]],
                                               periods: set[str]) -> None:
    """Names, BSNs and birth dates travel only in patient-changed values (to coordination); addresses too, and
    phones besides in the Task's events and a linked call's; none of it is in a Kafka key or header, a log line,
    /metrics, billing's database or any feed (JSON, CSV, the feed topic)."""
    identifying = [v for bsn, (given, family, born, _, _) in people.items()
                   for v in (bsn, family, f"{given} {family}", born)]
    addresses = [part for *_, address, _ in people.values() for part in address]
    phones = [phone for *_, phone in people.values()]
    everything = [*identifying, *addresses, *phones]
    records = read_all_topics(stack.bootstrap)
    assert {topic for topic, *_ in records} >= {TRIAGE_COMPLETED, CONTACT_DELIVERED, ACUTE_REQUEST_CLOSED,
                                                 PATIENT_CHANGED, TASK_CHANGED, PRESTATION_FEED}
    # A linked call's callback number rides to coordination only, with the call's words.
    allowed = {PATIENT_CHANGED: everything, TASK_CHANGED: phones, TASK_OVERDUE: phones, LINKED_CONTACT_RECORDED: phones}
    carried = b""
    for topic, key, headers, value in records:
        exposed = key + b" ".join(name.encode() + b"=" + raw for name, raw in headers)
        for secret in everything:
            assert secret.encode() not in exposed, f"{secret} in a key or header on {topic}"
        may_carry = allowed.get(topic.removesuffix(".dlq"), [])
        for secret in everything:
            assert secret in may_carry or secret.encode() not in value, f"{secret} in a value on {topic}"
        if topic == PATIENT_CHANGED:
            carried += value
    # The scan looks where the data is: coordination did receive every one of them.
    assert [s for s in everything if s.encode() not in carried] == []
    for log in (stack.data_dir / "logs").glob("*.log"):
        text = log.read_text()
        for secret in everything:
            assert secret not in text, f"{secret} in {log.name}"
    for service in ("triage", "coordination", "billing_shadow"):
        metrics = httpx.get(f"{stack.url(service)}/metrics").text
        assert f'service="{service}"' in metrics  # the page holds this service's series
        for secret in everything:
            assert secret not in metrics, f"{secret} in {service}'s /metrics"
    rows = billing_rows(stack)
    assert {table for table, *_ in rows} >= {"request_fact", "prestation_ledger", "feed_revision", "audit_event"}
    for table, column, value in rows:
        for secret in everything:
            assert secret not in value, f"{secret} in billing's {table}.{column}"
    for uzovi in ("9001", "9002"):
        insurer = stack.client(f"insurer-{uzovi}")
        for period in periods:
            for path in (f"/api/v1/feeds/{uzovi}", f"/api/v1/feeds/{uzovi}.csv"):
                feed = insurer.http.get(f"{stack.url('billing_shadow')}{path}", params={"period": period},
                                        headers=insurer.headers())
                assert feed.status_code == 200, feed.text
                for secret in everything:
                    assert secret not in feed.text, f"{secret} in {path}"


def test_every_api_refuses_a_request_without_token(stack: Stack) -> None:
    for url in (f"{stack.url('triage')}/fhir/ServiceRequest", f"{stack.url('triage')}/api/v1/worklist",
                f"{stack.url('coordination')}/fhir/Task",
                f"{stack.url('billing_shadow')}/api/v1/feeds/9001?period=2026-11"):
        response = httpx.get(url)
        assert response.status_code == 401, url
        assert response.json()["resourceType"] == "OperationOutcome"


def test_referrals_flow_to_an_exact_insurer_feed_and_reposting_changes_nothing(stack: Stack) -> None:
    ehr = stack.client("ehr-delinde")
    ops = stack.client("ops")
    bundles = [referral_bundle(bsn=bsn, uzovi="9001", referral_id=f"e2e-{n}", bundle_id=f"bundle-{n}",
                               given=PEOPLE[bsn][0], family=PEOPLE[bsn][1], birth_date=PEOPLE[bsn][2],
                               address=PEOPLE[bsn][3], phone=PEOPLE[bsn][4])
               for n, (bsn, *_) in enumerate(PLAN)]
    first = []
    for bundle in bundles:
        response = ehr.post_referral(bundle)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["type"] == "transaction-response"
        assert all(e["response"]["status"] == "201 Created" for e in body["entry"] if "Organization" not in
                   e["response"]["location"])
        first.append(body)

    sr_ids = {next(e["response"]["location"].split("/")[1] for e in b["entry"]
                   if e["response"]["location"].startswith("ServiceRequest/")) for b in first}
    worklist = wait_until(lambda: [i for i in ops.worklist() if i["service_request"] and
                                   i["service_request"].split("/")[1] in sr_ids], what="requests on the worklist")
    assert len(worklist) == 5
    assert all(i["channel"] == "referral" and i["status"] == "open" and i["patient"].startswith("p-")
               for i in worklist)
    by_sr = {i["service_request"].split("/")[1]: i for i in worklist}
    sr_of_bsn = {}
    for bsn, body in zip([p[0] for p in PLAN], first, strict=True):
        sr_of_bsn[bsn] = next(e["response"]["location"].split("/")[1] for e in body["entry"]
                              if e["response"]["location"].startswith("ServiceRequest/"))

    request_of_bsn = {}
    for bsn, disposition, org, _worker, _contact in PLAN:
        item = by_sr[sr_of_bsn[bsn]]
        request_of_bsn[bsn] = item["id"]
        response = ops.triage_request(item["id"], urgency="U3", disposition=disposition, organization=org)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "triaged"
    again = ops.triage_request(request_of_bsn[PLAN[0][0]], urgency="U1", disposition="ambulance",
                               organization="URA 90000001")
    assert again.status_code == 409 and again.json()["resourceType"] == "OperationOutcome"

    start = datetime.now(UTC).isoformat()
    for bsn, _disposition, org, worker, contact in PLAN:
        partner = stack.client(worker)
        owner = org.replace("URA ", "http://fhir.nl/fhir/NamingSystem/ura|")
        tasks = wait_until(lambda p=partner, o=owner, b=bsn: [
            t for t in p.tasks(owner=o) if t["basedOn"][0]["identifier"]["value"] == request_of_bsn[b]],
            what=f"the Task for {bsn}")
        assert len(tasks) == 1
        task = tasks[0]
        assert task["status"] == "requested"
        assert task["focus"]["reference"] == f"{stack.url('triage')}/fhir/ServiceRequest/{sr_of_bsn[bsn]}"
        assert task["owner"]["identifier"]["value"] == org.split()[1]
        assert "end" in task["restriction"]["period"]
        response = partner.work_task(task["id"], contact=contact, start=start)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "completed"

    period = datetime.now(UTC).astimezone().strftime("%Y-%m")
    insurer = stack.client("insurer-9001")

    def feed_complete() -> dict[str, Any] | None:
        feed = insurer.feed("9001", period)
        if feed["totals"]["quantity"] != 5:
            print("feed so far:", feed)
            return None
        return feed

    feed = wait_until(feed_complete, what="a feed with five prestations")
    assert feed["lines"] == EXPECTED_LINES
    assert feed["totals"] == {"quantity": 5, "amount_cents": 36500, "shadow_amount_cents": 1300 + 16400 + 1243}
    assert feed["inclusion_rate"] == 1.0
    assert "patient" not in json.dumps(feed).lower() and "999990" not in json.dumps(feed)

    published = read_feed_topic(stack.bootstrap, "9001")
    assert published and published[-1]["revision"] == feed["revision"]
    assert published[-1]["lines"] == feed["lines"]
    assert [d["revision"] for d in published] == sorted({d["revision"] for d in published})

    # A partner retrying every referral creates nothing new: no request, no Task, no prestation.
    for bundle, original in zip(bundles, first, strict=True):
        response = ehr.post_referral(bundle)
        assert response.status_code == 200
        assert [e["response"]["location"] for e in response.json()["entry"]] == \
               [e["response"]["location"] for e in original["entry"]]
    fresh_ids = [referral_bundle(bsn=bsn, uzovi="9001", referral_id=f"e2e-{n}") for n, (bsn, *_) in enumerate(PLAN)]
    for bundle in fresh_ids:  # same ServiceRequest identifier, new Bundle: conditional create
        assert ehr.post_referral(bundle).status_code == 200
    time.sleep(2)
    all_requests = ops.worklist("open,triaged,closed")
    assert len([i for i in all_requests if i["service_request"] and i["service_request"].split("/")[1] in sr_ids]) == 5
    assert len(ops.tasks(_count="500")) == 5
    assert insurer.feed("9001", period) == feed
    assert_patient_data_stays_where_it_belongs(stack, PEOPLE, {period})


def test_insurer_reads_only_its_own_feed(stack: Stack) -> None:
    response = stack.client("insurer-9002").http.get(
        f"{stack.url('billing_shadow')}/api/v1/feeds/9001", params={"period": "2026-11"},
        headers=stack.client("insurer-9002").headers())
    assert response.status_code == 403
    assert response.json()["issue"][0]["code"] == "forbidden"


def test_nurse_triages_in_the_console_and_markup_in_a_name_stays_text(stack: Stack) -> None:
    ehr = stack.client("ehr-delinde")
    response = ehr.post_referral(referral_bundle(bsn="999990044", given="<script>alert(1)</script>",
                                                 family="Müller-Lüdenscheidt", uzovi="9002"))
    assert response.status_code == 200, response.text
    assert httpx.get(f"{stack.url('triage')}/console").status_code == 303
    console, worklist_page = open_console(stack, "triage", username="triagist", password="demo-triagist")
    page = worklist_page.text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Müller-Lüdenscheidt" in page
    assert "Ingelogd als <strong>triagist</strong>" in page
    service_request = service_request_of(response.json())
    request_id = next(i["id"] for i in stack.client("ops").worklist() if i["service_request"] == service_request)
    form = console.get(f"{stack.url('triage')}/console/requests/{request_id}").text
    csrf = form.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    refused = console.post(f"{stack.url('triage')}/console/requests/{request_id}/triage", data={
        "urgency": "U2", "disposition": "onsite-consult", "assigned_organization": "URA 90000001",
        "csrf_token": "forged"})
    assert refused.status_code == 403
    done = console.post(f"{stack.url('triage')}/console/requests/{request_id}/triage", data={
        "urgency": "U2", "disposition": "onsite-consult", "assigned_organization": "URA 90000001",
        "note": "Komt naar de post", "csrf_token": csrf}, follow_redirects=False)
    assert done.status_code == 303
    assert request_id not in [i["id"] for i in stack.client("ops").worklist()]
    triaged = {i["id"]: i for i in stack.client("ops").worklist("triaged")}
    assert triaged[request_id]["urgency"] == "U2" and triaged[request_id]["disposition"] == "onsite-consult"


def test_one_login_opens_all_three_consoles_and_logout_ends_it(stack: Stack) -> None:
    browser, triage = open_console(stack, "triage", username="beheer", password="demo-beheer")
    assert "Ingelogd als <strong>beheer</strong>" in triage.text
    for service in ("coordination", "billing_shadow"):
        page = browser.get(f"{stack.url(service)}/console")
        assert page.status_code == 200 and 'name="password"' not in page.text, service
        assert "Ingelogd als <strong>beheer</strong>" in page.text
    audit_page = browser.get(f"{stack.url('coordination')}/console/audit")
    assert audit_page.status_code == 200 and "Auditlog" in audit_page.text
    ehr = stack.client("ehr-delinde")
    assert ehr.post_referral(referral_bundle(bsn=None, given="<script>alert(2)</script>", family="X")).is_success
    pages = [f"{stack.url(s)}{p}" for s in ("triage", "coordination", "billing_shadow")
             for p in ("/console", "/console/audit")] + [f"{stack.url('triage')}/console/users"]
    for url in pages:
        text = browser.get(url).text
        assert "<script>alert(2)</script>" not in text, url
    browser.get(f"{stack.url('triage')}/console/logout")
    # Single logout: coordination still holds its own cookie, but its login session has ended at triage; it asks for
    # a login again once its last check (at most SESSION_CHECK_SECONDS old) runs out.
    deadline = time.monotonic() + 2 * SESSION_CHECK_SECONDS + 2
    while 'name="password"' not in browser.get(f"{stack.url('coordination')}/console").text:
        assert time.monotonic() < deadline, "coordination's session outlived the logout in triage"
        time.sleep(0.5)


def test_roles_and_csrf_hold_in_the_consoles(stack: Stack) -> None:
    nurse, _ = open_console(stack, "triage", username="triagist", password="demo-triagist")
    assert nurse.get(f"{stack.url('billing_shadow')}/console").status_code == 403
    assert nurse.get(f"{stack.url('triage')}/console/users").status_code == 403
    admin, users = open_console(stack, "triage", username="beheer", password="demo-beheer")
    users = admin.get(f"{stack.url('triage')}/console/users")
    form = {"username": "cm.de.boer", "display_name": "C. de Boer <b>", "role": "casemanager",
            "password": "a long enough password"}
    assert admin.post(f"{stack.url('triage')}/console/users", data={**form, "csrf_token": "forged"}).status_code == 403
    csrf = users.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    created = admin.post(f"{stack.url('triage')}/console/users", data={**form, "csrf_token": csrf})
    assert created.status_code == 200 and "C. de Boer &lt;b&gt;" in created.text
    casemanager, page = open_console(stack, "coordination", username="cm.de.boer", password="a long enough password")
    assert "Ingelogd als <strong>cm.de.boer</strong>" in page.text


def test_login_is_locked_after_repeated_failures(stack: Stack) -> None:
    browser = httpx.Client(follow_redirects=True, timeout=15)
    for _ in range(5):
        _, page = open_console(stack, "billing_shadow", username="declaratie", password="wrong", browser=browser)
        assert page.status_code == 401 and "verkeerd wachtwoord" in page.text
    _, page = open_console(stack, "billing_shadow", username="declaratie", password="demo-declaratie",
                           browser=browser)
    assert page.status_code == 401 and "Te veel mislukte pogingen" in page.text
