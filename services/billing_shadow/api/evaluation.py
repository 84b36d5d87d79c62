"""Evaluation API (SPEC §12): the experiment's measures per month as JSON and CSV, by role.

Who reads what: the front door's billing role (`billing.read`: billing officer, admin, the ops client) reads the
region or any insurer with exact counts; an insurer (`feed.read`) only its own UZOVI, an evaluator
(`evaluation.read`) only the region as a whole, both with small cells suppressed ("<5", shares null).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from services.billing_shadow import evaluation
from services.billing_shadow.domain.evaluation import suppress
from shared import audit
from shared.auth import Caller, current_caller
from shared.fhir import FhirError, Issue
from shared.identifiers import UZOVI_SYSTEM
from shared.responses import JSONResponse

router = APIRouter(prefix="/api/v1", tags=["evaluation"])


def scope_for(caller: Caller, uzovi: str | None) -> tuple[str | None, bool]:
    """The UZOVI (None: the region) the caller reads and whether small cells are suppressed; FhirError 400 for a
    malformed UZOVI, 403 for a scope the caller may not read."""
    if uzovi is not None and not re.fullmatch(r"\d{4}", uzovi):
        raise FhirError(400, Issue("error", "value", "uzovi is 4 digits", ("uzovi",)))
    if "billing.read" in caller.scopes:
        return uzovi, False
    if "feed.read" in caller.scopes and caller.org.startswith(f"{UZOVI_SYSTEM}|"):
        own = caller.org.split("|", 1)[1]
        if uzovi not in (None, own):
            raise FhirError(403, Issue("error", "forbidden", f"an insurer reads only its own UZOVI ({own})"))
        return own, True
    if "evaluation.read" in caller.scopes:
        if uzovi is not None:
            raise FhirError(403, Issue("error", "forbidden", "an evaluator reads the region as a whole, not one "
                                                             "insurer"))
        return None, True
    raise FhirError(403, Issue("error", "forbidden", "this client may not read the evaluation"))


async def evaluation_document(request: Request, caller: Caller, first: str, last: str,
                              uzovi: str | None, subtype: str = "export") -> dict[str, Any]:
    """The document the caller may read (exact or suppressed); 400 for a bad month range.

    Audited as `subtype`: "export" where the document leaves the system (the API's JSON and CSV), "read" where it
    is only shown (the billing console's evaluation page). It holds aggregates only, no patient, so the event names
    none; it is still logged, as who looked at the experiment's figures and for which insurer (SPEC §10, §12)."""
    scope, suppressed = scope_for(caller, uzovi)
    state = request.app.state
    try:
        async with state.runtime.sessions() as session:
            doc = await evaluation.document(session, first=first, last=last, experiment=state.settings.experiment(),
                                            uzovi=scope)
    except ValueError as exc:
        raise FhirError(400, Issue("error", "value", str(exc), ("from", "to"))) from exc
    await audit.for_request(request, subtype=subtype, entity=f"evaluation {scope or 'region'} {first}..{last} "
                            "(aggregated, no patient data)", purpose=audit.PURPOSE_PAYMENT)
    return suppress(doc) if suppressed else doc


From = Annotated[str, Query(alias="from", description="first month, YYYY-MM")]
To = Annotated[str, Query(description="last month, YYYY-MM (at most 60 months after from)")]


@router.get("/evaluation.csv")
async def evaluation_csv(request: Request, caller: Annotated[Caller, Depends(current_caller)], first: From,
                         to: To, uzovi: str | None = None) -> Response:
    doc = await evaluation_document(request, caller, first, to, uzovi)
    return Response(evaluation.csv_text(doc), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="evaluation-{doc["scope"]}-{first}-{to}.csv"'})


@router.get("/evaluation")
async def evaluation_json(request: Request, caller: Annotated[Caller, Depends(current_caller)], first: From,
                          to: To, uzovi: str | None = None) -> JSONResponse:
    """The experiment's measures per month and in total (SPEC §12)."""
    return JSONResponse(await evaluation_document(request, caller, first, to, uzovi))
