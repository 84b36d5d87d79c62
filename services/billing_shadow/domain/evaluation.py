"""The experiment's evaluation measures (pure): volumes, integrated versus shadow cost and the goals the region
promised, per month and scope (the region or one insurer), and small-cell suppression of what leaves billing.

Definitions (docs/billing.md, "Evaluating the experiment"):
- A request counts in the month (Europe/Amsterdam) it was received; cost, prestations, exclusions and inclusion
  count in the ledger period of their line (the month of the service date), exactly as the insurer feed does, so
  the figures reconcile with the feeds.
- Percentiles are nearest-rank: the value at rank ceil(p/100 × n) of the n values sorted ascending.
- Times are minutes (one decimal), money integer euro cents, shares fractions rounded to 4 decimals.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from services.billing_shadow.domain.ledger import CODE_ORDER, DELIMITED_DBC, Entry
from services.billing_shadow.domain.tariffs import period_of, round_cents
from shared.refusals import Refused

CHANNELS = ("referral", "phone", "walk-in")
URGENCIES = ("U0", "U1", "U2", "U3", "U4", "U5")
DISPOSITIONS = ("remote-advice", "home-visit", "onsite-consult", "community-nursing", "gp-office-hours",
                "hospital-referral", "rtp-placement", "ambulance")
CODES = tuple(CODE_ORDER)
EXCLUSION_REASONS = ("delimited-dbc", "no-dutch-insurer", "no-contract-tariff", "withdrawn")
HOSPITAL_DISPOSITIONS = frozenset({"hospital-referral"})
RETURN_WINDOW = timedelta(hours=72)
SMALL_CELL = range(1, 5)  # counts 1..4 are shown as "<5"
SUPPRESSED = "<5"
MAX_MONTHS = 60


@dataclass(frozen=True)
class Experiment:
    """The experiment under the innovation rule: runs from `start` for 3 years (`planned_end`, exclusive), may be
    extended to at most 5 years in total (`latest_end`); `end` is the extension decided, if any.
    `reference_price_cents` is an agreed reference price per request, per UZOVI (optional)."""

    start: date
    insurers: tuple[str, ...]
    end: date | None = None
    reference_price_cents: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.start.day != 1:
            raise ValueError("the experiment starts on the first day of a month")
        if self.end is not None and not (self.planned_end <= self.end <= self.latest_end):
            raise ValueError(f"an extension ends between {self.planned_end} and {self.latest_end} (at most 5 years)")

    @property
    def planned_end(self) -> date:
        return self.start.replace(year=self.start.year + 3)

    @property
    def latest_end(self) -> date:
        return self.start.replace(year=self.start.year + 5)

    def in_experiment(self, period: str) -> bool:
        """True if the month lies in [start, end or planned end)."""
        first = month_start(period)
        return self.start <= first < (self.end or self.planned_end)

    def as_json(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "planned_end": self.planned_end.isoformat(),
                "latest_end": self.latest_end.isoformat(), "end": (self.end or self.planned_end).isoformat(),
                "insurers": list(self.insurers), "reference_price_cents": dict(sorted(
                    self.reference_price_cents.items()))}


@dataclass(frozen=True)
class RequestRecord:
    """What the evaluation knows of one acute request (from triage-completed, contact-delivered and
    acute-request-closed); aware datetimes. `urgency`, `disposition` and `due_at` are of the latest triage,
    `triaged_at` is the first; `linked_contacts` counts later contacts linked to it instead of triaged again."""

    request_id: str
    pseudonym: str
    uzovi: str | None
    channel: str
    urgency: str
    disposition: str
    received_at: datetime
    triaged_at: datetime
    due_at: datetime | None
    retriaged: bool = False
    linked_contacts: int = 0
    first_contact_at: datetime | None = None
    closed_at: datetime | None = None


def month_start(period: str) -> date:
    """The first day of a "YYYY-MM" period; ValueError if it is not one."""
    try:
        year, month = (int(p) for p in period.split("-"))
        if len(period) != 7 or period[4] != "-":
            raise ValueError
        return date(year, month, 1)
    except ValueError as exc:
        raise Refused("not-a-month", f"{period!r} is not a month (YYYY-MM)", period=period) from exc


def months_between(first: str, last: str) -> list[str]:
    """Every "YYYY-MM" from `first` to `last` inclusive; ValueError if `first` is after `last` or the range is
    longer than MAX_MONTHS."""
    start, end = month_start(first), month_start(last)
    if start > end:
        raise Refused("from-after-to", f"from ({first}) is after to ({last})", first=first, last=last)
    count = (end.year - start.year) * 12 + end.month - start.month + 1
    if count > MAX_MONTHS:
        raise Refused("too-long", f"the range covers {count} months; at most {MAX_MONTHS}", count=str(count),
                      most=str(MAX_MONTHS))
    return [f"{start.year + (start.month - 1 + i) // 12:04d}-{(start.month - 1 + i) % 12 + 1:02d}"
            for i in range(count)]


def nearest_rank(values: Sequence[float], p: int) -> float | None:
    """The p-th percentile by nearest rank: sorted ascending, the value at rank ceil(p/100 × n); None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p * len(ordered) / 100)) - 1]


def _minutes(later: datetime, earlier: datetime) -> float:
    return round((later - earlier).total_seconds() / 60, 1)


def _share(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def _pct(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 2) if whole else None


def _per(cents: int, count: int) -> int | None:
    return round_cents(Decimal(cents) / count) if count else None


def _counts(values: Iterable[str], known: Sequence[str]) -> dict[str, int]:
    counted = Counter(values)
    return {**{k: counted.get(k, 0) for k in known}, **{k: v for k, v in sorted(counted.items()) if k not in known}}


def _priced(entries: Iterable[Entry]) -> list[Entry]:
    """Lines that are in a feed: a code, no exclusion, a contract price."""
    return [e for e in entries if e.values.code and e.values.exclusion_reason is None
            and e.values.unit_price_cents is not None]


def _cost(entries: Iterable[Entry]) -> tuple[int, int]:
    priced = _priced(entries)
    return (sum(e.quantity * (e.values.unit_price_cents or 0) for e in priced),
            sum(e.quantity * e.values.shadow_amount_cents for e in priced))


def figures(periods: Sequence[str], *, requests: Sequence[RequestRecord], entries: Sequence[Entry],
            effective: Sequence[Entry], experiment: Experiment, uzovi: str | None = None) -> dict[str, Any]:
    """The evaluation figures of a set of months (one month, or a range for the totals), exact (not suppressed).

    `requests` are all known requests (any month: a return visit may fall in the next month), `entries` all ledger
    lines from the experiment's start (credits included, for cost and the cumulative), `effective` the standing
    line of each request (for inclusion and exclusions). With `uzovi` only that insurer's requests and lines count.
    The `ratios` key holds each share's numerator and denominator, `samples` the sizes behind the percentiles.
    """
    months = set(periods)
    last = max(periods)
    mine = [r for r in requests if uzovi is None or r.uzovi == uzovi]
    in_months = [r for r in mine if period_of(r.received_at) in months]
    ledger = [e for e in entries if uzovi is None or e.values.uzovi == uzovi]
    month_entries = [e for e in ledger if e.values.period in months]
    standing = [e for e in effective if (uzovi is None or e.values.uzovi == uzovi) and e.values.period in months]

    prestations = {code: 0 for code in CODES}
    cost_by_code: dict[str, dict[str, Any]] = {}
    for code in CODES:
        of_code = [e for e in _priced(month_entries) if e.values.code == code]
        prestations[code] = sum(e.quantity for e in of_code)
        integrated, shadow = _cost(of_code)
        cost_by_code[code] = {"quantity": prestations[code], "integrated_cents": integrated, "shadow_cents": shadow,
                              "integrated_per_prestation_cents": _per(integrated, prestations[code]),
                              "shadow_per_prestation_cents": _per(shadow, prestations[code])}
    billed = sum(prestations.values())
    integrated, shadow = _cost(month_entries)
    cum_integrated, cum_shadow = _cost(e for e in ledger if experiment.start <= month_start(e.values.period)
                                       and e.values.period <= last)
    reference = None
    priced = _priced(month_entries)
    if priced and all(e.values.uzovi in experiment.reference_price_cents for e in priced):
        reference = sum(e.quantity * experiment.reference_price_cents[str(e.values.uzovi)] for e in priced)

    # Inclusion: of the eligible (insured, not delimited to the hospital's DBC) standing lines, the share billed.
    eligible = [e for e in standing if e.values.uzovi and e.values.exclusion_reason != DELIMITED_DBC]
    included = [e for e in eligible if e.values.exclusion_reason is None]

    by_patient: dict[str, list[datetime]] = {}
    for r in requests:
        by_patient.setdefault(r.pseudonym, []).append(r.received_at)
    closed = [r for r in in_months if r.closed_at is not None]
    returned = [r for r in closed if any(r.closed_at < t <= r.closed_at + RETURN_WINDOW  # type: ignore[operator]
                                         for t in by_patient[r.pseudonym])]
    linked = sum(r.linked_contacts for r in in_months)
    ratios: dict[str, tuple[int, int]] = {
        "outside_hospital_share": (sum(1 for r in in_months if r.disposition not in HOSPITAL_DISPOSITIONS),
                                   len(in_months)),
        "linked_contact_share": (linked, len(in_months) + linked),
        "retriage_share": (sum(1 for r in in_months if r.retriaged), len(in_months)),
        "recontact_72h_share": (len(returned), len(closed)),
        "inclusion_rate": (len(included), len(eligible)),
    }
    for urgency in URGENCIES:
        reached = [r for r in in_months if r.urgency == urgency and r.first_contact_at is not None
                   and r.due_at is not None]
        ratios[f"target_met_share.{urgency}"] = (sum(1 for r in reached if r.first_contact_at <= r.due_at),  # type: ignore[operator]
                                                 len(reached))
    to_triage = [_minutes(r.triaged_at, r.received_at) for r in in_months]
    to_contact = [_minutes(r.first_contact_at, r.received_at) for r in in_months if r.first_contact_at]
    measures: dict[str, Any] = {name: _share(*ratio) for name, ratio in ratios.items() if "." not in name}
    measures["target_met_share"] = {u: _share(*ratios[f"target_met_share.{u}"]) for u in URGENCIES}
    measures["minutes_to_triage"] = {"p50": nearest_rank(to_triage, 50), "p90": nearest_rank(to_triage, 90)}
    measures["minutes_to_first_contact"] = {"p50": nearest_rank(to_contact, 50), "p90": nearest_rank(to_contact, 90)}
    return {
        "requests": len(in_months),
        "by_channel": _counts((r.channel for r in in_months), CHANNELS),
        "by_urgency": _counts((r.urgency for r in in_months), URGENCIES),
        "by_disposition": _counts((r.disposition for r in in_months), DISPOSITIONS),
        "linked_contacts": linked,
        "prestations": prestations,
        "exclusions": _counts((str(e.values.exclusion_reason) for e in standing if e.values.exclusion_reason),
                              EXCLUSION_REASONS),
        "integrated_cents": integrated, "shadow_cents": shadow, "difference_cents": integrated - shadow,
        "difference_pct": _pct(integrated - shadow, shadow),
        "integrated_per_prestation_cents": _per(integrated, billed),
        "shadow_per_prestation_cents": _per(shadow, billed),
        "cost_by_code": cost_by_code,
        "reference_cents": reference,
        "reference_difference_cents": None if reference is None else integrated - reference,
        "cumulative": {"integrated_cents": cum_integrated, "shadow_cents": cum_shadow,
                       "difference_cents": cum_integrated - cum_shadow,
                       "difference_pct": _pct(cum_integrated - cum_shadow, cum_shadow)},
        "measures": measures,
        "ratios": {name: {"numerator": n, "denominator": d} for name, (n, d) in ratios.items()},
        "samples": {"minutes_to_triage": len(to_triage), "minutes_to_first_contact": len(to_contact)},
    }


def evaluation(periods: Sequence[str], *, requests: Sequence[RequestRecord], entries: Sequence[Entry],
               effective: Sequence[Entry], experiment: Experiment, uzovi: str | None = None) -> dict[str, Any]:
    """The document of SPEC §12: the experiment, the scope, one entry per month and totals over the range."""
    kwargs: dict[str, Any] = {"requests": requests, "entries": entries, "effective": effective,
                              "experiment": experiment, "uzovi": uzovi}
    months = [{"period": p, "in_experiment": experiment.in_experiment(p), **figures([p], **kwargs)} for p in periods]
    return {"experiment": experiment.as_json(), "scope": uzovi or "region", "from": periods[0], "to": periods[-1],
            "suppressed": False, "months": months, "totals": figures(periods, **kwargs)}


def _small(count: Any) -> bool:
    return isinstance(count, int) and not isinstance(count, bool) and count in SMALL_CELL


def _mask(count: int) -> int | str:
    return SUPPRESSED if _small(count) else count


def suppress_figures(block: dict[str, Any]) -> dict[str, Any]:
    """Small-cell protection of one month or the totals: counts 1..4 become "<5"; a share whose numerator or
    denominator is 1..4, a percentile over 1..4 values and an amount (and the running total) over 1..4 prestations
    become null."""
    out = dict(block)
    for key in ("requests", "linked_contacts"):
        out[key] = _mask(block[key])
    for key in ("by_channel", "by_urgency", "by_disposition", "prestations", "exclusions"):
        out[key] = {k: _mask(v) for k, v in block[key].items()}
    out["cost_by_code"] = {code: ({k: None for k in cost} | {"quantity": SUPPRESSED}) if _small(cost["quantity"])
                           else cost for code, cost in block["cost_by_code"].items()}
    if _small(sum(block["prestations"].values())):
        for key in ("integrated_cents", "shadow_cents", "difference_cents", "difference_pct",
                    "integrated_per_prestation_cents", "shadow_per_prestation_cents", "reference_cents",
                    "reference_difference_cents"):
            out[key] = None
        # The running total would give the month's amount away as the difference with the month before.
        out["cumulative"] = {k: None for k in block["cumulative"]}
    hidden = {name for name, r in block["ratios"].items() if _small(r["numerator"]) or _small(r["denominator"])}
    measures = dict(block["measures"])
    for name in hidden:
        if "." in name:
            measures[name.split(".")[0]] = {**measures[name.split(".")[0]], name.split(".")[1]: None}
        else:
            measures[name] = None
    for name, size in block["samples"].items():
        if _small(size):
            measures[name] = {"p50": None, "p90": None}
    out["measures"] = measures
    out["ratios"] = {name: {k: _mask(v) for k, v in r.items()} for name, r in block["ratios"].items()}
    out["samples"] = {name: _mask(size) for name, size in block["samples"].items()}
    return out


def suppress(document: dict[str, Any]) -> dict[str, Any]:
    """The evaluation document as an insurer or evaluator receives it (SPEC §12)."""
    return {**document, "suppressed": True,
            "months": [suppress_figures(m) for m in document["months"]], "totals": suppress_figures(document["totals"])}


def flatten(block: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """One CSV row: nested keys joined with "." (measures.target_met_share.U3)."""
    row: dict[str, Any] = {}
    for key, value in block.items():
        if isinstance(value, dict):
            row.update(flatten(value, f"{prefix}{key}."))
        else:
            row[f"{prefix}{key}"] = value
    return row
