"""Reading the audit log: FHIR search for authorised clients and a console page for the admin (both audited)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from shared import audit, search
from shared.auth import Caller, require_scope
from shared.console import console_user, local_time
from shared.i18n import language, translator
from shared.identifiers import is_valid_bsn, pseudonym, searched_pseudonym
from shared.region import organisation
from shared.responses import FhirJSONResponse

router = APIRouter(tags=["audit"])
Admin = Annotated[Caller, console_user("beheer")]
PAGE_SIZE, MAX_PAGE_SIZE = 100, 1000
CONSOLE_ROWS = 200


@router.get("/fhir/AuditEvent")
async def search_events(request: Request,
                        caller: Caller = require_scope(resource="AuditEvent", action="s")) -> Response:
    wanted = search.read_request(request, audit.SEARCH, default_count=PAGE_SIZE, max_count=MAX_PAGE_SIZE)
    search.require_json(wanted)
    async with request.app.state.runtime.sessions() as session:
        events, total = await audit.find(session, request=wanted)
    patients = wanted.values("patient")
    await audit.for_request(request, subtype="search", entity=f"AuditEvent?{request.url.query}",
                            patient=searched_pseudonym(patients[0]) if len(patients) == 1 else None,
                            purpose=audit.PURPOSE_OPERATIONS)
    return FhirJSONResponse(search.searchset(base=f"{request.app.state.settings.public_url}/fhir",
                                             resource_type="AuditEvent", search=wanted, total=total, resources=events))


def capability() -> dict[str, Any]:
    """The AuditEvent entry of a service's CapabilityStatement (every service serves this search)."""
    return {"type": "AuditEvent", "interaction": [{"code": "search-type"}],
            "searchParam": [p.capability() for p in audit.SEARCH.values()],
            "documentation": "The service's own NEN 7513 audit log, with the scope system/AuditEvent.s; JSON only. "
                             + search.paging_documentation(default_count=PAGE_SIZE, max_count=MAX_PAGE_SIZE,
                                                           order="Newest first.")}


# --- The admin's console page -----------------------------------------------------------------------------------

# Dutch words for the codes an AuditEvent carries (English in shared/i18n.py). Action: the restful-interaction
# subtype this service records (audit.ACTIONS); outcome: FHIR AuditEvent.outcome; purpose: v3 ActReason codes.
ACTION_WORDS = {"create": "Aangemaakt", "read": "Gelezen", "update": "Gewijzigd", "delete": "Verwijderd",
                "search": "Gezocht", "export": "Geëxporteerd", "login": "Ingelogd"}
OUTCOME_WORDS = {"0": "Gelukt", "4": "Geweigerd", "8": "Fout", "12": "Ernstige fout"}
PURPOSE_WORDS = {"TREAT": "Behandeling", "ETREAT": "Spoedbehandeling", "HOPERAT": "Bedrijfsvoering zorg",
                 "HPAYMT": "Declaratie", "PATRQT": "Verzoek van de patiënt", "HSYSADMIN": "Systeembeheer"}
PSEUDONYM = re.compile(r"^p-[0-9a-f]{32}$")
MIN_NAME_LENGTH = 2


@dataclass(frozen=True)
class KnownPatient:
    """A patient as a service that holds names knows it: enough for the admin to recognise whom they found."""
    pseudonym: str
    name: str
    birth_date: str | None = None


@dataclass(frozen=True)
class PatientNames:
    """How a service that knows patients (triage, coordination) resolves them for the audit page: `by_name` finds
    patients whose name contains the text (case-insensitive, at most a few dozen), `by_pseudonyms` names the
    pseudonyms it knows. A service without patient names (billing) registers none: `app.state.patient_names`."""
    by_name: Callable[[AsyncSession, str], Awaitable[list[KnownPatient]]]
    by_pseudonyms: Callable[[AsyncSession, Iterable[str]], Awaitable[dict[str, KnownPatient]]]


@dataclass(frozen=True)
class Query:
    """What the admin typed, classified: kind is "all", "pseudonym", "bsn" or "name"; `pseudonym` is set for the
    first two kinds that name one (a BSN becomes its pseudonym through the keyed hash and is not kept); `error` is a
    Dutch message (a key of shared/i18n.ENGLISH) when the text cannot be searched."""
    kind: str
    pseudonym: str | None = None
    name: str | None = None
    error: str | None = None


def classify(text: str | None, *, key: bytes) -> Query:
    """Turn the search field into a query: empty → all events; `p-<32 hex>` (or with the pseudonym system) → that
    pseudonym; nine digits (spaces and dots allowed) → a BSN, checked with the 11-proof and pseudonymised with `key`
    (shared.identifiers.pseudonym, the same keyed hash every service uses); anything else → a name of at least
    MIN_NAME_LENGTH letters. Pure: no lookup, nothing stored."""
    value = (text or "").strip()
    if not value:
        return Query("all")
    named = searched_pseudonym(value) if "|" in value else value
    if named and PSEUDONYM.match(named.lower()):
        return Query("pseudonym", pseudonym=named.lower())
    digits = re.sub(r"[\s.]", "", value)
    if digits.isdigit():
        if len(digits) != 9 or not is_valid_bsn(digits):
            return Query("bsn", error="Dit is geen geldig BSN (9 cijfers die de elfproef doorstaan).")
        return Query("bsn", pseudonym=pseudonym(digits, key))
    if len(value) < MIN_NAME_LENGTH:
        return Query("name", error="Typ minstens twee letters van de naam.")
    return Query("name", name=value)


def abbreviate(value: str, keep: int = 10) -> str:
    """A pseudonym as the page shows it: its first `keep` characters and an ellipsis (the full one in a tooltip)."""
    return value if len(value) <= keep + 1 else value[:keep] + "…"


def _recorded(event: Mapping[str, Any]) -> str:
    try:
        return local_time(datetime.fromisoformat(str(event.get("recorded"))), "%d-%m-%Y %H:%M:%S")
    except ValueError:
        return str(event.get("recorded", ""))


def audit_row(event: Mapping[str, Any], *, lang: str,
              names: Mapping[str, KnownPatient] | None = None) -> dict[str, Any]:
    """One AuditEvent as a row of the audit page, in the console's language ("nl" or "en"): `time` in
    Europe/Amsterdam ("dd-mm-yyyy hh:mm:ss"), `who` (user or client) with `role`, `on_behalf` (the organisation's
    name when it is of the region, else its identifier), `action`, `outcome` and `purpose` in words (an unknown
    code is shown as it is), `patient` (the full pseudonym or None), `patient_name` (from `names`, else None),
    `what` (the entity's text), `detail` (outcomeDesc) and `failed` (the outcome is not success)."""
    t = translator(lang)
    agent = (event.get("agent") or [{}])[0]
    behalf = (agent.get("onBehalfOf") or {}).get("identifier") or {}
    org = organisation(str(behalf.get("system", "")), str(behalf.get("value", ""))) if behalf else None
    purpose = next((c.get("code") for p in agent.get("purposeOfUse") or [] for c in p.get("coding") or []), None)
    subtype = next((s.get("code") for s in event.get("subtype") or []), None)
    patient = next((e["what"]["identifier"]["value"] for e in event.get("entity") or []
                    if (e.get("type") or {}).get("code") == "1" and "identifier" in (e.get("what") or {})), None)
    known = (names or {}).get(patient) if patient else None
    outcome = str(event.get("outcome", ""))
    return {
        "time": _recorded(event),
        "who": ((agent.get("who") or {}).get("identifier") or {}).get("value", ""),
        "role": (agent.get("role") or [{}])[0].get("text"),
        "on_behalf": org.name if org else (behalf.get("value") or "–"),
        "action": t(ACTION_WORDS[subtype]) if subtype in ACTION_WORDS else (subtype or "–"),
        "outcome": t(OUTCOME_WORDS[outcome]) if outcome in OUTCOME_WORDS else outcome,
        "purpose": t(PURPOSE_WORDS[purpose]) if purpose in PURPOSE_WORDS else (purpose or "–"),
        "patient": patient, "patient_short": abbreviate(patient) if patient else "",
        "patient_name": known.name if known else None,
        "what": " ".join(str((e.get("what") or {}).get("display", "")) for e in event.get("entity") or []
                         if (e.get("type") or {}).get("code") == "2" and (e.get("what") or {}).get("display")),
        "detail": event.get("outcomeDesc"), "failed": outcome != audit.OUTCOME_SUCCESS,
    }


async def _resolve(session: AsyncSession, query: Query, names: PatientNames | None) -> list[KnownPatient]:
    """The patients the query names; a pseudonym nobody here knows by name is still searched (by pseudonym)."""
    if query.kind == "name" and query.name:
        return await names.by_name(session, query.name) if names else []
    if query.pseudonym:
        known = await names.by_pseudonyms(session, [query.pseudonym]) if names else {}
        return [known.get(query.pseudonym) or KnownPatient(query.pseudonym, "")]
    return []


async def _audit_search(request: Request, query: Query, found: Sequence[KnownPatient]) -> None:
    """The search is itself audited: one event per patient it named (by pseudonym: never the BSN or the name
    typed), or one without a patient when it named none."""
    state = request.app.state
    entity = "console audit log" if query.kind == "all" else f"console audit log: search by {query.kind}"
    if query.kind == "name" and not found:
        entity += " (no patient found)"
    async with state.runtime.sessions() as session, session.begin():
        for patient in found or [None]:
            await audit.record(session, service=state.settings.service_name, caller=request.state.caller,
                               subtype="search", entity=entity, patient=patient.pseudonym if patient else None,
                               purpose=audit.PURPOSE_OPERATIONS)


@router.get("/console/audit", response_class=HTMLResponse, include_in_schema=False)
async def page(request: Request, user: Admin, patient: str | None = None) -> Response:
    """The newest events, of all patients or of those the admin searched for by name, BSN or pseudonym. A name is
    searched only where the service knows names (app.state.patient_names); elsewhere the page says where to go."""
    settings = request.app.state.settings
    names: PatientNames | None = getattr(request.app.state, "patient_names", None)
    query = classify(patient, key=settings.pseudonym_key_bytes)
    if query.kind == "name" and names is None and query.error is None:
        query = Query("name", error="Deze dienst kent geen namen van patiënten: zoek hier op BSN of pseudoniem, "
                                    "of op naam in het auditlog van triage.")
    found: list[KnownPatient] = []
    events: list[dict[str, Any]] = []
    async with request.app.state.runtime.sessions() as session:
        if query.error is None:
            found = await _resolve(session, query, names)
            if query.kind == "all" or found:
                events = await audit.search(session, patients=[p.pseudonym for p in found] or None,
                                            count=CONSOLE_ROWS)
    if query.error is None:
        await _audit_search(request, query, found)
    lang = language(request)
    known = {p.pseudonym: p for p in found if p.name}
    return request.app.state.templates.TemplateResponse(request, "audit.html", {
        "user": user, "rows": [audit_row(e, lang=lang, names=known) for e in events], "patient": patient or "",
        "query": query, "found": found, "names_known": names is not None,
        "triage_audit": f"{settings.triage_public_url}/console/audit",
        "service": settings.service_name}, status_code=400 if query.error else 200)
