"""The evaluation as FHIR R4: `GET /fhir/Measure` (what each measure counts) and
`GET /fhir/MeasureReport?period=YYYY-MM[&uzovi=NNNN]` (one summary report per measure and month), read by the
same roles and with the same small-cell protection as the evaluation API."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from services.billing_shadow.api.evaluation import evaluation_document
from services.billing_shadow.domain.measures_fhir import BY_ID, MEASURES, measure_reports, measure_resource
from shared.auth import Caller, current_caller
from shared.fhir import FhirError, Issue
from shared.responses import JSONResponse

router = APIRouter(prefix="/fhir", tags=["evaluation"])
FHIR_JSON = "application/fhir+json"


def _bundle(request: Request, resources: list[dict[str, Any]]) -> JSONResponse:
    base = str(request.base_url).rstrip("/") + "/fhir"
    return JSONResponse({"resourceType": "Bundle", "id": uuid.uuid4().hex, "type": "searchset",
                         "total": len(resources), "link": [{"relation": "self", "url": str(request.url)}],
                         "entry": [{"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r,
                                    "search": {"mode": "match"}} for r in resources]}, media_type=FHIR_JSON)


@router.get("/Measure")
async def measures(request: Request, caller: Annotated[Caller, Depends(current_caller)]) -> JSONResponse:
    """Every evaluation measure; open to anyone who may read the evaluation (no figures in it)."""
    _ = caller
    return _bundle(request, [measure_resource(m) for m in MEASURES])


@router.get("/Measure/{measure_id}")
async def measure(measure_id: str, caller: Annotated[Caller, Depends(current_caller)]) -> JSONResponse:
    _ = caller
    if measure_id not in BY_ID:
        raise FhirError(404, Issue("error", "not-found", f"no Measure {measure_id}"))
    return JSONResponse(measure_resource(BY_ID[measure_id]), media_type=FHIR_JSON)


@router.get("/MeasureReport")
async def measure_report_search(request: Request, caller: Annotated[Caller, Depends(current_caller)],
                                period: Annotated[str, Query(description="the month, YYYY-MM")],
                                uzovi: str | None = None,
                                measure: Annotated[str | None, Query(description="a Measure id or url")] = None
                                ) -> JSONResponse:
    """The month's summary MeasureReports (one per measure, or the one `measure`), for the region or one UZOVI."""
    wanted = measure.rsplit("/", 1)[-1] if measure else None
    if wanted is not None and wanted not in BY_ID:
        raise FhirError(400, Issue("error", "value", f"unknown measure {measure}", ("measure",)))
    document = await evaluation_document(request, caller, period, period, uzovi)
    reports = [r for r in measure_reports(document) if wanted is None or r["measure"].endswith(f"/{wanted}")]
    return _bundle(request, reports)
