"""The evaluation page of the billing console: month-by-month charts of every measure against its target and a
printable quarterly report. The billing officer and admin see exact figures for the region or an insurer; the
evaluator (regulator, researcher) sees the region with small cells hidden, and nothing else of billing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from services.billing_shadow.api.evaluation import evaluation_document
from services.billing_shadow.console.formats import euro as _euro
from services.billing_shadow.console.formats import percent, signed_percent
from services.billing_shadow.console.views import INSURERS
from services.billing_shadow.domain.evaluation import CODES, URGENCIES, months_between
from services.billing_shadow.domain.tariffs import period_of
from shared.auth import Caller
from shared.console import console_user
from shared.fhir import FhirError
from shared.i18n import language, translator
from shared.refusals import Refused, words

router = APIRouter(prefix="/console", include_in_schema=False)
Reader = Annotated[Caller, console_user("declaratie", "evaluator")]
MONTH = r"^\d{4}-\d{2}$"
WIDTH, HEIGHT = 420, 140
SHARES = [("outside_hospital_share", "Afgehandeld buiten het ziekenhuis", None),
          ("linked_contact_share", "Contacten gekoppeld aan open aanvraag (dubbele triage voorkomen)", None),
          ("retriage_share", "Bewuste hertriage", None),
          ("recontact_72h_share", "Nieuwe acute aanvraag binnen 72 uur", None),
          ("inclusion_rate", "Inclusie (norm ≥ 95 %)", "inclusion")]
MINUTES = [("minutes_to_triage", "Minuten tot triage"), ("minutes_to_first_contact", "Minuten tot eerste contact")]
URGENCY_TARGETS = {"U0": "direct", "U1": "≤ 15 min", "U2": "≤ 60 min", "U3": "≤ 3 uur", "U4": "≤ 24 uur",
                   "U5": "volgende werkdag"}
# Why a period cannot be shown, by the kind of refusal (domain/evaluation.months_between), with the values it quotes.
PERIOD_REFUSALS = {"not-a-month": "{period} is geen maand (jjjj-mm).",
                   "from-after-to": "De eerste maand ({first}) ligt na de laatste ({last}).",
                   "too-long": "De periode beslaat {count} maanden; hoogstens {most}."}
EVALUATION_REFUSED = "U mag deze evaluatie niet lezen."
COLOURS = {"U0": "#b3261e", "U1": "#e8710a", "U2": "#c5a100", "U3": "#1e7b34", "U4": "#0b5cad", "U5": "#6b4fbb",
           "ADV": "#9fb7d3", "VIS": "#0b5cad", "CON": "#1e7b34", "integrated": "#0b5cad", "shadow": "#9fb7d3"}


def _x(index: int, count: int) -> float:
    return 40 + (WIDTH - 60) * (index / max(1, count - 1))


def _y(value: float, peak: float) -> float:
    return HEIGHT - 20 - (HEIGHT - 40) * value / (peak or 1)


def line(values: list[float | None], peak: float) -> str:
    """SVG polyline points of a series (gaps where a value is withheld or missing)."""
    return " ".join(f"{_x(i, len(values)):.1f},{_y(v, peak):.1f}" for i, v in enumerate(values) if v is not None)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def charts(doc: dict[str, Any], target: float, t: Callable[[str], str] = str) -> dict[str, Any]:
    """Geometry of the page's charts from the (exact or suppressed) evaluation document; titles through `t`
    (shared/i18n.translator of the console's language; Dutch as written by default)."""
    months = doc["months"]
    shares = [{"key": key, "title": t(title), "points": line([m["measures"][key] for m in months], 1.0),
               "target_y": _y(target, 1.0) if kind == "inclusion" else None,
               "latest": next((m["measures"][key] for m in reversed(months) if m["measures"][key] is not None), None)}
              for key, title, kind in SHARES]
    urgencies = [{"urgency": u, "target": t(URGENCY_TARGETS[u]), "colour": COLOURS[u],
                  "points": line([m["measures"]["target_met_share"][u] for m in months], 1.0)} for u in URGENCIES]
    minutes = [{"key": key, "title": t(title), **{p: line([m["measures"][key][p] for m in months], peak) for p in
                                                 ("p50", "p90")}, "peak": peak}
               for key, title in MINUTES
               for peak in [max([1.0, *(m["measures"][key]["p90"] or 0 for m in months)])]]
    cumulative = [(_number(m["cumulative"]["integrated_cents"]), _number(m["cumulative"]["shadow_cents"]))
                  for m in months]
    money_peak = max([1.0, *(v for c in cumulative for v in c if v is not None)])
    mix = [{code: _number(m["prestations"][code]) or 0 for code in CODES} for m in months]
    mix_peak = max([1.0, *(sum(x.values()) for x in mix)])
    bar = (WIDTH - 60) / max(1, len(months))
    stacks = []
    for i, counts in enumerate(mix):
        bottom = HEIGHT - 20.0
        for code in CODES:
            height = (HEIGHT - 40) * counts[code] / mix_peak
            stacks.append({"x": 40 + i * bar, "y": bottom - height, "w": bar * 0.7, "h": height, "code": code,
                           "colour": COLOURS[code], "title": f"{months[i]['period']} {code}: "
                                                             f"{months[i]['prestations'][code]}"})
            bottom -= height
    return {"shares": shares, "urgencies": urgencies, "minutes": minutes,
            "integrated": line([c[0] for c in cumulative], money_peak),
            "shadow": line([c[1] for c in cumulative], money_peak), "money_peak": int(money_peak), "stacks": stacks,
            "labels": [{"x": _x(i, len(months)), "period": m["period"]} for i, m in enumerate(months)],
            "width": WIDTH, "height": HEIGHT, "colours": COLOURS}


def _quarter(quarter: str) -> tuple[str, str]:
    year, _, number = quarter.partition("-Q")
    if not (year.isdigit() and len(year) == 4 and number in ("1", "2", "3", "4")):
        raise FhirError(400, [])
    first = (int(number) - 1) * 3 + 1
    return f"{year}-{first:02d}", f"{year}-{first + 2:02d}"


async def _page(request: Request, user: Caller, *, first: str, last: str, uzovi: str | None,
                template: str, **extra: Any) -> Response:
    lang = language(request)
    t = translator(lang)
    # The period is checked here first, so that what is wrong with it is said in the console's words (the API
    # behind evaluation_document says it in English, in an OperationOutcome).
    error = None
    try:
        months_between(first, last)
        # Shown, not exported: audited as a read (the page's CSV link goes to the API's export).
        doc = await evaluation_document(request, user, first, last, uzovi or None, subtype="read")
    except Refused as exc:
        why = PERIOD_REFUSALS.get(exc.kind)
        error, status = t("Ongeldige periode") + (f": {words(why, exc.values, t)}" if why else ""), 400
    except FhirError as exc:
        error, status = t(EVALUATION_REFUSED if exc.status_code == 403 else "Ongeldige periode"), exc.status_code
    if error is not None:
        return request.app.state.templates.TemplateResponse(request, "evaluation.html", {
            "user": user, "error": error, "first": first, "last": last, "uzovi": uzovi, "insurers": INSURERS,
            "doc": None}, status_code=status)
    target = request.app.state.settings.inclusion_target
    return request.app.state.templates.TemplateResponse(request, template, {
        "user": user, "doc": doc, "first": first, "last": last, "uzovi": uzovi, "insurers": INSURERS,
        "euro": lambda c: "–" if c is None else _euro(c, lang), "target": target, "chart": charts(doc, target, t),
        "percent": lambda share, digits=1: "–" if share is None else percent(share, digits, lang),
        "signed_percent": lambda value: signed_percent(value, lang),
        "urgency_targets": {u: t(text) for u, text in URGENCY_TARGETS.items()}, "error": None, **extra})


@router.get("/evaluation", response_class=HTMLResponse)
async def evaluation_page(request: Request, user: Reader,
                          first: Annotated[str | None, Query(alias="from", pattern=MONTH)] = None,
                          to: Annotated[str | None, Query(pattern=MONTH)] = None,
                          uzovi: Annotated[str | None, Query(pattern=r"^(\d{4})?$")] = None) -> Response:
    """Month-by-month charts and tables; by default the last twelve months."""
    last = to or period_of(datetime.now(UTC))
    year, month = (int(p) for p in last.split("-"))
    default_first = f"{year - 1:04d}-{month:02d}" if month == 12 else f"{year - 1:04d}-{month + 1:02d}"
    return await _page(request, user, first=first or default_first, last=last, uzovi=uzovi,
                       template="evaluation.html")


@router.get("/evaluation/report", response_class=HTMLResponse)
async def quarterly_report(request: Request, user: Reader,
                           quarter: Annotated[str, Query(pattern=r"^\d{4}-Q[1-4]$")],
                           uzovi: Annotated[str | None, Query(pattern=r"^(\d{4})?$")] = None) -> Response:
    """The quarterly report: a page that prints cleanly to PDF from the browser."""
    first, last = _quarter(quarter)
    return await _page(request, user, first=first, last=last, uzovi=uzovi, template="evaluation_report.html",
                       quarter=quarter)
