"""The front door's one page for the billing role: who an acute request was for (name, BSN, insurer).

Billing keeps only the pseudonym and the request id; before a rebill the billing officer may need to
check the patient and the insurer here, at the front door, which holds them. Each look is audited with
purpose of use payment (HPAYMT). Billing's tables stay without names and BSNs.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.triage.models import AcuteRequest, PatientRecord
from shared import audit
from shared.auth import Caller
from shared.console import console_user
from shared.identifiers import UZOVI_SYSTEM
from shared.region import organisation

router = APIRouter(prefix="/console/billing", include_in_schema=False)
BillingOfficer = Annotated[Caller, console_user("declaratie")]


@router.get("/requests/{request_id}", response_class=HTMLResponse)
async def patient_of_request(request: Request, user: BillingOfficer, request_id: str) -> Response:
    """Name, BSN and insurer of the acute request's patient, for the billing role (and the admin); audited
    as a payment read. An unknown request id gives a 404 page."""
    async with request.app.state.runtime.sessions() as session:
        acute = await session.get(AcuteRequest, request_id[:64])
        patient = await session.get(PatientRecord, acute.patient_id) if acute and acute.patient_id else None
    templates = request.app.state.templates
    if acute is None:
        return templates.TemplateResponse(request, "billing_patient.html", {
            "user": user, "request_id": request_id, "acute": None,
            "billing_url": request.app.state.settings.billing_public_url}, status_code=404)
    await audit.for_request(request, subtype="read", entity=f"patient of acute request {request_id} (billing)",
                            patient=acute.pseudonym, purpose=audit.PURPOSE_PAYMENT)
    insurer = organisation(UZOVI_SYSTEM, acute.uzovi) if acute.uzovi else None
    return templates.TemplateResponse(request, "billing_patient.html", {
        "user": user, "request_id": request_id, "acute": acute, "patient": patient, "insurer": insurer,
        "billing_url": request.app.state.settings.billing_public_url})
