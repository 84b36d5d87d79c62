"""The triage nurse's console: the live worklist with filters, recording phone and walk-in contacts,
and the triage page with the patient's context and an explicit re-triage."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlencode

import httpx
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.triage import accounts, configuration, service
from services.triage.console import forms, present
from services.triage.domain.rules import AMSTERDAM, DISPOSITIONS, URGENCIES, due_by
from services.triage.models import AcuteRequest, LinkedContact, PatientRecord, StoredResource, TriageDecision
from shared import audit
from shared.auth import Caller
from shared.console import change_stream, console_user
from shared.fhir import FhirError, loads
from shared.i18n import language, translator
from shared.region import FRONT_DOOR, ORGANISATIONS

router = APIRouter(prefix="/console", include_in_schema=False)
Nurse = Annotated[Caller, console_user("triagist")]
Admin = Annotated[Caller, console_user("beheer")]
CHANNELS = ("referral", "phone", "walk-in")
PROVIDERS = [o for o in ORGANISATIONS if o.kind != "insurer"]  # whom a partner-console account may work for


def _error(request: Request, user: Caller, status: int, message: str, detail: str = "") -> Response:
    """An HTML error page in the console's language (header, menu, a way back to the worklist) instead of a
    bare text body; ``message`` is a Dutch key of shared/i18n.py, ``detail`` is shown as given (e.g. the id)."""
    return request.app.state.templates.TemplateResponse(request, "error.html", {
        "user": user, "message": message, "detail": detail}, status_code=status)


def _aware(m: datetime | None) -> datetime | None:
    return m if m is None or m.tzinfo else m.replace(tzinfo=UTC)


async def _worklist(request: Request, *, channel: str | None, urgency: str | None, overdue: bool,
                    q: str | None) -> list[dict[str, object]]:
    async with request.app.state.runtime.sessions() as session:
        rows = await service.worklist(session, statuses=("open", "triaged"))
        ids = [r.patient_id for r in rows if r.patient_id]
        patients = {p.id: p for p in (await session.execute(select(PatientRecord).where(
            PatientRecord.id.in_(ids)))).scalars()} if ids else {}  # type: ignore[attr-defined]
        news = await service.new_contacts_since_triage(session, rows)
        # The search also finds a request by what a later call about it said ("verward" from the daughter's call).
        said: dict[str, str] = {}
        if q and rows:
            for acute_request_id, complaint in (await session.execute(select(
                    LinkedContact.acute_request_id, LinkedContact.complaint).where(
                    LinkedContact.acute_request_id.in_([r.id for r in rows])))).all():  # type: ignore[attr-defined]
                said[acute_request_id] = f"{said.get(acute_request_id, '')} {complaint}"
    now = datetime.now(UTC)
    items = []
    for r in rows:
        patient = patients.get(r.patient_id or "")
        due = _aware(r.due_at)
        minutes_left = int((due - now).total_seconds() // 60) if due else None
        late = minutes_left is not None and minutes_left < 0
        text = f"{patient.display_name if patient else ''} {r.complaint} {said.get(r.id, '')}".lower()
        if (channel and r.channel != channel) or (urgency and r.urgency != urgency) or (overdue and not late) \
                or (q and q.lower() not in text):
            continue
        items.append({"r": r, "patient": patient, "minutes_left": minutes_left, "overdue": late,
                      "new_contact": r.id in news,
                      "waiting": int((now - _aware(r.received_at)).total_seconds() // 60)})  # type: ignore[operator]
    return items


@router.get("", response_class=HTMLResponse)
async def worklist(request: Request, user: Nurse, channel: Annotated[str | None, Query(max_length=10)] = None,
                   urgency: Annotated[str | None, Query(max_length=2)] = None, overdue: bool = False,
                   q: Annotated[str | None, Query(max_length=100)] = None) -> Response:
    items = await _worklist(request, channel=channel, urgency=urgency, overdue=overdue, q=q)
    await audit.for_request(request, subtype="search", entity="console worklist")
    return request.app.state.templates.TemplateResponse(request, "worklist.html", {
        "user": user, "items": items, "channels": CHANNELS, "urgencies": URGENCIES,
        "filters": {"channel": channel or "", "urgency": urgency or "", "overdue": overdue, "q": q or ""},
        "query": request.url.query})


@router.get("/rows", response_class=HTMLResponse)
async def worklist_rows(request: Request, user: Nurse, channel: str | None = None, urgency: str | None = None,
                        overdue: bool = False, q: str | None = None) -> Response:
    items = await _worklist(request, channel=channel, urgency=urgency, overdue=overdue, q=q)
    await audit.for_request(request, subtype="search", entity="console worklist (live)")
    return request.app.state.templates.TemplateResponse(request, "_rows.html", {"items": items})


@router.get("/stream")
async def stream(request: Request, user: Nurse) -> StreamingResponse:
    """Server-sent events: 'changed' whenever acute requests change, so the worklist refreshes by itself."""

    async def marker(session: AsyncSession) -> object:
        requests = (await session.execute(select(func.count(AcuteRequest.id), func.max(AcuteRequest.triaged_at),
                                                 func.max(AcuteRequest.closed_at)))).one()
        linked = (await session.execute(select(func.count(LinkedContact.pk)))).scalar_one()
        return [*requests, linked]

    return change_stream(request, marker, interval=1)


CONTACT_FIELDS = ("channel", "bsn", "name", "birth_date", "uzovi", "caller", "callback_phone", "address_line",
                  "postal_code", "city", "complaint", "patient_id")


async def _matches(session: AsyncSession, records: list[PatientRecord]) -> list[dict[str, object]]:
    """Lookup results the nurse can choose: each with the form it fills (address, phone and the insurer's UZOVI of
    the patient's latest request, where known), the age, and the patient's open request if there is one."""
    found = []
    for record in records:
        stored = await session.get(StoredResource, ("Patient", record.id))
        patient = loads(stored.content) if stored is not None else None
        requests = list((await session.execute(select(AcuteRequest).where(
            AcuteRequest.pseudonym == record.pseudonym).order_by(AcuteRequest.received_at.desc()))).scalars())  # type: ignore[attr-defined]
        uzovi = next((r.uzovi for r in requests if r.uzovi), None)
        found.append({"record": record, "age": present.age_in_years(record.birth_date),
                      "details": present.contact_details(patient),
                      "open_request": next((r for r in requests if r.status in service.OPEN_STATUSES), None),
                      "fill": {**present.form_fill(patient, bsn=record.bsn, name=record.display_name,
                                                   birth_date=record.birth_date, uzovi=uzovi),
                               "patient_id": record.id}})
    return found


def _contact_page(request: Request, user: Caller, *, form: dict[str, str], matches: list[dict[str, object]],
                  looked_up: bool, errors: list[tuple[str, str]], status: int = 200,
                  lookup: dict[str, str] | None = None) -> Response:
    """The phone/walk-in page: the lookup (its fields `lookup`, else the form's identifying fields), its results
    and the contact form filled with `form`."""
    shown = {f: form.get(f, "") for f in CONTACT_FIELDS}
    return request.app.state.templates.TemplateResponse(request, "contact.html", {
        "user": user, "matches": matches, "looked_up": looked_up, "callers": present.CALLER_LABELS,
        "form": shown, "errors": errors,
        "lookup": lookup or {f: shown[f] for f in ("bsn", "name", "birth_date")},
        "csrf": request.app.state.console_auth.csrf_token(request)}, status_code=status)


async def _look_up(request: Request, *, bsn: str, name: str, birth_date: str) -> list[dict[str, object]]:
    """The lookup's choosable results, audited as a search when a BSN or name was given: one event per patient
    found, carrying that patient's pseudonym (SPEC §10: which patient; the admin's audit search by that patient then
    shows who looked them up, as the case manager's patient search does), or one without patient if none was."""
    async with request.app.state.runtime.sessions() as session:
        records = await service.find_patients(session, bsn=bsn or None, name=name or None,
                                              birth_date=birth_date or None)
        matches = await _matches(session, records)
    if bsn or name:
        what = "console patient lookup by BSN" if bsn else "console patient lookup by name"
        for pseudonym in dict.fromkeys(r.pseudonym for r in records) or [None]:
            await audit.for_request(request, subtype="search", entity=what, patient=pseudonym)
    return matches


@router.get("/contacts/new", response_class=HTMLResponse)
async def new_contact(request: Request, user: Nurse, bsn: Annotated[str | None, Query(max_length=9)] = None,
                      name: Annotated[str | None, Query(max_length=300)] = None,
                      birth_date: Annotated[str | None, Query(max_length=10)] = None) -> Response:
    matches = await _look_up(request, bsn=bsn or "", name=name or "", birth_date=birth_date or "")
    return _contact_page(request, user, matches=matches, looked_up=bool(bsn or name), errors=[],
                         form={"bsn": bsn or "", "name": name or "", "birth_date": birth_date or ""})


@router.post("/contacts/lookup", response_class=HTMLResponse)
async def look_up_in_contact(request: Request, user: Nurse, csrf_token: Annotated[str, Form()],
                             bsn: Annotated[str, Form(max_length=9)] = "",
                             name: Annotated[str, Form(max_length=300)] = "",
                             birth_date: Annotated[str, Form(max_length=10)] = "") -> Response:
    """The lookup from the contact page, posted so that no BSN or name lands in a URL (history, proxies, access
    logs), with what was already typed in the contact form (`typed_<field>`, copied by the page's script) kept:
    the page comes back with the results and the form as it was. Empty identifying fields of the form take the
    lookup's values, as a lookup by GET does."""
    request.app.state.console_auth.check_csrf(request, csrf_token)
    posted = await request.form()
    typed = {f: str(posted.get(f"typed_{f}", ""))[:2000] for f in CONTACT_FIELDS}
    lookup = {"bsn": bsn, "name": name, "birth_date": birth_date}
    for field, value in lookup.items():
        typed[field] = typed[field] or value
    matches = await _look_up(request, bsn=bsn.strip(), name=name.strip(), birth_date=birth_date.strip())
    return _contact_page(request, user, matches=matches, looked_up=bool(bsn.strip() or name.strip()), errors=[],
                         form=typed, lookup=lookup)


@router.post("/contacts")
async def record_contact(request: Request, user: Nurse, csrf_token: Annotated[str, Form()],
                         channel: Annotated[str, Form(pattern="^(phone|walk-in)$")],
                         complaint: Annotated[str, Form(max_length=2000)] = "",
                         bsn: Annotated[str, Form(max_length=20)] = "", name: Annotated[str, Form(max_length=300)] = "",
                         birth_date: Annotated[str, Form(max_length=10)] = "",
                         uzovi: Annotated[str, Form(max_length=10)] = "",
                         caller: Annotated[str, Form(pattern="^(patient|relative|carer|professional)$")] = "patient",
                         callback_phone: Annotated[str, Form(max_length=32)] = "",
                         address_line: Annotated[str, Form(max_length=200)] = "",
                         postal_code: Annotated[str, Form(max_length=10)] = "",
                         city: Annotated[str, Form(max_length=100)] = "",
                         patient_id: Annotated[str, Form(max_length=64)] = "") -> Response:
    state = request.app.state
    state.console_auth.check_csrf(request, csrf_token)
    typed = {"patient_id": patient_id, "channel": channel, "bsn": bsn, "name": name, "birth_date": birth_date,
             "uzovi": uzovi,
             "caller": caller, "callback_phone": callback_phone, "address_line": address_line,
             "postal_code": postal_code, "city": city, "complaint": complaint}
    # A refusal keeps everything typed and says what is wrong in the console's language.
    problems = forms.contact_problems(bsn=bsn, birth_date=birth_date, uzovi=uzovi, callback_phone=callback_phone,
                                      complaint=complaint, today=datetime.now(AMSTERDAM).date())
    if problems:
        return _contact_page(request, user, form=typed, matches=[], looked_up=False,
                             errors=[(p, "") for p in problems], status=422)
    try:
        async with state.runtime.sessions() as session, session.begin():
            acute, linked = await service.record_contact(session, contact=service.ContactInput(
                channel=channel, bsn=bsn.strip() or None, name=name.strip(), birth_date=birth_date.strip() or None,
                uzovi=uzovi.strip() or None, complaint=complaint, caller=caller,
                callback_phone=callback_phone.strip() or None,
                address=service.Address(address_line.strip(), postal_code.strip(), city.strip()),
                patient_id=patient_id or None),
                caller=user, pseudonym_key=state.settings.pseudonym_key_bytes)
            await audit.record(session, service="triage", caller=user, subtype="create",
                               entity=f"{channel} contact (console) for acute request {acute.id}",
                               patient=acute.pseudonym)
    except FhirError as exc:
        return _contact_page(request, user, form=typed, matches=[], looked_up=False,
                             errors=forms.refusal_messages(exc.issues), status=exc.status_code)
    state.runtime.relay.wake()
    return RedirectResponse(f"/console/requests/{acute.id}" + ("?linked=1" if linked else ""), status_code=303)


OPEN_TASK_STATUSES = "requested,received,accepted,in-progress,on-hold"


async def _open_tasks(request: Request, pseudonym: str) -> list[dict[str, object]] | None:
    """The patient's open Tasks, from coordination's FHIR API (the front door asks as itself); None if away."""
    state = request.app.state
    token = state.issuer.issue(client_id="triage", org=FRONT_DOOR.token, scopes=("system/Task.rs",))
    base = state.settings.coordination_api_url or state.settings.coordination_public_url
    try:
        async with httpx.AsyncClient(timeout=3) as http:
            response = await http.get(f"{base}/fhir/Task", params={"patient": pseudonym, "status": OPEN_TASK_STATUSES},
                                      headers={"Authorization": f"Bearer {token}"})
            response.raise_for_status()
    except httpx.HTTPError:
        return None
    names = {o.token: o.name for o in ORGANISATIONS}
    return [{"owner": names.get(f"{t['owner']['identifier']['system']}|{t['owner']['identifier']['value']}", "?"),
             "status": t["status"], "due": t.get("restriction", {}).get("period", {}).get("end", ""),
             "what": t.get("code", {}).get("coding", [{}])[0].get("display", "")}
            for t in (e["resource"] for e in response.json().get("entry", []))]


def _routes(providers: list[configuration.Provider], received_at: datetime, targets: dict[str, int | None],
            translate: Callable[[str], str]) -> tuple[dict[str, str], list[dict[str, object]]]:
    """For the triage form: the due time of each urgency (local, with its day when not today: "morgen 08:00") and
    each organisation with what it provides and whether it is open at each urgency's due time, so the form offers
    only deliverable routes."""
    dues = {u: due_by(u, received_at, targets) for u in URGENCIES}
    return ({u: present.due_label(d, translate=translate) for u, d in dues.items()},
            [{"name": p.name, "identifier": p.identifier, "token": p.token, "dispositions": list(p.dispositions),
              "hours": p.hours, "weekdays_only": p.weekdays_only,
              "open_at_due": {u: p.open_at(d) for u, d in dues.items()}} for p in providers])


async def _referrer(session: AsyncSession, acute: AcuteRequest) -> str:
    """Who referred: the name behind the referral's requester (organisation or practitioner, read from what the
    referral brought), else the region's name of the organisation that sent it; never an identifier."""
    async def stored(reference: str) -> dict[str, object] | None:
        kind, _, rid = reference.partition("/")
        row = await session.get(StoredResource, (kind, rid)) if kind and rid and "/" not in rid else None
        return loads(row.content) if row is not None else None

    sr = await stored(f"ServiceRequest/{acute.service_request_id}") if acute.service_request_id else None
    known: dict[str, dict[str, object] | None] = {}
    # Two hops at most (a PractitionerRole's practitioner and organisation): read them first, then name purely.
    pending = [sr.get("requester")] if sr else []
    for _ in range(2):
        refs = [p.get("reference") for p in pending if isinstance(p, dict) and isinstance(p.get("reference"), str)]
        pending = []
        for ref in refs:
            if ref not in known:
                known[ref] = await stored(ref)
                target = known[ref] or {}
                pending += [target.get("practitioner"), target.get("organization")]
    name = present.reference_name(sr.get("requester") if sr else None, known.get)  # type: ignore[arg-type]
    system, _, value = acute.submitted_by.partition("|")
    return name or present.reference_name({"identifier": {"system": system, "value": value}}, known.get)


@router.get("/requests/{request_id}", response_class=HTMLResponse)
async def triage_page(request_id: str, request: Request, user: Nurse, linked: bool = False, done: bool = False,
                      error: str | None = None, form: dict[str, str] | None = None) -> Response:
    async with request.app.state.runtime.sessions() as session:
        acute = await session.get(AcuteRequest, request_id)
        if acute is None:
            return _error(request, user, 404, "Onbekende aanvraag", request_id)
        patient = await session.get(PatientRecord, acute.patient_id) if acute.patient_id else None
        decisions = list((await session.execute(select(TriageDecision).where(
            TriageDecision.acute_request_id == request_id).order_by(TriageDecision.decided_at))).scalars())
        earlier, contacts = await service.history_of(session, acute)
        targets = await configuration.targets(session)
        providers = await configuration.providers(session)
        stored = await session.get(StoredResource, ("Patient", acute.patient_id)) if acute.patient_id else None
        referrer = await _referrer(session, acute) if acute.channel == "referral" else ""
    dues, routes = _routes(providers, _aware(acute.received_at), targets,  # type: ignore[arg-type]
                           translator(language(request)))
    names = {p.token: p.name for p in providers}
    open_tasks = await _open_tasks(request, acute.pseudonym)
    await audit.for_request(request, subtype="read", entity=f"console triage page {request_id}",
                            patient=acute.pseudonym)
    return request.app.state.templates.TemplateResponse(request, "triage.html", {
        "user": user, "r": acute, "patient": patient, "decisions": decisions, "urgencies": URGENCIES,
        "targets": targets, "dispositions": DISPOSITIONS, "routes": routes, "dues": dues, "names": names,
        "chosen": form or ({"urgency": acute.urgency or "", "disposition": acute.disposition or "",
                            "assigned_organization": acute.assigned_org or ""}),
        "done": done and acute.status == "triaged" and bool(decisions), "callers": present.CALLER_LABELS,
        "after_triage": {c.pk for c in contacts if acute.triaged_at is not None
                         and _aware(c.received_at) > _aware(acute.triaged_at)},  # type: ignore[operator]
        "earlier": earlier, "contacts": contacts, "linked": linked, "error": error, "open_tasks": open_tasks,
        "age": present.age_in_years(patient.birth_date if patient else None), "referrer": referrer,
        "reach": present.contact_details(loads(stored.content) if stored is not None else None),
        "csrf": request.app.state.console_auth.csrf_token(request)}, status_code=422 if error else 200)


@router.post("/requests/{request_id}/triage")
async def submit_triage(request_id: str, request: Request, user: Nurse, csrf_token: Annotated[str, Form()],
                        urgency: Annotated[str, Form(max_length=2)] = "",
                        disposition: Annotated[str, Form(max_length=32)] = "",
                        assigned_organization: Annotated[str, Form(max_length=120)] = "",
                        note: Annotated[str, Form(max_length=4000)] = "",
                        retriage_reason: Annotated[str, Form(max_length=500)] = "",
                        closed_reason: Annotated[str, Form(max_length=500)] = "") -> Response:
    # Nothing is preselected (SPEC §6): an empty choice comes back to the nurse as a refusal, never as a default.
    request.app.state.console_auth.check_csrf(request, csrf_token)
    chosen = {"urgency": urgency, "disposition": disposition, "assigned_organization": assigned_organization}
    state = request.app.state
    try:
        async with state.runtime.sessions() as session, session.begin():
            acute = await service.triage(session, request_id=request_id, caller=user,
                                         decision=service.TriageInput(urgency=urgency, disposition=disposition,
                                                                      assigned_organization=assigned_organization,
                                                                      note=note, retriage_reason=retriage_reason,
                                                                      closed_reason=closed_reason),
                                         codesystem_base=state.settings.codesystem_base, traceparent=None)
            what = "re-triage" if retriage_reason else "triage"
            await audit.record(session, service="triage", caller=user, subtype="update",
                               entity=f"{what} of acute request {request_id} (console)", patient=acute.pseudonym)
    except FhirError as exc:
        if exc.status_code == 404:
            return _error(request, user, 404, "Onbekende aanvraag", request_id)
        # The choices stay on the form; what was refused is said in the console's language.
        t = translator(language(request))
        names = {o.token: o.name for o in ORGANISATIONS}
        chosen_name = names.get(assigned_organization, t("De gekozen organisatie"))
        said = " ".join(t(message).replace("{organisation}", chosen_name).replace("{detail}", detail)
                        for message, detail in forms.triage_refusal_messages(exc.issues))
        return await triage_page(request_id, request, user, form=chosen, error=said)
    state.runtime.relay.wake()
    return RedirectResponse(f"/console/requests/{request_id}?done=1", status_code=303)


@router.get("/settings", response_class=HTMLResponse)
async def settings_page(request: Request, user: Admin) -> Response:
    return await _settings(request, user)


async def _settings(request: Request, user: Caller, *, error: str | None = None,
                    typed: dict[str, object] | None = None) -> Response:
    """The admin's settings: urgency targets and the directory. After a refusal, `error` (already in the console's
    language) and `typed`, what the admin typed ({"targets": {urgency: text}} or {"entry": {"org", "hours",
    "dispositions", "weekdays_only"}}), so the form comes back as it was sent."""
    async with request.app.state.runtime.sessions() as session:
        targets = await configuration.targets(session)
        directory = await service.directory(session)
    typed = typed or {}
    shown_targets = {u: "" if m is None else str(m) for u, m in targets.items()}
    shown_targets.update(typed.get("targets", {}))  # type: ignore[call-overload]
    entry = typed.get("entry")
    if isinstance(entry, dict):
        directory = [{**o, **entry, "refused": True} if o["token"] == entry["org"] else o for o in directory]
    return request.app.state.templates.TemplateResponse(request, "settings.html", {
        "user": user, "targets": shown_targets, "directory": directory, "dispositions": DISPOSITIONS, "error": error,
        "csrf": request.app.state.console_auth.csrf_token(request)}, status_code=422 if error else 200)


def _settings_refusal(request: Request, messages: list[tuple[str, dict[str, str]]]) -> str:
    """Refusals of the settings page in the console's language: Dutch messages of forms.py with their values."""
    t = translator(language(request))
    said = []
    for message, values in messages:
        text = t(message)
        for name, value in values.items():
            text = text.replace(f"{{{name}}}", value)
        if text not in said:
            said.append(text)
    return " ".join(said)


def _not_saved(exc: ValueError) -> tuple[str, dict[str, str]]:
    """A refusal of configuration.py the console did not foresee: its own Dutch text if it brings one (`dutch` with
    `values`, as accounts.AccountRefused does), else SETTINGS_NOT_SAVED with the service's text as the detail."""
    dutch = getattr(exc, "dutch", None)
    if isinstance(dutch, str):
        return dutch, {k: str(v) for k, v in dict(getattr(exc, "values", {})).items()}
    return forms.SETTINGS_NOT_SAVED, {"detail": str(exc)}


@router.post("/settings/targets")
async def save_targets(request: Request, user: Admin, csrf_token: Annotated[str, Form()]) -> Response:
    request.app.state.console_auth.check_csrf(request, csrf_token)
    form = await request.form()
    typed = {u: str(form.get(f"minutes_{u}", ""))[:20] for u in URGENCIES}
    minutes, problems = forms.target_problems(typed)
    if problems:
        return await _settings(request, user, error=_settings_refusal(request, problems),
                                   typed={"targets": typed})
    try:
        async with request.app.state.runtime.sessions() as session, session.begin():
            for urgency in URGENCIES:
                await configuration.set_target(session, urgency=urgency, minutes=minutes[urgency],
                                               actor=user.subject)
            await audit.record(session, service="triage", caller=user, subtype="update", entity="urgency targets",
                               purpose=audit.PURPOSE_OPERATIONS)
    except ValueError as exc:
        return await _settings(request, user, error=_settings_refusal(request, [_not_saved(exc)]),
                                   typed={"targets": typed})
    return RedirectResponse("/console/settings", status_code=303)


@router.post("/settings/directory")
async def save_provider(request: Request, user: Admin, csrf_token: Annotated[str, Form()],
                        org: Annotated[str, Form(max_length=200)], hours: Annotated[str, Form(max_length=11)] = "",
                        weekdays_only: Annotated[bool, Form()] = False) -> Response:
    request.app.state.console_auth.check_csrf(request, csrf_token)
    form = await request.form()
    dispositions = [str(d) for d in form.getlist("dispositions")]
    typed = {"entry": {"org": org, "hours": hours, "dispositions": dispositions, "weekdays_only": weekdays_only}}
    async with request.app.state.runtime.sessions() as session:
        known = {p.token for p in await configuration.providers(session)}
    problems = forms.provider_problems(org=org, hours=hours, dispositions=dispositions, known=known)
    if problems:
        return await _settings(request, user, error=_settings_refusal(request, [(p, {}) for p in problems]),
                                   typed=typed)
    try:
        async with request.app.state.runtime.sessions() as session, session.begin():
            await configuration.set_provider(session, org=org, hours=hours.strip(), weekdays_only=weekdays_only,
                                             dispositions=dispositions, actor=user.subject,
                                             codesystem_base=request.app.state.settings.codesystem_base)
            await audit.record(session, service="triage", caller=user, subtype="update",
                               entity=f"directory entry {org}", purpose=audit.PURPOSE_OPERATIONS)
    except ValueError as exc:
        return await _settings(request, user, error=_settings_refusal(request, [_not_saved(exc)]), typed=typed)
    request.app.state.runtime.relay.wake()  # coordination routes by the same directory as soon as it can
    return RedirectResponse("/console/settings", status_code=303)


@router.get("/users", response_class=HTMLResponse)
async def users_page(request: Request, user: Admin,
                     done: Annotated[str | None, Query(max_length=20)] = None,
                     username: Annotated[str | None, Query(max_length=60)] = None) -> Response:
    notice = ACCOUNT_NOTICES.get(done or "")
    return await _users(request, user, error=None, status=200,
                        notice=(notice, username or "") if notice and username else None)


# An account change refused for a reason the rules do not name (English from the service, in a Dutch sentence).
ACCOUNT_REFUSED = "De wijziging is geweigerd: {detail}"


def _refusal(request: Request, exc: Exception) -> str:
    """A refused account change in the console's language: the rule's own Dutch text (services/triage/accounts.py)
    with its values filled in, translated when English is chosen."""
    t = translator(language(request))
    dutch, values = getattr(exc, "dutch", None), dict(getattr(exc, "values", {}))
    text = t(dutch) if dutch else t(ACCOUNT_REFUSED)
    for name, value in (values if dutch else {"detail": str(exc)}).items():
        text = text.replace(f"{{{name}}}", value)
    return text


async def _users(request: Request, user: Caller, *, error: str | None, status: int,
                 notice: tuple[str, str] | None = None, new_password: tuple[str, str] | None = None) -> Response:
    async with request.app.state.runtime.sessions() as session:
        rows = await accounts.accounts(session)
        locked = await accounts.locked_usernames(session)
    response = request.app.state.templates.TemplateResponse(request, "users.html", {
        "user": user, "accounts": rows, "roles": accounts.ROLES, "error": error, "providers": PROVIDERS,
        "org_names": {o.token: f"{o.name} ({o.label})" for o in PROVIDERS}, "locked": locked, "notice": notice,
        "new_password": new_password, "csrf": request.app.state.console_auth.csrf_token(request)},
        status_code=status)
    response.headers["Cache-Control"] = "no-store"  # a generated password is shown once and never cached
    return response


# What the users page says after an admin action: the Dutch text (English in shared/i18n.py), with {username}.
ACCOUNT_NOTICES = {"disabled": "{username} is uitgeschakeld; de sessies zijn beëindigd.",
                   "enabled": "{username} is weer ingeschakeld.", "unlocked": "{username} is gedeblokkeerd.",
                   "reset": "Het wachtwoord van {username} is hersteld; de sessies zijn beëindigd."}


async def _account_action(request: Request, user: Caller, username: str, what: str,
                          action: Callable[[AsyncSession], Awaitable[object]]) -> Response:
    """Apply an admin action to one account and audit it (who, which account, what) in the same transaction."""
    try:
        async with request.app.state.runtime.sessions() as session, session.begin():
            await action(session)
            await audit.record(session, service="triage", caller=user, subtype="update",
                               entity=f"console account {username}: {what}", purpose=audit.PURPOSE_OPERATIONS)
    except LookupError as exc:
        return await _users(request, user, error=_refusal(request, exc), status=404)
    except ValueError as exc:
        return await _users(request, user, error=_refusal(request, exc), status=422)
    return RedirectResponse(f"/console/users?{urlencode({'done': what, 'username': username})}", status_code=303)


@router.post("/users/{username}/disable")
async def disable_user(username: str, request: Request, user: Admin, csrf_token: Annotated[str, Form()]) -> Response:
    """Disable an account: it can no longer log in, and its open sessions end in every console."""
    request.app.state.console_auth.check_csrf(request, csrf_token)
    return await _account_action(request, user, username, "disabled", lambda session: accounts.set_disabled(
        session, username=username, disabled=True, by=user.subject))


@router.post("/users/{username}/enable")
async def enable_user(username: str, request: Request, user: Admin, csrf_token: Annotated[str, Form()]) -> Response:
    request.app.state.console_auth.check_csrf(request, csrf_token)
    return await _account_action(request, user, username, "enabled", lambda session: accounts.set_disabled(
        session, username=username, disabled=False, by=user.subject))


@router.post("/users/{username}/unlock")
async def unlock_user(username: str, request: Request, user: Admin, csrf_token: Annotated[str, Form()]) -> Response:
    """Lift a lockout (five failed logins in fifteen minutes) before it runs out."""
    request.app.state.console_auth.check_csrf(request, csrf_token)
    return await _account_action(request, user, username, "unlocked",
                                 lambda session: accounts.unlock(session, username=username))


@router.post("/users/{username}/password")
async def reset_user_password(username: str, request: Request, user: Admin, csrf_token: Annotated[str, Form()],
                              password: Annotated[str, Form(max_length=200)] = "") -> Response:
    """Set the password the admin typed (at least 12 characters) or, left empty, a generated one shown once on the
    answer page (never in a URL, log or audit event). Ends the account's open sessions and clears its lockout."""
    request.app.state.console_auth.check_csrf(request, csrf_token)
    generated = not password
    chosen = accounts.generated_password() if generated else password
    answer = await _account_action(request, user, username, "reset", lambda session: accounts.reset_password(
        session, username=username, password=chosen))
    if generated and isinstance(answer, RedirectResponse):
        return await _users(request, user, error=None, status=200, notice=(ACCOUNT_NOTICES["reset"], username),
                            new_password=(username, chosen))
    return answer


@router.post("/users")
async def create_user(request: Request, user: Admin, username: Annotated[str, Form(max_length=60)],
                      display_name: Annotated[str, Form(max_length=200)], role: Annotated[str, Form()],
                      password: Annotated[str, Form(max_length=200)], csrf_token: Annotated[str, Form()],
                      org: Annotated[str, Form(max_length=120)] = "") -> Response:
    request.app.state.console_auth.check_csrf(request, csrf_token)
    try:
        async with request.app.state.runtime.sessions() as session, session.begin():
            await accounts.create_account(session, username=username, display_name=display_name, role=role,
                                          password=password, created_by=user.subject, org=org or None)
            bound = f" for {org}" if org else ""
            await audit.record(session, service="triage", caller=user, subtype="create",
                               entity=f"console account {username} ({role}{bound})", purpose=audit.PURPOSE_OPERATIONS)
    except ValueError as exc:
        return await _users(request, user, error=_refusal(request, exc), status=422)
    return RedirectResponse("/console/users", status_code=303)
