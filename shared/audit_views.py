"""Reading the audit log: FHIR search for authorised clients and a console page for the admin (both audited)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from shared import audit
from shared.auth import Caller, require_scope
from shared.console import console_user
from shared.responses import FhirJSONResponse

router = APIRouter(tags=["audit"])
Admin = Annotated[Caller, console_user("beheer")]


@router.get("/fhir/AuditEvent")
async def search(request: Request, caller: Caller = require_scope(resource="AuditEvent", action="s"),
                 patient: Annotated[str | None, Query(description="the patient pseudonym")] = None,
                 count: Annotated[int, Query(alias="_count", ge=1, le=1000)] = 100) -> Response:
    pseudonym = patient.split("|")[-1] if patient else None
    async with request.app.state.runtime.sessions() as session:
        events = await audit.search(session, patient=pseudonym, count=count)
    await audit.for_request(request, subtype="search", entity=f"AuditEvent?{request.url.query}", patient=pseudonym,
                            purpose=audit.PURPOSE_OPERATIONS)
    return FhirJSONResponse({"resourceType": "Bundle", "type": "searchset", "total": len(events),
                             "entry": [{"fullUrl": f"AuditEvent/{e['id']}", "resource": e,
                                        "search": {"mode": "match"}} for e in events]})


@router.get("/console/audit", response_class=HTMLResponse, include_in_schema=False)
async def page(request: Request, user: Admin, patient: str | None = None) -> Response:
    async with request.app.state.runtime.sessions() as session:
        events = await audit.search(session, patient=patient or None, count=200)
    await audit.for_request(request, subtype="search", entity="console audit log", patient=patient or None,
                            purpose=audit.PURPOSE_OPERATIONS)
    return request.app.state.templates.TemplateResponse(request, "audit.html", {
        "user": user, "events": events, "patient": patient or "",
        "service": request.app.state.settings.service_name})
