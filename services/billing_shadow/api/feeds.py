"""Billing JSON API: insurer feeds (JSON and CSV) and line-level prestations for the billing role."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from services.billing_shadow import service
from services.billing_shadow.models import PrestationLine
from shared import audit
from shared.auth import Caller, current_caller, require_scope
from shared.fhir import FhirError, Issue
from shared.identifiers import UZOVI_SYSTEM, is_valid_bsn, pseudonym
from shared.region import organisation
from shared.responses import JSONResponse

router = APIRouter(prefix="/api/v1", tags=["billing"])
PERIOD = r"^\d{4}-(0[1-9]|1[0-2])$"


def _may_read_feed(caller: Caller, uzovi: str) -> None:
    """An insurer reads only its own UZOVI feed; the front door's billing role reads all."""
    if "billing.read" in caller.scopes:
        return
    if "feed.read" in caller.scopes and caller.org == f"{UZOVI_SYSTEM}|{uzovi}":
        return
    raise FhirError(403, Issue("error", "forbidden", f"this client may not read the feed of UZOVI {uzovi}"))


async def _feed(request: Request, caller: Caller, uzovi: str, period: str) -> dict[str, object]:
    if not re.fullmatch(r"\d{4}", uzovi):
        raise FhirError(400, Issue("error", "value", "UZOVI is 4 digits", ("uzovi",)))
    _may_read_feed(caller, uzovi)
    async with request.app.state.runtime.sessions() as session:
        document = await service.current_feed(session, uzovi=uzovi, period=period)
    await audit.for_request(request, subtype="export", entity=f"feed {uzovi} {period} (aggregated, no patient data)",
                            purpose=audit.PURPOSE_PAYMENT)
    return document


@router.get("/feeds/{uzovi}.csv")
async def feed_csv(uzovi: str, request: Request, caller: Annotated[Caller, Depends(current_caller)],
                   period: Annotated[str, Query(pattern=PERIOD)]) -> Response:
    document = await _feed(request, caller, uzovi, period)
    return Response(service.feed_csv(document), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="feed-{uzovi}-{period}.csv"'})


@router.get("/feeds/{uzovi}")
async def feed(uzovi: str, request: Request, caller: Annotated[Caller, Depends(current_caller)],
               period: Annotated[str, Query(pattern=PERIOD)]) -> JSONResponse:
    return JSONResponse(await _feed(request, caller, uzovi, period))


@router.get("/prestations")
async def prestations(request: Request, caller: Annotated[Caller, Depends(current_caller)],
                      period: Annotated[str | None, Query(pattern=PERIOD)] = None,
                      uzovi: Annotated[str | None, Query(pattern=r"^\d{4}$")] = None) -> dict[str, object]:
    if "billing.read" not in caller.scopes:
        raise FhirError(403, Issue("error", "forbidden", "line-level prestations are for the billing role only"))
    async with request.app.state.runtime.sessions() as session:
        rows = await service.lines(session, period=period, uzovi=uzovi)
    await audit.for_request(request, subtype="search", entity=f"prestations?{request.url.query}",
                            purpose=audit.PURPOSE_PAYMENT)
    return {"items": [line_json(r) for r in rows]}


def line_json(r: PrestationLine) -> dict[str, object]:
    return {"id": r.id, "acute_request": r.acute_request_id, "kind": r.kind, "quantity": r.quantity,
            "corrects": r.corrects, "code": r.code, "exclusion_reason": r.exclusion_reason, "uzovi": r.uzovi,
            "period": r.period, "service_date": r.service_date.isoformat(), "unit_price_cents": r.unit_price_cents,
            "shadow_amount_cents": r.shadow_amount_cents, "explanation": r.explanation, "reason": r.reason,
            "created_by": r.created_by, "locks_at": r.locks_at.isoformat() if r.locks_at else None}


class OpenDbcIn(BaseModel):
    bsn: str = Field(pattern=r"^\d{9}$")
    reference: str = Field(min_length=1, max_length=100, description="the hospital's DBC number")
    start: date
    end: date | None = None


@router.post("/open-dbcs", status_code=201)
async def report_open_dbc(body: OpenDbcIn, request: Request,
                          caller: Caller = require_scope(resource="ServiceRequest", action="c")) -> dict[str, object]:
    """A hospital reports a patient's running DBC: acute requests in that period are delimited (delimited-dbc)."""
    reporter = organisation(*caller.org.split("|", 1)) if "|" in caller.org else None
    if reporter is None or reporter.kind != "hospital":
        raise FhirError(403, Issue("error", "forbidden", "only a hospital reports an open DBC"))
    if not is_valid_bsn(body.bsn):
        raise FhirError(422, Issue("error", "value", "BSN fails the 11-proof", ("bsn",)))
    state = request.app.state
    patient = pseudonym(body.bsn, state.settings.pseudonym_key_bytes)
    try:
        async with state.runtime.sessions() as session, session.begin():
            changed = await service.report_open_dbc(session, pseudonym=patient, reference=body.reference,
                                                    start=body.start, end=body.end, reporter=caller.subject,
                                                    reporter_org=caller.org,
                                                    grace=timedelta(hours=state.settings.lock_grace_hours))
            await audit.record(session, service="billing_shadow", caller=caller, subtype="create",
                               entity=f"open DBC {body.reference} reported", patient=patient,
                               purpose=audit.PURPOSE_PAYMENT)
    except ValueError as exc:
        raise FhirError(422, Issue("error", "business-rule", str(exc))) from exc
    state.runtime.relay.wake()
    return {"patient": patient, "requests_rederived": changed}


class CorrectionIn(BaseModel):
    reason: str = Field(min_length=3, max_length=500)
    uzovi: str | None = Field(None, pattern=r"^\d{4}$")
    withdraw: bool = False
    apply_late_facts: bool = Field(False, description="apply facts that arrived after the line locked")


@router.post("/prestations/{line_id}/corrections", status_code=201)
async def correct(line_id: str, body: CorrectionIn, request: Request,
                  caller: Caller = require_scope(scope="billing.write")) -> dict[str, object]:
    """Credit the standing line and rebill it for another insurer, or withdraw it; never a chosen code."""
    state = request.app.state
    try:
        async with state.runtime.sessions() as session, session.begin():
            line = await service.correct(session, line_id=line_id, reason=body.reason, uzovi=body.uzovi,
                                         withdraw=body.withdraw, apply_late_facts=body.apply_late_facts,
                                         actor=caller.subject,
                                         grace=timedelta(hours=state.settings.lock_grace_hours))
            await audit.record(session, service="billing_shadow", caller=caller, subtype="update",
                               entity=f"correction of prestation line {line_id}: {body.reason}",
                               purpose=audit.PURPOSE_PAYMENT)
    except LookupError as exc:
        raise FhirError(404, Issue("error", "not-found", str(exc))) from exc
    except ValueError as exc:
        raise FhirError(422, Issue("error", "business-rule", str(exc))) from exc
    state.runtime.relay.wake()
    return line_json(line)
