"""The triage nurse's console (minimal): the worklist and a triage form."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.triage import accounts, service
from services.triage.domain.rules import DISPOSITIONS, URGENCIES
from services.triage.models import AcuteRequest, PatientRecord, TriageDecision
from shared import audit
from shared.auth import Caller
from shared.console import console_user
from shared.fhir import FhirError

router = APIRouter(prefix="/console", include_in_schema=False)
Nurse = Annotated[Caller, console_user("triagist")]


def _aware(m: datetime | None) -> datetime | None:
    return m if m is None or m.tzinfo else m.replace(tzinfo=UTC)


@router.get("", response_class=HTMLResponse)
async def worklist(request: Request, user: Nurse) -> Response:
    async with request.app.state.runtime.sessions() as session:
        rows = await service.worklist(session, statuses=("open", "triaged"))
        patients = {p.id: p for p in [await session.get(PatientRecord, r.patient_id) for r in rows if r.patient_id]
                    if p is not None}
    now = datetime.now(UTC)
    items = [{"r": r, "patient": patients.get(r.patient_id or ""), "waiting": int(
        (now - _aware(r.received_at)).total_seconds() // 60),  # type: ignore[operator]
              "overdue": r.due_at is not None and _aware(r.due_at) < now} for r in rows]  # type: ignore[operator]
    await audit.for_request(request, subtype="search", entity="console worklist")
    return request.app.state.templates.TemplateResponse(request, "worklist.html", {"user": user, "items": items})


@router.get("/requests/{request_id}", response_class=HTMLResponse)
async def triage_page(request_id: str, request: Request, user: Nurse) -> Response:
    async with request.app.state.runtime.sessions() as session:
        acute = await session.get(AcuteRequest, request_id)
        if acute is None:
            return HTMLResponse("Onbekende aanvraag", status_code=404)
        patient = await session.get(PatientRecord, acute.patient_id) if acute.patient_id else None
        decisions = list((await session.execute(
            TriageDecision.__table__.select().where(TriageDecision.acute_request_id == request_id))).all())  # type: ignore[attr-defined]
    await audit.for_request(request, subtype="read", entity=f"console triage page {request_id}",
                            patient=acute.pseudonym)
    return request.app.state.templates.TemplateResponse(request, "triage.html", {
        "user": user, "r": acute, "patient": patient, "decisions": decisions, "urgencies": URGENCIES,
        "dispositions": DISPOSITIONS, "directory": service.directory(),
        "csrf": request.app.state.console_auth.csrf_token(request),
        "error": None})


@router.post("/requests/{request_id}/triage")
async def submit_triage(request_id: str, request: Request, user: Nurse, urgency: Annotated[str, Form()],
                        disposition: Annotated[str, Form()], assigned_organization: Annotated[str, Form()],
                        csrf_token: Annotated[str, Form()], note: Annotated[str, Form()] = "") -> Response:
    request.app.state.console_auth.check_csrf(request, csrf_token)
    state = request.app.state
    try:
        async with state.runtime.sessions() as session, session.begin():
            acute = await service.triage(session, request_id=request_id, caller=user,
                                         decision=service.TriageInput(urgency=urgency, disposition=disposition,
                                                                      assigned_organization=assigned_organization,
                                                                      note=note),
                                         codesystem_base=state.settings.codesystem_base, traceparent=None)
            await audit.record(session, service="triage", caller=user, subtype="update",
                               entity=f"triage of acute request {request_id} (console)", patient=acute.pseudonym)
    except FhirError as exc:
        return HTMLResponse("; ".join(i.diagnostics for i in exc.issues), status_code=exc.status_code)
    state.runtime.relay.wake()
    return RedirectResponse("/console", status_code=303)


Admin = Annotated[Caller, console_user("beheer")]


@router.get("/users", response_class=HTMLResponse)
async def users_page(request: Request, user: Admin) -> Response:
    return await _users(request, user, error=None, status=200)


async def _users(request: Request, user: Caller, *, error: str | None, status: int) -> Response:
    async with request.app.state.runtime.sessions() as session:
        rows = await accounts.accounts(session)
    return request.app.state.templates.TemplateResponse(request, "users.html", {
        "user": user, "accounts": rows, "roles": accounts.ROLES, "error": error,
        "csrf": request.app.state.console_auth.csrf_token(request)}, status_code=status)


@router.post("/users")
async def create_user(request: Request, user: Admin, username: Annotated[str, Form(max_length=60)],
                      display_name: Annotated[str, Form(max_length=200)], role: Annotated[str, Form()],
                      password: Annotated[str, Form(max_length=200)], csrf_token: Annotated[str, Form()]) -> Response:
    request.app.state.console_auth.check_csrf(request, csrf_token)
    try:
        async with request.app.state.runtime.sessions() as session, session.begin():
            await accounts.create_account(session, username=username, display_name=display_name, role=role,
                                          password=password, created_by=user.subject)
            await audit.record(session, service="triage", caller=user, subtype="create",
                               entity=f"console account {username} ({role})", purpose=audit.PURPOSE_OPERATIONS)
    except ValueError as exc:
        return await _users(request, user, error=str(exc), status=422)
    return RedirectResponse("/console/users", status_code=303)
