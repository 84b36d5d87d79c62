"""The billing officer's console: feeds per month and insurer, charts, drill-down to the derivation,
corrections with a reason, CSV (Dutch Excel) and XLSX export, and the tariff tables with new versions."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.billing_shadow import service
from services.billing_shadow.console import formats
from services.billing_shadow.console.formats import feed_csv_dutch, feed_xlsx, parse_euros
from services.billing_shadow.domain.seed import DESCRIPTIONS, SHADOW
from services.billing_shadow.domain.tariffs import AMSTERDAM, period_of
from services.billing_shadow.models import ContactFact, PrestationLine, RequestFact, ShadowLine, TariffRow
from shared import audit
from shared.auth import Caller
from shared.console import console_user
from shared.i18n import language, translator
from shared.refusals import words as refusal_words
from shared.region import ORGANISATIONS

router = APIRouter(prefix="/console", include_in_schema=False)
BillingOfficer = Annotated[Caller, console_user("declaratie")]
PERIOD = r"^\d{4}-(0[1-9]|1[0-2])$"
INSURERS = [o for o in ORGANISATIONS if o.kind == "insurer"]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# What the correction use case says when it refuses (service.correct), by the refusal's kind, in words for the
# billing officer (English in shared/i18n.py); "missing" is an unknown line (LookupError).
CORRECTION_REFUSALS = {
    "not-standing": "Alleen de geldende regel van een aanvraag kan worden gecorrigeerd; ververs de pagina.",
    "no-reason": "Geef een reden voor de correctie.",
    "one-action": "Kies: herdeclareren bij een andere verzekeraar, intrekken of later ontvangen gegevens toepassen.",
    "no-late-facts": "Er zijn na het vastzetten geen nieuwe gegevens ontvangen.",
    "same-insurer": "De regel staat al op naam van deze verzekeraar.",
    "missing": "Deze regel is niet (meer) bekend; ververs de pagina.",
}
CORRECTION_REFUSED = "De correctie is geweigerd: {detail}"
# The tariff form's refusals by kind (service.add_tariff_version, domain/tariffs.close_for_new_version), with the
# values they quote; the form's own checks (formats.parse_euros, the date) are constant Dutch texts.
TARIFF_REFUSALS = {
    "unknown-tariff": "Onbekende tarieftabel of code: {key} {code}.",
    "starts-in-past": "Een nieuwe versie begint vandaag of later, niet op {date}.",
    "version-exists": "Er is al een versie van {code} die begint op {date}; kies een latere datum.",
}
VALID_FROM_INVALID = "Geldig vanaf is een datum."


def words(request: Request) -> dict[str, Any]:
    """What the billing templates format with, in the console's language: money, percentages, line kinds,
    exclusion reasons and the names of prestation codes."""
    lang = language(request)
    return {"euro": lambda cents: formats.euro(cents, lang), "kind": lambda k: formats.kind_words(k, lang),
            "exclusion": lambda r: formats.exclusion_words(r, lang),
            "percent": lambda share, digits=1: formats.percent(share, digits, lang),
            "signed_percent": lambda value: formats.signed_percent(value, lang), "code_names": formats.CODE_NAMES}


def correction_refusal(exc: Exception, lang: str) -> str:
    """A refusal of service.correct in words of `lang`, by its kind (shared/refusals.Refused; an unknown line is a
    LookupError); one the console does not know is said as refused, with the service's text as the detail."""
    kind = "missing" if isinstance(exc, LookupError) else getattr(exc, "kind", None)
    dutch = CORRECTION_REFUSALS.get(kind or "")
    t = translator(lang)
    return t(dutch) if dutch else refusal_words(CORRECTION_REFUSED, {"detail": str(exc)}, t)


def tariff_refusal(exc: ValueError, lang: str) -> str:
    """A refused tariff version in words of `lang`: a known kind's message with its values (dates as dd-mm-jjjj),
    else the form's own Dutch text translated."""
    t = translator(lang)
    dutch = TARIFF_REFUSALS.get(getattr(exc, "kind", ""))
    return refusal_words(dutch, getattr(exc, "values", {}), t) if dutch else t(str(exc))


def _error(request: Request, user: Caller, status: int, message: str, detail: str = "") -> Response:
    """An HTML error page in the console's language instead of FastAPI's JSON."""
    return request.app.state.templates.TemplateResponse(request, "error.html", {
        "user": user, "message": message, "detail": detail}, status_code=status)


def _period(request: Request, user: Caller, period: str | None) -> str | Response:
    """The period asked for (default: this month), or an error page for anything but YYYY-MM."""
    if period is None:
        return period_of(datetime.now(UTC))
    if not re.match(PERIOD, period):
        return _error(request, user, 400, "Ongeldige periode", period)
    return period


def _insurer(request: Request, user: Caller, uzovi: str) -> Response | None:
    if uzovi not in {o.value for o in INSURERS}:
        return _error(request, user, 404, "Onbekende verzekeraar", uzovi)
    return None


def _previous_periods(period: str, count: int) -> list[str]:
    year, month = (int(p) for p in period.split("-"))
    periods = []
    for _ in range(count):
        periods.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return list(reversed(periods))


@router.get("", response_class=HTMLResponse)
async def overview(request: Request, user: BillingOfficer, period: str | None = None) -> Response:
    """The month's feeds per insurer with charts; a bad period gives an error page."""
    period = _period(request, user, period)
    if isinstance(period, Response):
        return period
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
        "user": user, "period": period, "feeds": feeds, "monthly": monthly, "mix": mix, **words(request),
        "target": target, "peak": max([1, *(max(m["integrated"], m["shadow"]) for m in monthly)]),
        "mix_peak": max([1, *mix.values()])})


@router.get("/feeds/{uzovi}.{kind}")
async def export_feed(uzovi: str, kind: str, request: Request, user: BillingOfficer,
                      period: str | None = None) -> Response:
    """The feed as CSV for Dutch Excel (`;`, decimal commas) or as XLSX; the feed API's CSV is not this one."""
    if kind not in ("csv", "xlsx"):
        return _error(request, user, 404, "Onbekend exportformaat", kind)
    period = _period(request, user, period)
    if isinstance(period, Response):
        return period
    if (unknown := _insurer(request, user, uzovi)) is not None:
        return unknown
    async with request.app.state.runtime.sessions() as session:
        document = await service.current_feed(session, uzovi=uzovi, period=period)
    await audit.for_request(request, subtype="export", entity=f"feed {kind.upper()} {uzovi} {period}",
                            purpose=audit.PURPOSE_PAYMENT)
    disposition = {"Content-Disposition": f'attachment; filename="feed-{uzovi}-{period}.{kind}"'}
    if kind == "xlsx":
        return Response(feed_xlsx(document), media_type=XLSX, headers=disposition)
    return Response(feed_csv_dutch(document).encode("utf-8-sig"), media_type="text/csv; charset=utf-8",
                    headers=disposition)


async def _contacts(session: AsyncSession, request_ids: set[str]) -> dict[str, ContactFact]:
    """The delivered contacts of these requests by Encounter id."""
    if not request_ids:
        return {}
    rows = (await session.execute(select(ContactFact).where(ContactFact.acute_request_id.in_(request_ids)))).scalars()
    return {c.id: c for c in rows}


async def _pseudonym_of_line(session: AsyncSession, line_id: str) -> str | None:
    """The pseudonym of the request a ledger line belongs to (None if the line or its request is unknown): the
    patient a correction's audit event names."""
    return (await session.execute(select(RequestFact.pseudonym).join(
        PrestationLine, PrestationLine.acute_request_id == RequestFact.id).where(  # type: ignore[arg-type]
        PrestationLine.id == line_id))).scalar_one_or_none()


@router.get("/lines", response_class=HTMLResponse)
async def lines(request: Request, user: BillingOfficer, period: str | None = None, uzovi: str = "",
                code: str | None = None) -> Response:
    """Drill-down from a feed line to the requests behind it and how each was derived."""
    period = _period(request, user, period)
    if isinstance(period, Response):
        return period
    if (unknown := _insurer(request, user, uzovi)) is not None:
        return unknown
    async with request.app.state.runtime.sessions() as session:
        rows = [r for r in await service.lines(session, period=period, uzovi=uzovi) if code in (None, r.code)]
        contacts = await _contacts(session, {r.acute_request_id for r in rows})
    # A search over the month's requests of one insurer (many patients, each by request id only): audited as one
    # search without patient; opening a request's ledger from here is a read that names its patient.
    await audit.for_request(request, subtype="search", entity=f"console lines {uzovi} {period} {code or ''}",
                            purpose=audit.PURPOSE_PAYMENT)
    return request.app.state.templates.TemplateResponse(request, "lines.html", {
        "user": user, "rows": rows, "period": period, "uzovi": uzovi, "code": code, **words(request),
        "explain": lambda line: formats.explain(line, {i: c.start for i, c in contacts.items()}, language(request))})


@router.get("/requests/{request_id}", response_class=HTMLResponse)
async def request_ledger(request: Request, user: BillingOfficer, request_id: str, error: str | None = None) -> Response:
    async with request.app.state.runtime.sessions() as session:
        ledger_lines = list((await session.execute(select(PrestationLine).where(
            PrestationLine.acute_request_id == request_id).order_by(PrestationLine.sequence))).scalars())
        shadows = list((await session.execute(select(ShadowLine).where(
            ShadowLine.acute_request_id == request_id))).scalars())
        standing = await service.effective_line(session, request_id)
        fact = await session.get(RequestFact, request_id)
        contacts = await _contacts(session, {request_id})
    if not ledger_lines:
        return _error(request, user, 404, "Onbekende aanvraag", request_id)
    # The request's pseudonym (billing holds no name or BSN): the admin's audit search by BSN, which becomes this
    # pseudonym, then finds who read this patient's ledger (SPEC §10).
    await audit.for_request(request, subtype="read", entity=f"console ledger of acute request {request_id}",
                            patient=fact.pseudonym if fact else None, purpose=audit.PURPOSE_PAYMENT)
    lang = language(request)
    return request.app.state.templates.TemplateResponse(request, "request.html", {
        "user": user, "request_id": request_id, "lines": ledger_lines, "shadows": shadows, "standing": standing,
        "insurers": INSURERS, **words(request), "error": error, "late": bool(fact and fact.changed_after_lock),
        "explain": lambda line: formats.explain(line, {i: c.start for i, c in contacts.items()}, lang),
        "descriptions": DESCRIPTIONS,
        "insurer_names": {o.value: o.name for o in INSURERS},
        "status": lambda line: formats.line_status(line, standing_id=standing.id if standing else None,
                                                   now=datetime.now(UTC), lang=lang),
        "contacts": {i: formats.contact_words(c.act_class, c.start, lang) for i, c in contacts.items()},
        "patient_url": f"{request.app.state.settings.triage_public_url}/console/billing/requests/{request_id}"
                       f"?lang={lang}",  # the front door's page in the language chosen here
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
                               patient=await _pseudonym_of_line(session, line_id), purpose=audit.PURPOSE_PAYMENT)
    except (LookupError, ValueError) as exc:
        return await request_ledger(request, user, request_id, error=correction_refusal(exc, language(request)))
    state.runtime.relay.wake()
    return RedirectResponse(f"/console/requests/{request_id}", status_code=303)


@router.get("/tariffs", response_class=HTMLResponse)
async def tariffs(request: Request, user: BillingOfficer, error: str | None = None,
                  form: dict[str, str] | None = None, status_code: int = 200) -> Response:
    """The tariff tables; the admin (`beheer`) also gets the form for a new version."""
    async with request.app.state.runtime.sessions() as session:
        rows = list((await session.execute(select(TariffRow).order_by(
            TariffRow.key, TariffRow.code, TariffRow.valid_from))).scalars())
    today = datetime.now(AMSTERDAM).date()
    return request.app.state.templates.TemplateResponse(request, "tariffs.html", {
        "user": user, "rows": rows, "today": today, **words(request), "error": error, "form": form or {},
        "keys": [SHADOW, *(o.value for o in INSURERS)], "codes": sorted({r.code for r in rows}),
        "csrf": request.app.state.console_auth.csrf_token(request)}, status_code=status_code)


@router.post("/tariffs")
async def add_tariff(request: Request, user: BillingOfficer, csrf_token: Annotated[str, Form()],
                     key: Annotated[str, Form(max_length=20)], code: Annotated[str, Form(max_length=20)],
                     price: Annotated[str, Form(max_length=20)], valid_from: Annotated[str, Form(max_length=10)],
                     source: Annotated[str, Form(max_length=100)] = "") -> Response:
    """The admin adds a tariff version (price in euros with a comma, valid from today or later); audited."""
    state = request.app.state
    state.console_auth.check_csrf(request, csrf_token)
    if user.role != "beheer":
        return _error(request, user, 403, "Alleen de beheerder legt nieuwe tariefversies vast.")
    form = {"key": key, "code": code, "price": price, "valid_from": valid_from, "source": source}
    try:
        cents = parse_euros(price)
        try:
            start = date.fromisoformat(valid_from)
        except ValueError:
            raise ValueError(VALID_FROM_INVALID) from None
        async with state.runtime.sessions() as session, session.begin():
            row = await service.add_tariff_version(
                session, key=key, code=code, price_cents=cents, valid_from=start,
                source=source.strip() or f"tariefversie door {user.subject}", today=datetime.now(AMSTERDAM).date())
            await audit.record(session, service="billing_shadow", caller=user, subtype="create",
                               entity=f"tariff {key}/{code} {cents} cents from {start} (version {row.pk})",
                               purpose=audit.PURPOSE_OPERATIONS)
    except ValueError as exc:
        return await tariffs(request, user, error=tariff_refusal(exc, language(request)), form=form, status_code=400)
    return RedirectResponse("/console/tariffs", status_code=303)
