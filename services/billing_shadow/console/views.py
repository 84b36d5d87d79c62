"""The billing officer's console (minimal): feeds per insurer for a month, with their lines."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from services.billing_shadow import service
from services.billing_shadow.domain.tariffs import period_of
from shared import audit
from shared.auth import Caller
from shared.console import console_user
from shared.region import ORGANISATIONS

router = APIRouter(prefix="/console", include_in_schema=False)
BillingOfficer = Annotated[Caller, console_user("declaratie")]


@router.get("", response_class=HTMLResponse)
async def overview(request: Request, user: BillingOfficer,
                   period: Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")] = None) -> Response:
    period = period or period_of(datetime.now(UTC))
    insurers = [o for o in ORGANISATIONS if o.kind == "insurer"]
    async with request.app.state.runtime.sessions() as session:
        feeds = [(o, await service.current_feed(session, uzovi=o.value, period=period)) for o in insurers]
        rows = await service.lines(session, period=period, uzovi=None)
    await audit.for_request(request, subtype="search", entity=f"console prestations {period}",
                            purpose=audit.PURPOSE_PAYMENT)
    return request.app.state.templates.TemplateResponse(request, "overview.html", {
        "user": user, "period": period, "feeds": feeds, "rows": rows})
