"""The prestation ledger's rules (pure): pricing a derivation, when a line may still change, and what an
insurer's feed adds up to. After a line locks it is never changed: a correction is a credit plus a rebill."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from services.billing_shadow.domain.derivation import Derivation
from services.billing_shadow.domain.tariffs import Tariff, period_of, select_tariff, service_day

CODE_ORDER = {"ADV": 0, "VIS": 1, "CON": 2}
NO_CONTRACT_TARIFF = "no-contract-tariff"
DELIMITED_DBC = "delimited-dbc"


@dataclass(frozen=True)
class LineValues:
    """What a ledger line says, apart from its bookkeeping (kind, quantity, who, when)."""

    code: str | None
    exclusion_reason: str | None
    uzovi: str | None
    period: str
    service_date: date
    unit_price_cents: int | None
    tariff_source: str | None
    shadow_amount_cents: int
    explanation: str


@dataclass(frozen=True)
class Entry:
    """A ledger line as the feed sees it: original and rebill lines count +1, credits −1."""

    acute_request_id: str
    kind: str
    quantity: int
    values: LineValues


def price(derivation: Derivation, *, uzovi: str | None, fallback_moment: datetime, tariffs: Iterable[Tariff],
          shadow_amount_cents: int) -> LineValues:
    """Price a derivation with the contract tariff valid on its service day (Europe/Amsterdam)."""
    moment = derivation.service_date or fallback_moment
    day = service_day(moment)
    unit_price, source, exclusion = None, None, derivation.exclusion_reason
    explanation = derivation.rule
    if derivation.code and exclusion is None:
        tariff = select_tariff(tariffs, key=str(uzovi), code=derivation.code, on=day)
        if tariff is None:
            exclusion = NO_CONTRACT_TARIFF
            explanation += f"; no contract tariff for UZOVI {uzovi} {derivation.code} on {day}"
        else:
            unit_price, source = tariff.price_cents, tariff.source
            explanation += f"; priced {tariff.price_cents} cents ({tariff.source}, valid from {tariff.valid_from})"
    return LineValues(code=derivation.code, exclusion_reason=exclusion, uzovi=uzovi, period=period_of(moment),
                      service_date=day, unit_price_cents=unit_price, tariff_source=source,
                      shadow_amount_cents=shadow_amount_cents, explanation=explanation)


def is_locked(locks_at: datetime | None, now: datetime) -> bool:
    return locks_at is not None and now >= locks_at


def credit_of(values: LineValues, reason: str) -> LineValues:
    """The credit line repeats what it cancels (its period and insurer), with the reason."""
    return replace(values, explanation=f"credit: {reason}")


def aggregate(uzovi: str, period: str, entries: Iterable[Entry], effective: Iterable[Entry]) -> dict[str, Any]:
    """The feed of one insurer and month: net P × Q per prestation and price, shadow amounts, inclusion.

    `entries` are all ledger lines of the month (credits included); `effective` are the current lines of the
    month's requests, which decide inclusion and exclusion counts. No patient data goes in.
    """
    sums: dict[tuple[str, int], tuple[int, int]] = {}
    for entry in entries:
        v = entry.values
        if v.code and v.exclusion_reason is None and v.unit_price_cents is not None:
            quantity, shadow = sums.get((v.code, v.unit_price_cents), (0, 0))
            sums[(v.code, v.unit_price_cents)] = (quantity + entry.quantity,
                                                   shadow + entry.quantity * v.shadow_amount_cents)
    standing: dict[str | None, int] = defaultdict(int)
    for entry in effective:
        standing[entry.values.exclusion_reason] += 1
    return feed_document(uzovi, period, sums=sums, standing=standing)


def feed_document(uzovi: str, period: str, *, sums: Mapping[tuple[str, int], tuple[int, int]],
                  standing: Mapping[str | None, int]) -> dict[str, Any]:
    """The feed from what `aggregate` adds up, as a database can add it up too: `sums` maps (code, unit price in
    cents) of the month's priced lines without exclusion to (net quantity, net shadow amount in cents); `standing`
    maps each exclusion reason (None: included) to the number of the month's requests whose current line has it.
    Delimited requests (an open DBC, a hospital referral) are not eligible for inclusion."""
    lines = []
    for (code, unit_price), (quantity, shadow) in sorted(sums.items(), key=lambda g: (CODE_ORDER[g[0][0]], g[0][1])):
        if quantity or shadow:
            lines.append({"code": code, "quantity": quantity, "unit_price_cents": unit_price,
                          "amount_cents": quantity * unit_price, "shadow_amount_cents": shadow})
    eligible = sum(count for reason, count in standing.items() if reason != DELIMITED_DBC)
    included = standing.get(None, 0)
    exclusions = {reason: count for reason, count in standing.items() if reason and count}
    return {"uzovi": uzovi, "period": period, "lines": lines,
            "totals": {"quantity": sum(ln["quantity"] for ln in lines),
                       "amount_cents": sum(ln["amount_cents"] for ln in lines),
                       "shadow_amount_cents": sum(ln["shadow_amount_cents"] for ln in lines)},
            "inclusion_rate": round(included / eligible, 4) if eligible else None,
            "exclusions": dict(sorted(exclusions.items()))}
