"""The billing officer's console: feeds per month and insurer, charts, drill-down to the derivation,
corrections with a reason, CSV export and the tariff tables."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from services.billing_shadow import service
from services.billing_shadow.domain.tariffs import period_of
from services.billing_shadow.models import PrestationLine, RequestFact, ShadowLine, TariffRow
from shared import audit
from shared.auth import Caller
from shared.console import console_user
from shared.region import ORGANISATIONS

router = APIRouter(prefix="/console", include_in_schema=False)
BillingOfficer = Annotated[Caller, console_user("declaratie")]
PERIOD = r"^\d{4}-(0[1-9]|1[0-2])$"
INSURERS = [o for o in ORGANISATIONS if o.kind == "insurer"]


def _previous_periods(period: str, count: int) -> list[str]:
    year, month = (int(p) for p in period.split("-"))
    periods = []
    for _ in range(count):
        periods.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return list(reversed(periods))


def _euro(cents: int) -> str:
    sign = "−" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    return f"{sign}€ {whole:,}.{rest:02d}".replace(",", " ")


@router.get("", response_class=HTMLResponse)
async def overview(request: Request, user: BillingOfficer,
                   period: Annotated[str | None, Query(pattern=PERIOD)] = None) -> Response:
    period = period or period_of(datetime.now(UTC))
    target = request.app.state.settings.inclusion_target
    months = _previous_periods(period, 6)
    async with request.app.state.runtime.sessions() as session:
        feeds = [(o, await service.current_feed(session, uzovi=o.value, period=period)) for o in INSURERS]
        history = [(month, [await service.build_feed(session, uzovi=o.value, period=month) for o in INSURERS])
                   for month in months]
    monthly = [{"period": month, "integrated": sum(f["totals"]["amount_cents"] for f in fs),
                "shadow": sum(f["totals"]["shadow_amount_cents"] for f in fs)} for month, fs in history]
    mix: dict[str, int] = {"ADV": 0, "VIS": 0, "CON": 0}
    for _, feed in feeds:
        for line in feed["lines"]:
            mix[line["code"]] += line["quantity"]
    await audit.for_request(request, subtype="search", entity=f"console feeds {period}", purpose=audit.PURPOSE_PAYMENT)
    return request.app.state.templates.TemplateResponse(request, "overview.html", {
        "user": user, "period": period, "feeds": feeds, "monthly": monthly, "mix": mix, "euro": _euro,
        "target": target, "peak": max([1, *(max(m["integrated"], m["shadow"]) for m in monthly)]),
        "mix_peak": max([1, *mix.values()])})


@router.get("/feeds/{uzovi}.csv")
async def export_csv(uzovi: str, request: Request, user: BillingOfficer,
                     period: Annotated[str, Query(pattern=PERIOD)]) -> Response:
    async with request.app.state.runtime.sessions() as session:
        document = await service.current_feed(session, uzovi=uzovi, period=period)
    await audit.for_request(request, subtype="export", entity=f"feed CSV {uzovi} {period}",
                            purpose=audit.PURPOSE_PAYMENT)
    return Response(service.feed_csv(document), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="feed-{uzovi}-{period}.csv"'})


@router.get("/lines", response_class=HTMLResponse)
async def lines(request: Request, user: BillingOfficer, period: Annotated[str, Query(pattern=PERIOD)],
                uzovi: Annotated[str, Query(pattern=r"^\d{4}$")], code: str | None = None) -> Response:
    """Drill-down from a feed line to the requests behind it and how each was derived."""
    async with request.app.state.runtime.sessions() as session:
        rows = [r for r in await service.lines(session, period=period, uzovi=uzovi) if code in (None, r.code)]
    await audit.for_request(request, subtype="search", entity=f"console lines {uzovi} {period} {code or ''}",
                            purpose=audit.PURPOSE_PAYMENT)
    return request.app.state.templates.TemplateResponse(request, "lines.html", {
        "user": user, "rows": rows, "period": period, "uzovi": uzovi, "code": code, "euro": _euro})


@router.get("/requests/{request_id}", response_class=HTMLResponse)
async def request_ledger(request: Request, user: BillingOfficer, request_id: str, error: str | None = None) -> Response:
    async with request.app.state.runtime.sessions() as session:
        ledger_lines = list((await session.execute(select(PrestationLine).where(
            PrestationLine.acute_request_id == request_id).order_by(PrestationLine.sequence))).scalars())
        shadows = list((await session.execute(select(ShadowLine).where(
            ShadowLine.acute_request_id == request_id))).scalars())
        standing = await service.effective_line(session, request_id)
        fact = await session.get(RequestFact, request_id)
    if not ledger_lines:
        return HTMLResponse("Onbekende aanvraag", status_code=404)
    await audit.for_request(request, subtype="read", entity=f"console ledger of acute request {request_id}",
                            purpose=audit.PURPOSE_PAYMENT)
    return request.app.state.templates.TemplateResponse(request, "request.html", {
        "user": user, "request_id": request_id, "lines": ledger_lines, "shadows": shadows, "standing": standing,
        "insurers": INSURERS, "euro": _euro, "error": error, "late": bool(fact and fact.changed_after_lock),
        "csrf": request.app.state.console_auth.csrf_token(request)})


@router.post("/requests/{request_id}/corrections")
async def correct(request: Request, user: BillingOfficer, request_id: str, line_id: Annotated[str, Form()],
                  reason: Annotated[str, Form(max_length=500)], csrf_token: Annotated[str, Form()],
                  action: Annotated[str, Form(pattern="^(rebill|withdraw|apply)$")],
                  uzovi: Annotated[str | None, Form()] = None) -> Response:
    state = request.app.state
    state.console_auth.check_csrf(request, csrf_token)
    try:
        async with state.runtime.sessions() as session, session.begin():
            await service.correct(session, line_id=line_id, reason=reason, actor=user.subject,
                                  uzovi=uzovi if action == "rebill" else None, withdraw=action == "withdraw",
                                  apply_late_facts=action == "apply",
                                  grace=timedelta(hours=state.settings.lock_grace_hours))
            await audit.record(session, service="billing_shadow", caller=user, subtype="update",
                               entity=f"correction of acute request {request_id}: {reason}",
                               purpose=audit.PURPOSE_PAYMENT)
    except (LookupError, ValueError) as exc:
        return await request_ledger(request, user, request_id, error=str(exc))
    state.runtime.relay.wake()
    return RedirectResponse(f"/console/requests/{request_id}", status_code=303)


@router.get("/tariffs", response_class=HTMLResponse)
async def tariffs(request: Request, user: BillingOfficer) -> Response:
    async with request.app.state.runtime.sessions() as session:
        rows = list((await session.execute(select(TariffRow).order_by(
            TariffRow.key, TariffRow.code, TariffRow.valid_from))).scalars())
    today = date.today()
    return request.app.state.templates.TemplateResponse(request, "tariffs.html", {
        "user": user, "rows": rows, "today": today, "euro": _euro})
