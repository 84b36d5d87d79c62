"""The demo region's first shift: a few dozen acute requests worked through the public APIs, so that on first
start every console shows real figures (`make run`; the end-to-end test of the demo region).

Requests come in as partner referrals (De Linde, Zuidrand), phone calls and walk-ins, for patients of both
insurers and two without a Dutch insurer; the front door triages them over every urgency and follow-up action;
each owner works its Task through the FHIR API as far as the case says. Open on purpose, as real open work:
a few requests not yet triaged, a few Tasks under way, and the Tasks of organisations without an API client
that may work them (the GP practices' own-GP follow-ups, the transfer point's placements).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx

from infra.client import ApiClient, completion_patch, service_request_of, task_worker
from infra.polling import wait_until
from infra.referrals import DEMO_PATIENTS, DemoPatient, referral_bundle
from infra.stack import Stack
from shared.identifiers import AGB_SYSTEM, URA_SYSTEM
from shared.region import DEMO_CLIENTS


@dataclass(frozen=True)
class Route:
    """A follow-up action, the organisation it is routed to (one that provides it in the region's directory,
    shared/region.py) and the contact that organisation then delivers (VR, HH, AMB; None: no further contact)."""

    disposition: str
    organisation: str  # "URA 90000020"
    contact: str | None
    note: str  # the triage nurse's note that travels with the Task

    @property
    def worker(self) -> str | None:
        """The client that works this organisation's Tasks, None when no client may (SPEC §5)."""
        return task_worker(self.organisation)


ADVICE = Route("remote-advice", "URA 90000001", "VR", "Terugbellen met advies; bij verergering opnieuw bellen")
VISIT_BY_POST = Route("home-visit", "URA 90000001", "HH", "Visite door de dienstdoende huisarts")
VISIT_BY_NURSE = Route("home-visit", "URA 90000020", "HH", "Visite door de wijkverpleging")
CONSULT_AT_POST = Route("onsite-consult", "URA 90000001", "AMB", "Consult op de post")
CONSULT_AT_HOSPITAL = Route("onsite-consult", "URA 90000010", "AMB", "Beoordeling op de SEH van Zuidrand")
NURSING = Route("community-nursing", "URA 90000020", "HH", "Acute wijkverpleging thuis")
OWN_GP_DE_LINDE = Route("gp-office-hours", "AGB 01000001", None, "Eigen huisarts volgende werkdag")
OWN_GP_HET_PLEIN = Route("gp-office-hours", "AGB 01000002", None, "Eigen huisarts volgende werkdag")
HOSPITAL = Route("hospital-referral", "URA 90000010", "AMB", "Verwezen naar de specialist in Zuidrand")
TRANSFER_POINT = Route("rtp-placement", "URA 90000030", None, "Tijdelijk bed aangevraagd via het transferpunt")
# The front door dispatches the ambulance; its own part ends there, with no further contact of its own.
AMBULANCE = Route("ambulance", "URA 90000001", None, "Ambulance ingezet")
ROUTES: tuple[Route, ...] = (ADVICE, VISIT_BY_POST, VISIT_BY_NURSE, CONSULT_AT_POST, CONSULT_AT_HOSPITAL, NURSING,
                             OWN_GP_DE_LINDE, OWN_GP_HET_PLEIN, HOSPITAL, TRANSFER_POINT, AMBULANCE)

TASK_STEPS = ("requested", "accepted", "in-progress", "completed")
# The partner's own priority on a referral, as it would judge the urgency the front door then gives.
REFERRAL_PRIORITY = {"U0": "stat", "U1": "stat", "U2": "asap", "U3": "urgent", "U4": "routine", "U5": "routine"}


@dataclass(frozen=True)
class DemoCase:
    """One acute request of the demo shift and how far it gets."""

    patient: DemoPatient
    via: str  # "ehr-delinde" or "ehr-zuidrand" (the partner posts a referral), "phone" or "walk-in"
    complaint: str
    urgency: str | None = None  # None: still waiting for triage
    route: Route | None = None
    until: str = "completed"  # how far the owner works the Task: one of TASK_STEPS
    caller: str = "patient"  # who made a phone call: patient or relative
    second_call: str | None = None  # a relative calls again while the request is open; linked, not a new request
    open_dbc: bool = False  # the referrer names a running hospital DBC for this condition

    @property
    def channel(self) -> str:
        return "referral" if self.via.startswith("ehr-") else self.via


def _patient(bsn: str | None, given: str, family: str, birth_date: str, gender: str,
             uzovi: str | None) -> DemoPatient:
    return DemoPatient(bsn, given, family, birth_date, gender, uzovi)


JAN, AALTJE, MOHAMED, INGRID, SOREN, FATMA = DEMO_PATIENTS

# BSNs 99999200x–99999232x: fictional, 11-proof, apart from the region's other demo patients (99999000x–…).
CASES: tuple[DemoCase, ...] = (
    DemoCase(JAN, "ehr-delinde", "Toenemend benauwd sinds vanochtend, bekend met COPD", "U2", VISIT_BY_POST),
    DemoCase(AALTJE, "ehr-delinde", "Gevallen in de badkamer, pijn in de linkerheup, kan niet staan", "U2",
             HOSPITAL),
    DemoCase(MOHAMED, "phone", "Drukkende pijn op de borst sinds een half uur, zweterig", "U1", AMBULANCE),
    DemoCase(INGRID, "ehr-delinde", "Ontstoken wond aan het onderbeen, koorts 38,4", "U3", NURSING),
    DemoCase(SOREN, "walk-in", "Snijwond in de hand bij het koken, bloedt door het verband heen", "U3",
             CONSULT_AT_POST),
    DemoCase(FATMA, "phone", "Koorts en hoofdpijn sinds twee dagen, drinkt goed", "U4", ADVICE),
    DemoCase(_patient("999992004", "Pieter", "Visser", "1958-02-14", "male", "9002"), "ehr-zuidrand",
             "Na ontslag katheter verstopt, pijn in de onderbuik", "U3", NURSING),
    DemoCase(_patient("999992016", "Wilhelmina", "Smit", "1933-07-08", "female", "9001"), "ehr-zuidrand",
             "Na heupoperatie thuis niet zelfredzaam, mantelzorger overbelast", "U4", TRANSFER_POINT,
             until="requested",
             second_call="Dochter belt: moeder is vannacht weer gevallen, wanneer is er een plek?"),
    DemoCase(_patient("999992028", "Henk", "Mulder", "1949-10-03", "male", "9001"), "phone",
             "Echtgenote belt: man plots onwel, reageert niet, ademt niet normaal", "U0", AMBULANCE, caller="relative"),
    DemoCase(_patient("999992041", "Sanne", "de Boer", "1995-05-27", "female", "9002"), "walk-in",
             "Enkel verzwikt bij het sporten, dik en blauw", "U4", CONSULT_AT_POST),
    DemoCase(_patient("999992053", "Kees", "Meijer", "1946-12-19", "male", "9002"), "ehr-delinde",
             "Verward sinds gisteren, koorts, pijn bij het plassen", "U2", VISIT_BY_POST,
             second_call="Zoon belt: vader is nu erg suf en wil niet drinken"),
    DemoCase(_patient("999992065", "Emma", "de Groot", "2019-03-11", "female", "9001"), "phone",
             "Moeder belt: oorpijn en koorts 38,9 sinds vanmiddag", "U4", ADVICE, caller="relative"),
    DemoCase(_patient("999992077", "Gerrit", "Bos", "1940-06-30", "male", "9001"), "ehr-zuidrand",
             "Palliatieve zorg thuis, pijn niet onder controle", "U2", VISIT_BY_NURSE),
    DemoCase(_patient("999992089", "Anouk", "Vos", "1988-09-02", "female", "9002"), "phone",
             "Hevige buikpijn rechtsonder sinds vanmiddag, braakt", "U2", CONSULT_AT_HOSPITAL),
    DemoCase(_patient("999992090", "Hans", "Peters", "1955-04-22", "male", "9002"), "ehr-delinde",
             "Bloedsuikers boven de 20, veel dorst, veel plassen", "U3", ADVICE),
    DemoCase(_patient("999992107", "Lotte", "Hendriks", "1983-01-16", "female", "9001"), "walk-in",
             "Vishaak in de duim, komt er niet zelf uit", "U4", CONSULT_AT_POST),
    DemoCase(_patient("999992119", "Bram", "van Leeuwen", "1971-08-05", "male", "9002"), "ehr-delinde",
             "Hartfalen: drie kilo aangekomen in een week, dikke enkels, benauwd bij plat liggen", "U2", HOSPITAL),
    DemoCase(_patient("999992120", "Maria", "Dekker", "1944-11-28", "female", "9001"), "phone",
             "Bloeddrukmedicatie op, verder geen klachten", "U5", OWN_GP_DE_LINDE, until="requested"),
    DemoCase(_patient("999992132", "Thomas", "Brouwer", "1986-03-09", "male", "9002"), "phone",
             "Rugpijn sinds drie dagen, loopt goed, geen uitstraling", "U5", OWN_GP_HET_PLEIN, until="requested"),
    DemoCase(_patient("999992144", "Cor", "van Dijk", "1938-05-01", "male", "9002"), "ehr-zuidrand",
             "Ontslag na longontsteking, tijdelijk een bed in het verpleeghuis nodig", "U4", TRANSFER_POINT,
             until="requested"),
    DemoCase(_patient("999992156", "Noor", "Jacobs", "2001-07-24", "female", "9001"), "phone",
             "Hartkloppingen en tintelingen in de handen, erg angstig", "U3", ADVICE),
    DemoCase(_patient("999992168", "Willem", "Kok", "1962-10-17", "male", "9001"), "ehr-delinde",
             "Rode, gezwollen kuit na een lange vlucht", "U3", CONSULT_AT_HOSPITAL),
    DemoCase(_patient("999992181", "Fenna", "Koster", "1929-02-03", "female", "9002"), "ehr-delinde",
             "Sondevoeding loopt niet meer, sonde verstopt", "U3", NURSING, until="in-progress"),
    DemoCase(_patient("999992193", "Ahmed", "Benali", "1977-06-12", "male", "9001"), "phone",
             "Bekend met nierstenen, koliekpijn sinds vannacht", "U2", VISIT_BY_POST, until="accepted"),
    DemoCase(_patient("999992211", "Ruud", "Verhoeven", "1966-09-21", "male", "9002"), "walk-in",
             "Brandwond aan de onderarm door kokend water", "U3", CONSULT_AT_POST),
    DemoCase(_patient("999992223", "Truus", "Prins", "1936-04-14", "female", "9001"), "ehr-zuidrand",
             "Terminaal, 's nachts onrustig, familie vraagt om hulp", "U2", NURSING),
    DemoCase(_patient("999992235", "Daan", "Sanders", "2016-12-05", "male", "9002"), "phone",
             "Vader belt: van de trampoline gevallen, pols pijnlijk en scheef", "U2", CONSULT_AT_HOSPITAL,
             caller="relative"),
    # A tourist without a BSN or a Dutch insurer: accepted and treated, billed with an exclusion instead.
    DemoCase(_patient(None, "Elise", "Peeters", "1984-08-19", "female", None), "walk-in",
             "Wespensteek, galbulten en jeuk over het hele lichaam", "U2", CONSULT_AT_POST),
    DemoCase(_patient("999992247", "Jacob", "Timmermans", "1960-01-25", "male", "9002"), "ehr-delinde",
             "Longaanval bij bekende COPD, onder behandeling van de longarts", "U2", CONSULT_AT_HOSPITAL,
             open_dbc=True),
    DemoCase(_patient("999992259", "Rik", "de Wit", "1993-03-30", "male", "9001"), "phone",
             "Met de fiets gevallen, hoofdwond, niet buiten bewustzijn geweest", "U3", CONSULT_AT_POST),
    DemoCase(_patient("999992260", "Ilse", "Vermeulen", "1974-05-18", "female", "9002"), "ehr-zuidrand",
             "Wond na buikoperatie lekt, verband doorgelekt", "U3", VISIT_BY_NURSE),
    DemoCase(_patient("999992272", "Hendrik", "Wouters", "1951-06-07", "male", "9001"), "ehr-delinde",
             "Kan sinds vanochtend niet plassen, buik gespannen",
             second_call="Echtgenote belt: de pijn wordt erger"),
    DemoCase(_patient("999992284", "Sophie", "van den Berg", "1999-11-13", "female", "9002"), "phone",
             "Misselijk en duizelig sinds het starten van nieuwe medicatie"),
    DemoCase(_patient("999992296", "Gerda", "Huisman", "1947-09-09", "female", "9001"), "ehr-zuidrand",
             "Stoma lekt, huid eromheen kapot en pijnlijk"),
)


class DemoLoadError(RuntimeError):
    """The product refused a step of the demo shift, or an expected event did not arrive in time."""


@dataclass
class Loaded:
    """What the loader learnt about one case: its acute request and, once triaged, its Task."""

    case: DemoCase
    request_id: str
    patient: str  # the pseudonym the services know the patient by
    received_at: datetime
    task: dict[str, Any] | None = None


Result = TypeVar("Result")


def _checked(response: httpx.Response, what: str) -> httpx.Response:
    if response.status_code >= 400:
        raise DemoLoadError(f"{what}: {response.status_code} {response.text[:300]}")
    return response


def _name(patient: DemoPatient) -> str:
    return f"{patient.given} {patient.family}"


STREETS = ("Dorpsstraat", "Kerkstraat", "Molenweg", "Schoolstraat", "Lindelaan", "Stationsweg", "Beukenlaan",
           "Havenkade", "Julianastraat", "Brink")


def home_of(number: int) -> tuple[str, str, str]:
    """A fictional home address for the demo case with this number: street and number, postal code, city."""
    return (f"{STREETS[number % len(STREETS)]} {number + 1}", f"{1230 + number // len(STREETS)} "
            f"{'ABCDEFGH'[number % 8]}{'KLMN'[number % 4]}", "Oostdorp")


def phone_of(number: int) -> str:
    """A fictional mobile number for the demo case with this number (the caller's, when a relative called)."""
    return f"06-{20_000_000 + 7919 * number:08d}"


def load_demo_region(stack: Stack, *, cases: tuple[DemoCase, ...] = CASES, progress: Callable[[str], None] = print,
                     timeout: float = 60) -> list[Loaded]:
    """Work the demo shift through the running stack's public APIs: post every case's first contact, link the
    later calls, triage, wait for the Tasks at coordination, let each owner work its Task as far as the case
    says (a completed one with its delivered contact, inside the time between receipt and now), and wait until
    billing has a line for every request that closed. Returns what it learnt per case, in the order of `cases`.
    Raises DemoLoadError naming the step when the product refuses one or an event takes over `timeout` seconds.
    """
    ops = stack.client("ops")
    clients: dict[str, ApiClient] = {"ops": ops}

    def client(client_id: str) -> ApiClient:
        return clients.setdefault(client_id, stack.client(client_id))

    loaded = [_first_contact(case, number, ops, client) for number, case in enumerate(cases)]
    for item in loaded:
        if item.case.second_call:
            _second_call(item, ops)
    channels = Counter(item.case.channel for item in loaded)
    progress(f"Demo region: {len(loaded)} acute requests in ({channels['referral']} referrals, {channels['phone']} "
             f"phone calls, {channels['walk-in']} walk-ins), "
             f"{sum(1 for i in loaded if i.case.second_call)} later calls linked to them")

    triaged = [item for item in loaded if item.case.route is not None]
    for item in triaged:
        route = item.case.route
        assert route is not None and item.case.urgency is not None
        _checked(ops.triage_request(item.request_id, urgency=item.case.urgency, disposition=route.disposition,
                                    organization=route.organisation, note=route.note),
                 f"triage of {_name(item.case.patient)}")

    def tasks_arrived() -> bool:
        by_request = {t["basedOn"][0]["identifier"]["value"]: t for t in ops.tasks(_count="500")}
        for item in triaged:
            item.task = by_request.get(item.request_id)
        return all(item.task for item in triaged)

    wait_until(tasks_arrived, f"coordination making a Task for each of the {len(triaged)} triaged requests", timeout,
               interval=0.2, error=DemoLoadError)
    progress(f"Demo region: {len(triaged)} triaged, {len(loaded) - len(triaged)} still waiting for triage; "
             f"every triaged request has its Task at coordination")

    for item in triaged:
        _work(item, client)
    closing = [item for item in triaged if item.case.until == "completed"]
    progress(f"Demo region: {len(closing)} Tasks completed by their owners, "
             f"{sum(1 for i in triaged if i.case.until in ('accepted', 'in-progress'))} under way, "
             f"{sum(1 for i in triaged if i.case.until == 'requested')} waiting for their organisation")

    def billed() -> bool:
        recorded = {line["acute_request"] for line in ops.prestations()}
        return all(item.request_id in recorded for item in closing)

    wait_until(billed, f"billing recording a prestation for each of the {len(closing)} closed requests", timeout,
               interval=0.2, error=DemoLoadError)
    progress(f"Demo region: billing recorded a prestation for each of the {len(closing)} closed requests")
    return loaded


def _first_contact(case: DemoCase, number: int, ops: ApiClient, client: Callable[[str], ApiClient]) -> Loaded:
    patient = case.patient
    if case.channel == "referral":
        partner = client(case.via)
        org = next(c.org for c in DEMO_CLIENTS if c.client_id == case.via)
        bundle = referral_bundle(
            bsn=patient.bsn, given=patient.given, family=patient.family, birth_date=patient.birth_date,
            gender=patient.gender, uzovi=patient.uzovi, reason=case.complaint,
            requester_agb=org.value if org.system == AGB_SYSTEM else None,
            requester_ura=org.value if org.system == URA_SYSTEM else None,
            priority=REFERRAL_PRIORITY.get(case.urgency or "", "urgent"), referral_id=f"demo-{number}",
            bundle_id=f"demo-b{number}", open_dbc=case.open_dbc, authored_on=datetime.now(UTC).isoformat(),
            address=home_of(number), phone=phone_of(number))
        response = _checked(partner.post_referral(bundle), f"referral of {_name(patient)} by {case.via}")
        service_request = service_request_of(response.json())
        item = next((i for i in ops.worklist("open") if i["service_request"] == service_request), None)
        if item is None:
            raise DemoLoadError(f"the referral of {_name(patient)} opened no new acute request (is this data folder "
                                "already loaded?)")
    else:
        response = _checked(ops.record_contact(channel=case.channel, bsn=patient.bsn, name=_name(patient),
                                               birth_date=patient.birth_date, uzovi=patient.uzovi,
                                               complaint=case.complaint, caller=case.caller,
                                               callback_phone=phone_of(number), address=home_of(number)),
                            f"{case.channel} contact of {_name(patient)}")
        body = response.json()
        if body["linked_to_open_request"]:
            raise DemoLoadError(f"the {case.channel} contact of {_name(patient)} was linked to an open request "
                                "(is this data folder already loaded?)")
        item = body["request"]
    return Loaded(case, item["id"], item["patient"], datetime.fromisoformat(item["received_at"]))


def _second_call(item: Loaded, ops: ApiClient) -> None:
    patient = item.case.patient
    response = _checked(ops.record_contact(channel="phone", bsn=patient.bsn, name=_name(patient),
                                           birth_date=patient.birth_date, uzovi=patient.uzovi,
                                           complaint=item.case.second_call or "", caller="relative"),
                        f"second call about {_name(patient)}")
    body = response.json()
    if not body["linked_to_open_request"] or body["request"]["id"] != item.request_id:
        raise DemoLoadError(f"the second call about {_name(patient)} was not linked to its open request")


def _work(item: Loaded, client: Callable[[str], ApiClient]) -> None:
    """Move the Task through the steps up to the case's `until`; completing records the delivered contact
    within the time between the request's receipt (or the Task's creation, if later) and now."""
    route, task = item.case.route, item.task
    assert route is not None and task is not None
    steps = TASK_STEPS[1:TASK_STEPS.index(item.case.until) + 1]
    if not steps:
        return
    if route.worker is None:
        raise DemoLoadError(f"nobody can work the Tasks of {route.organisation}: leave them requested")
    worker = client(route.worker)
    for step in steps:
        if step == "completed":
            earliest = max(item.received_at, datetime.fromisoformat(task["authoredOn"]))
            span = datetime.now(UTC) - earliest
            operations = completion_patch(contact=route.contact, start=(earliest + span * 0.3).isoformat(),
                                          end=(earliest + span * 0.9).isoformat())
        else:
            operations = [{"op": "replace", "path": "/status", "value": step}]
        _checked(worker.patch_task(task["id"], operations),
                 f"{route.worker} moving the Task of {_name(item.case.patient)} to {step}")
