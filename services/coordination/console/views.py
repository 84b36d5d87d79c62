"""The case manager's console: my patients and overdue work (live), finding a patient by name and birth date or
BSN, a patient's timeline across organisations with the care team and lead, and the actions: take the case, hand
over the lead role, reassign a Task, add a note; and the region's directory. Patients appear by name and age; the
pseudonym only as a technical reference."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination import directory, episodes, patients, service
from services.coordination.console import refusals
from services.coordination.console.timeline import describe
from services.coordination.domain import words
from services.coordination.domain.person import GENDERS
from services.coordination.domain.task_state import TERMINAL
from services.coordination.models import TaskRecord, TimelineEntry
from shared import audit
from shared.auth import Caller
from shared.console import change_stream, console_user, local_time
from shared.directory import Listing
from shared.fhir import FhirError, loads
from shared.i18n import language, translator
from shared.identifiers import is_valid_bsn
from shared.region import ORGANISATIONS

router = APIRouter(prefix="/console", include_in_schema=False)
CaseManager = Annotated[Caller, console_user("casemanager")]
PROVIDERS = [o for o in ORGANISATIONS if o.kind != "insurer"]
BIRTH_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def _lists(request: Request, user: Caller) -> dict[str, object]:
    async with request.app.state.runtime.sessions() as session:
        mine = await episodes.my_patients(session, user.subject)
        late = await service.overdue(session)
        open_tasks = list((await session.execute(select(TaskRecord).where(
            TaskRecord.status.not_in(TERMINAL)).order_by(TaskRecord.due_at).limit(200))).scalars())  # type: ignore[attr-defined]
        tasks = [*late, *open_tasks]
        known = await patients.by_pseudonyms(session, {e.pseudonym for e in mine} | {t.pseudonym for t in tasks})
        routed = await service.routed_requests(session, ids=sorted({t.acute_request_id for t in tasks}))
        latest = await service.routed_requests(session, pseudonyms=sorted({e.pseudonym for e in mine}))
    today = patients.today()
    latest_of: dict[str, service.Routed] = {}
    for item in latest:  # newest first
        latest_of.setdefault(item.pseudonym, item)
    return {"user": user, "mine": mine, "late": late, "open_tasks": open_tasks, "name_of": episodes.name_of,
            "words": words,
            "now": datetime.now(UTC), "aware": _aware,
            "people": {p: patients.person(row, on=today) for p, row in known.items()},
            "routed": {r.id: r for r in routed}, "latest": latest_of}


@router.get("", response_class=HTMLResponse)
async def worklists(request: Request, user: CaseManager) -> Response:
    context = await _lists(request, user)
    await audit.for_request(request, subtype="search", entity="console case-manager worklists")
    return request.app.state.templates.TemplateResponse(request, "worklists.html", context)


@router.get("/lists", response_class=HTMLResponse)
async def lists_fragment(request: Request, user: CaseManager) -> Response:
    context = await _lists(request, user)
    await audit.for_request(request, subtype="search", entity="console case-manager worklists (live)")
    return request.app.state.templates.TemplateResponse(request, "_lists.html", context)


@router.get("/stream")
async def stream(request: Request, user: CaseManager) -> StreamingResponse:
    """Server-sent events: 'changed' whenever Tasks or timelines change, so the lists refresh without a reload."""

    async def marker(session: AsyncSession) -> object:
        tasks = (await session.execute(select(func.max(TaskRecord.last_updated)))).scalar_one()
        entries = (await session.execute(select(func.count(TimelineEntry.pk)))).scalar_one()
        return [tasks, entries]

    return change_stream(request, marker, interval=2)


@router.get("/patients", response_class=HTMLResponse)
async def find_patients(request: Request, user: CaseManager,
                        name: Annotated[str, Query(max_length=200)] = "",
                        birthdate: Annotated[str, Query(max_length=10)] = "",
                        bsn: Annotated[str, Query(max_length=9)] = "") -> Response:
    """Find a patient by (part of) the name and the birth date, or by BSN; each patient found is audited."""
    t = translator(language(request))
    name, birthdate, bsn = name.strip(), birthdate.strip(), bsn.strip()
    searched = bool(name or birthdate or bsn)
    found, error = [], None
    if searched:
        if bsn and not is_valid_bsn(bsn):
            error = t("Dit BSN is niet geldig (11-proef).")
        elif not bsn and not (name and BIRTH_DATE.fullmatch(birthdate)):
            error = t("Zoek op naam én geboortedatum (jjjj-mm-dd), of op BSN.")
        else:
            async with request.app.state.runtime.sessions() as session:
                found = await patients.search(session, name=name or None, birth_date=birthdate or None,
                                              bsn=bsn or None)
            what = "console patient search by BSN" if bsn else "console patient search by name and birth date"
            for row in found or [None]:
                await audit.for_request(request, subtype="search", entity=what,
                                        patient=row.pseudonym if row else None)
    today = patients.today()
    return request.app.state.templates.TemplateResponse(request, "search.html", {
        "user": user, "form": {"name": name, "birthdate": birthdate, "bsn": bsn}, "searched": searched,
        "error": error, "found": [(row.pseudonym, patients.person(row, on=today)) for row in found]},
        status_code=400 if error else 200)


@dataclass(frozen=True)
class TaskRow:
    """A Task as the case manager's table shows it: what it is, how urgent, and where it may be reassigned."""

    what: str  # the follow-up action in words
    code: str | None  # its code
    urgency: str | None  # U0..U5
    escalation: str | None  # the escalation's reason (businessStatus), when escalated
    choices: list[tuple[str, str, bool]]  # (token, name, open at the due time) of organisations providing `code`


def _task_row(record: TaskRecord, listings: list[Listing]) -> TaskRow:
    """The Task's row; `listings` is the current directory (directory.current)."""
    task = loads(record.content)
    coding = next(iter((task.get("code") or {}).get("coding") or []), {})
    code = coding.get("code")
    urgency = next((str(c.get("code")) for i in task.get("input") or [] for c in
                    ((i.get("valueCodeableConcept") or {}).get("coding") or [])
                    if str(c.get("system", "")).endswith("/urgency")), None)
    business = str((task.get("businessStatus") or {}).get("text") or "")
    escalation = business.removeprefix("geëscaleerd: ") if task.get("priority") == "stat" and business else None
    due = _aware(record.due_at)
    choices = [(o.token, o.name, o.open_at(due)) for o in listings if o.token != record.owner and o.provides(code)]
    return TaskRow(what=words.DISPOSITION_LABELS.get(code or "", coding.get("display") or code or "–"), code=code,
                   urgency=urgency, escalation=escalation, choices=choices)


@router.get("/patients/{pseudonym}", response_class=HTMLResponse)
async def patient(request: Request, user: CaseManager, pseudonym: str, error: str | None = None,
                  kept: dict[str, str] | None = None) -> Response:
    t = translator(language(request))
    async with request.app.state.runtime.sessions() as session:
        cases = await episodes.episodes_of(session, pseudonym)
        entries = await episodes.timeline(session, pseudonym)
        tasks = list((await session.execute(select(TaskRecord).where(TaskRecord.pseudonym == pseudonym)
                                            .order_by(TaskRecord.due_at))).scalars())
        proposals = {e.id: await episodes.handovers(session, e.id) for e in cases}
        known = await patients.by_pseudonym(session, pseudonym)
        requests = await service.routed_requests(session, pseudonyms=[pseudonym])
        listings = await directory.current(session)
    if not cases and not entries and known is None:
        return request.app.state.templates.TemplateResponse(request, "error.html", {
            "user": user, "message": "Onbekende patiënt", "detail": pseudonym}, status_code=404)
    await audit.for_request(request, subtype="read", entity="console patient timeline", patient=pseudonym)
    routed = {r.id: r for r in requests}
    return request.app.state.templates.TemplateResponse(request, "patient.html", {
        "person": patients.person(known) if known else None, "requests": requests, "genders": GENDERS,
        "routed": routed, "words": words,
        "user": user, "pseudonym": pseudonym, "cases": cases, "tasks": tasks,
        "lines": [(e, describe(kind=e.kind, text=e.text, facts=e.facts, t=t, name_of=episodes.name_of))
                  for e in entries],
        "proposals": proposals, "providers": PROVIDERS, "name_of": episodes.name_of, "team": json.loads,
        # Each Task's follow-up action, urgency and escalation; "Overdragen" offers only organisations that provide
        # the action, saying whether each is open at the Task's due time (SPEC §6).
        "rows": {task.id: _task_row(task, listings) for task in tasks},
        "csrf": request.app.state.console_auth.csrf_token(request), "error": error, "terminal": TERMINAL,
        "kept": kept or {}},  # a refused form's input, {"at": "task:<id>" | "episode:<id>", field: value}
        status_code=422 if error else 200)


async def _act(request: Request, user: Caller, pseudonym: str, csrf_token: str, action, what: str, *,  # type: ignore[no-untyped-def]
               kind: str, task_id: str | None = None, values: dict[str, str] | None = None,
               kept: dict[str, str] | None = None) -> Response:
    """Do one case-manager action (`kind`: take, handover, reassign, escalate, note) and audit it; a refusal comes
    back on the patient page in the console's language (refusals.py), quoting `values` and the Task's status, with
    the form's input `kept` (see `patient`)."""
    request.app.state.console_auth.check_csrf(request, csrf_token)
    try:
        async with request.app.state.runtime.sessions() as session, session.begin():
            await action(session)
            await audit.record(session, service="coordination", caller=user, subtype="update", entity=what,
                               patient=pseudonym)
    except FhirError as exc:
        t = translator(language(request))
        quoted = dict(values or {})
        if task_id is not None:
            async with request.app.state.runtime.sessions() as session:
                record = await session.get(TaskRecord, task_id)
            if record is not None:
                quoted["status"] = t(words.label(words.STATUS_LABELS, record.status))
        return await patient(request, user, pseudonym, error=refusals.said(kind, exc.issues, quoted, t), kept=kept)
    request.app.state.runtime.relay.wake()
    return RedirectResponse(f"/console/patients/{pseudonym}", status_code=303)


@router.post("/patients/{pseudonym}/episodes/{episode_id}/take")
async def take(request: Request, user: CaseManager, pseudonym: str, episode_id: str,
               csrf_token: Annotated[str, Form()]) -> Response:
    return await _act(request, user, pseudonym, csrf_token,
                      lambda s: episodes.take_case(s, episode_id=episode_id, caller=user), "became case manager",
                      kind="take")


@router.post("/patients/{pseudonym}/episodes/{episode_id}/handover")
async def handover(request: Request, user: CaseManager, pseudonym: str, episode_id: str,
                   csrf_token: Annotated[str, Form()], to: Annotated[str, Form(max_length=120)] = "",
                   reason: Annotated[str, Form(max_length=500)] = "") -> Response:
    """Propose handing the lead role to `to` (a provider's token); nothing is preselected, so an empty choice is
    refused in the console's language with the reason kept (SPEC §6)."""
    kept = {"at": f"episode:{episode_id}", "to": to, "reason": reason}
    if not to:
        request.app.state.console_auth.check_csrf(request, csrf_token)
        t = translator(language(request))
        return await patient(request, user, pseudonym, error=t("Kies een organisatie uit de lijst."), kept=kept)
    return await _act(request, user, pseudonym, csrf_token,
                      lambda s: episodes.propose_handover(s, episode_id=episode_id, to=to, reason=reason,
                                                          caller=user), "hoofdbehandelaar handover proposed",
                      kind="handover", kept=kept)


@router.post("/patients/{pseudonym}/tasks/{task_id}/reassign")
async def reassign(request: Request, user: CaseManager, pseudonym: str, task_id: str,
                   csrf_token: Annotated[str, Form()], to: Annotated[str, Form(max_length=120)] = "",
                   reason: Annotated[str, Form(max_length=500)] = "",
                   closed_reason: Annotated[str, Form(max_length=500)] = "") -> Response:
    """Hand the Task to another organisation (service.patch_task): one that does not provide its follow-up action
    is refused, one closed at the due time only with `closed_reason`, which is recorded with the reassignment;
    the refusals in the console's language with the input kept; nothing is preselected, an empty `to` is refused."""
    request.app.state.console_auth.check_csrf(request, csrf_token)
    t = translator(language(request))
    kept = {"at": f"task:{task_id}", "to": to, "reason": reason, "closed_reason": closed_reason}
    async with request.app.state.runtime.sessions() as session:
        record = await session.get(TaskRecord, task_id)
        listings = await directory.current(session)
    target = next((o for o in listings if o.token == to), None)  # care providers only
    if record is None or record.pseudonym != pseudonym or target is None:
        return await patient(request, user, pseudonym, error=t("Kies een organisatie uit de lijst."), kept=kept)
    row = _task_row(record, listings)
    due = _aware(record.due_at)
    if not target.provides(row.code):
        return await patient(request, user, pseudonym, error=t("{name} levert geen {action}; kies een organisatie "
                                                               "die dat wel doet.").format(
            name=target.name, action=t(row.what)), kept=kept)
    closed = not target.open_at(due)
    if closed and not closed_reason.strip():
        return await patient(request, user, pseudonym, error=t("{name} is gesloten op de streeftijd ({due}): geef "
                                                               "een reden of kies een andere organisatie.").format(
            name=target.name, due=local_time(due)), kept=kept)
    said = reason.strip()
    if closed:
        said = f"{said}; gesloten op de streeftijd, reden: {closed_reason.strip()}" if said else \
            f"gesloten op de streeftijd, reden: {closed_reason.strip()}"
    system, _, value = target.token.partition("|")
    operations = [{"op": "replace", "path": "/owner", "value": {"identifier": {"system": system, "value": value}}}]
    if said:  # without one the reassignment names the new owner as its reason
        operations.append({"op": "add", "path": "/statusReason", "value": {"text": said}})
    settings = request.app.state.settings
    return await _act(request, user, pseudonym, csrf_token, lambda s: service.patch_task(
        s, task_id=task_id, operations=operations, if_match=None, caller=user, codesystem_base=settings.codesystem_base,
        clock_tolerance=settings.clock_tolerance, traceparent=None), f"Task/{task_id} reassigned", kind="reassign",
        task_id=task_id, values={"name": target.name, "action": t(row.what), "due": local_time(due)}, kept=kept)


@router.post("/patients/{pseudonym}/tasks/{task_id}/escalate")
async def escalate(request: Request, user: CaseManager, pseudonym: str, task_id: str,
                   csrf_token: Annotated[str, Form()], reason: Annotated[str, Form(max_length=500)]) -> Response:
    return await _act(request, user, pseudonym, csrf_token, lambda s: service.escalate(
        s, task_id=task_id, reason=reason, caller=user, traceparent=None), f"Task/{task_id} escalated",
        kind="escalate", task_id=task_id)


@router.post("/patients/{pseudonym}/notes")
async def add_note(request: Request, user: CaseManager, pseudonym: str, csrf_token: Annotated[str, Form()],
                   text: Annotated[str, Form(min_length=1, max_length=2000)]) -> Response:
    async def write(session) -> None:  # type: ignore[no-untyped-def]
        episodes.note(session, pseudonym=pseudonym, at=datetime.now(UTC), kind="note", actor=user.subject,
                      text=text)

    return await _act(request, user, pseudonym, csrf_token, write, "note added", kind="note")


@router.get("/directory", response_class=HTMLResponse)
async def directory_page(request: Request, user: CaseManager) -> Response:
    """The region's care providers as coordination routes by them: the front door's entries where its admin
    changed them, else the region's defaults."""
    async with request.app.state.runtime.sessions() as session:
        listings = await directory.current(session)
    return request.app.state.templates.TemplateResponse(request, "directory.html", {
        "user": user, "organisations": listings, "words": words})
