"""Reading the audit log: FHIR search for authorised clients and a console page for the admin (both audited)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from shared import audit, search
from shared.auth import Caller, require_scope
from shared.console import console_user
from shared.identifiers import searched_pseudonym
from shared.responses import FhirJSONResponse

router = APIRouter(tags=["audit"])
Admin = Annotated[Caller, console_user("beheer")]
PAGE_SIZE, MAX_PAGE_SIZE = 100, 1000


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


@router.get("/console/audit", response_class=HTMLResponse, include_in_schema=False)
async def page(request: Request, user: Admin, patient: str | None = None) -> Response:
    async with request.app.state.runtime.sessions() as session:
        events = await audit.search(session, patient=patient or None, count=200)
    await audit.for_request(request, subtype="search", entity="console audit log", patient=patient or None,
                            purpose=audit.PURPOSE_OPERATIONS)
    return request.app.state.templates.TemplateResponse(request, "audit.html", {
        "user": user, "events": events, "patient": patient or "",
        "service": request.app.state.settings.service_name})
