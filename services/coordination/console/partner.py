"""The partner console: an organisation without an EHR link (the transfer point, a small nursing team) works its
own Tasks in a browser, live, with the patient in front of it; every action goes through the same transition
function, audit, events and notifications as the FHIR API (`service.patch_task`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination import patients, service
from services.coordination.console import partner_cards as cards
from services.coordination.domain.task_state import TERMINAL
from services.coordination.models import RoutedRequest, TaskRecord, TaskTransition
from shared import audit
from shared.auth import Caller
from shared.console import change_stream, console_user
from shared.fhir import FhirError, loads
from shared.i18n import language, translator
from shared.region import care_provider

router = APIRouter(prefix="/console/partner", include_in_schema=False)
# Only partner accounts: the admin acts for the front door and treats no patients.
Partner = Annotated[Caller, console_user("partner", admin=False)]
PAGE_LIMIT = 300
DONE = {"accept": "Taak geaccepteerd.", "reject": "Taak afgewezen.", "start": "Taak gestart.",
        "complete": "Taak afgerond, het contact is vastgelegd."}


async def patient_for(session: AsyncSession, pseudonym: str) -> dict[str, Any] | None:
    """The patient behind a pseudonym as coordination knows them (services/coordination/patients.py, fed by the
    front door's patient-changed events), for the organisation treating them: `{"name": str, "birth_date":
    "YYYY-MM-DD", "age": int, "gender": "male"|"female"|"other"|"unknown", "address": str, "phone": str}` (any value
    may be None; read by `partner_cards.read_patient`), or None when coordination holds nothing on the patient."""
    row = await patients.by_pseudonym(session, pseudonym)
    return None if row is None else patients.person(row).as_json()


async def _cards(session: AsyncSession, user: Caller, *, codesystem_base: str, now: datetime) -> list[cards.Card]:
    """The organisation's open Tasks and those it finished in the last day, as cards with their patient."""
    records = list((await session.execute(select(TaskRecord).where(
        TaskRecord.owner == user.org,
        or_(TaskRecord.status.not_in(TERMINAL),  # type: ignore[attr-defined]
            TaskRecord.last_updated >= now - cards.FINISHED_SHOWN_FOR))
        .order_by(TaskRecord.due_at).limit(PAGE_LIMIT))).scalars())
    request_ids = {r.acute_request_id for r in records}
    orders = {r.id: loads(r.order) for r in (await session.execute(select(RoutedRequest).where(
        RoutedRequest.id.in_(request_ids)))).scalars()} if request_ids else {}  # type: ignore[attr-defined]
    started_ids = [r.id for r in records if r.status in ("in-progress", "on-hold")]
    started = dict((await session.execute(select(TaskTransition.task_id, func.max(TaskTransition.at)).where(
        TaskTransition.task_id.in_(started_ids), TaskTransition.to_status == "in-progress")  # type: ignore[attr-defined]
        .group_by(TaskTransition.task_id))).all()) if started_ids else {}
    patients = {p: await patient_for(session, p) for p in {r.pseudonym for r in records}}
    return [cards.card_of(loads(r.content), task_id=r.id, status=r.status, pseudonym=r.pseudonym, due=r.due_at,
                          order=orders.get(r.acute_request_id), patient=patients[r.pseudonym],
                          started_at=started.get(r.id), now=now, codesystem_base=codesystem_base) for r in records]


async def _context(request: Request, user: Caller) -> dict[str, Any]:
    """The page's data, with the read of every patient shown written to the audit log (NEN 7513)."""
    now = datetime.now(UTC)
    state = request.app.state
    async with state.runtime.sessions() as session:
        found = await _cards(session, user, codesystem_base=state.settings.codesystem_base, now=now)
    async with state.runtime.sessions() as session, session.begin():
        await audit.record(session, service="coordination", caller=user, subtype="search",
                           entity=f"console partner worklist ({len(found)} Tasks)")
        for card in {c.pseudonym: c for c in found}.values():
            await audit.record(session, service="coordination", caller=user, subtype="read",
                               entity=f"Task/{card.task_id} in the partner console", patient=card.pseudonym)
    organisation = care_provider(user.org)
    return {"user": user, "organisation": organisation.name if organisation else user.org,
            "groups": cards.grouped(found), "now": now, "cards": cards,
            "csrf": state.console_auth.csrf_token(request)}


async def _page(request: Request, user: Caller, *, error: str | None = None, done: str | None = None,
                status_code: int = 200) -> Response:
    context = await _context(request, user)
    return request.app.state.templates.TemplateResponse(request, "partner.html", {
        **context, "error": error, "done": DONE.get(done or "")}, status_code=status_code)


@router.get("", response_class=HTMLResponse)
async def worklist(request: Request, user: Partner, done: str | None = None) -> Response:
    return await _page(request, user, done=done)


@router.get("/lists", response_class=HTMLResponse)
async def lists(request: Request, user: Partner) -> Response:
    context = await _context(request, user)
    return request.app.state.templates.TemplateResponse(request, "_partner_lists.html", context)


@router.get("/stream")
async def stream(request: Request, user: Partner) -> StreamingResponse:
    """Server-sent events: 'changed' whenever a Task of this organisation comes, goes, changes or turns overdue."""

    async def marker(session: AsyncSession) -> object:
        return list((await session.execute(select(
            func.count(TaskRecord.id), func.max(TaskRecord.last_updated), func.max(TaskRecord.overdue_flagged_at))
            .where(TaskRecord.owner == user.org))).one())

    return change_stream(request, marker, interval=1)


def _operations(action: str, task: dict[str, Any], *, reason: str, contact: str, start: datetime | None,
                end: datetime | None, now: datetime, codesystem_base: str) -> list[dict[str, Any]]:
    """The JSON Patch a partner EHR would send for this action (docs/api.md, "Working a Task")."""
    status = [{"op": "replace", "path": "/status", "value": cards.ACTIONS[action]}]
    if action == "reject":
        return [*status, {"op": "add", "path": "/statusReason", "value": {"text": reason.strip()}}]
    if action == "start" and not (task.get("executionPeriod") or {}).get("start"):
        return [*status, {"op": "add", "path": "/executionPeriod", "value": {"start": now.isoformat()}}]
    if action == "complete":
        assert start is not None and end is not None
        return [*status, {"op": "add", "path": "/executionPeriod",
                          "value": {"start": start.isoformat(), "end": end.isoformat()}},
                {"op": "add", "path": "/output", "value": [{
                    "type": {"coding": [{"system": f"{codesystem_base}task-output", "code": "delivered-contact"}]},
                    "valueCoding": {"system": service.ACT_CODE_SYSTEM, "code": contact}}]}]
    return status


async def _refused(request: Request, user: Caller, *, task_id: str, action: str, key: str,
                   params: dict[str, str], description: str, status_code: int, patient: str | None) -> Response:
    """Nothing changed: say why in the console's language, and audit the refusal (NEN 7513)."""
    t = translator(language(request))
    message = t(cards.REFUSALS[key]).format(**{k: t(v) for k, v in params.items()})
    await audit.record_now(request.app.state.runtime.sessions, service="coordination", caller=user,
                           subtype="update", entity=f"Task/{task_id}: {action} (partner console)", patient=patient,
                           outcome=audit.OUTCOME_REFUSED, description=description[:1000])
    return await _page(request, user, error=message, status_code=status_code)


@router.post("/tasks/{task_id}/{action}")
async def work(request: Request, user: Partner, task_id: Annotated[str, Path(max_length=64)],
               action: Annotated[str, Path(pattern="^(accept|reject|start|complete)$")],
               csrf_token: Annotated[str, Form()], reason: Annotated[str, Form(max_length=500)] = "",
               contact: Annotated[str, Form(max_length=8)] = "", start: Annotated[str, Form(max_length=40)] = "",
               end: Annotated[str, Form(max_length=40)] = "") -> Response:
    """Accept, reject (with a reason), start or complete (with the delivered contact and when) one Task."""
    state = request.app.state
    state.console_auth.check_csrf(request, csrf_token)
    now = datetime.now(UTC)
    pseudonym = None
    try:
        async with state.runtime.sessions() as session, session.begin():
            record = await service.get_task(session, task_id, user)
            pseudonym = record.pseudonym
            current = loads(record.content)
            period: tuple[datetime | None, datetime | None] = (None, None)
            if action == "complete":
                if contact not in cards.DELIVERED_CONTACTS:
                    raise cards.FormRefused("contact")
                begun = cards.instant((current.get("executionPeriod") or {}).get("start"))
                period = cards.contact_period(start=start, end=end, started=begun, now=now)
            operations = _operations(action, current, reason=reason, contact=contact, start=period[0],
                                     end=period[1], now=now, codesystem_base=state.settings.codesystem_base)
            task = await service.patch_task(session, task_id=task_id, operations=operations, if_match=None,
                                            caller=user, codesystem_base=state.settings.codesystem_base,
                                            clock_tolerance=state.settings.clock_tolerance,
                                            traceparent=getattr(request.state, "traceparent", None))
            await audit.record(session, service="coordination", caller=user, subtype="update",
                               entity=f"Task/{task_id} → {task['status']} (partner console)",
                               patient=record.pseudonym)
    except cards.FormRefused as exc:  # the console's own checks of the form, before anything was asked
        return await _refused(request, user, task_id=task_id, action=action, key=str(exc), params={},
                              description=f"422: form refused ({exc})", status_code=422, patient=pseudonym)
    except FhirError as exc:
        detail = "; ".join(i.diagnostics for i in exc.issues)
        async with state.runtime.sessions() as session:
            after = await session.get(TaskRecord, task_id)
        visible = after is not None and service.may_see(user, after)
        key, params = cards.refusal(status_code=exc.status_code, current=after.status if visible else None,
                                    action=action, reason=reason, detail=detail, issues=exc.issues)
        return await _refused(request, user, task_id=task_id, action=action, key=key, params=params,
                              description=f"{exc.status_code}: {detail}", status_code=exc.status_code,
                              patient=pseudonym)
    state.runtime.relay.wake()
    return RedirectResponse(f"/console/partner?done={action}#task-{task_id}", status_code=303)
