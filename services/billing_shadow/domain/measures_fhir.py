"""The evaluation measures as FHIR R4 resources (pure): a `Measure` describing each measure (its numerator and
denominator) and, per month and measure, a summary `MeasureReport` with the counts and the score, so evaluators
can load them into their own tools. Suppressed counts ("<5") and withheld scores (null) are left out and marked
with the data-absent-reason extension `masked`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from services.billing_shadow.domain.evaluation import URGENCIES, month_start

CANONICAL = "https://regiozorg.example/fhir/Measure/"
POPULATION = "http://terminology.hl7.org/CodeSystem/measure-population"
SCORING = "http://terminology.hl7.org/CodeSystem/measure-scoring"
DATA_ABSENT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
UZOVI_SYSTEM = "http://fhir.nl/fhir/NamingSystem/uzovi"
UCUM = "http://unitsofmeasure.org"


@dataclass(frozen=True)
class MeasureDefinition:
    """One measure: its id (also the key in the evaluation document), what it means, how it is scored."""

    id: str
    key: str
    title: str
    description: str
    numerator: str
    denominator: str
    improvement: str  # increase | decrease
    scoring: str = "proportion"  # proportion | continuous-variable


MEASURES: tuple[MeasureDefinition, ...] = (
    MeasureDefinition("outside-hospital-share", "outside_hospital_share", "Handled outside the hospital",
                      "Share of acute requests not referred to the hospital (medical-specialist care).",
                      "acute requests received in the month whose latest triage is not hospital-referral",
                      "acute requests received in the month", "increase"),
    MeasureDefinition("linked-contact-share", "linked_contact_share", "Double triage avoided",
                      "Share of incoming contacts linked to an open request instead of triaged again.",
                      "contacts linked to an open request of the month", "acute requests plus linked contacts",
                      "increase"),
    MeasureDefinition("retriage-share", "retriage_share", "Explicit re-triage",
                      "Share of acute requests a nurse deliberately triaged again, with a reason.",
                      "acute requests re-triaged", "acute requests received in the month", "decrease"),
    MeasureDefinition("target-met-share", "target_met_share", "Urgency target met",
                      "Per urgency, share of requests whose first delivered contact started by the target time.",
                      "requests whose first delivered contact started at or before the due time",
                      "requests of the urgency with a delivered contact and a due time", "increase"),
    MeasureDefinition("minutes-to-triage", "minutes_to_triage", "Minutes from receipt to triage",
                      "Median (p50) and 90th percentile (p90, nearest rank) of minutes from receipt to first triage.",
                      "", "acute requests received in the month", "decrease", "continuous-variable"),
    MeasureDefinition("minutes-to-first-contact", "minutes_to_first_contact", "Minutes from receipt to first contact",
                      "Median (p50) and 90th percentile (p90, nearest rank) of minutes from receipt to the first "
                      "delivered contact.", "", "acute requests with a delivered contact", "decrease",
                      "continuous-variable"),
    MeasureDefinition("recontact-72h-share", "recontact_72h_share", "New acute request within 72 hours",
                      "Share of closed requests whose patient made a new acute request within 72 hours of closing.",
                      "closed requests followed by a new request of the same patient (pseudonym) within 72 h",
                      "closed requests received in the month", "decrease"),
    MeasureDefinition("inclusion-rate", "inclusion_rate", "Inclusion",
                      "Share of eligible closed requests (insured, not delimited to a DBC) that received an "
                      "integrated prestation; target at least 95 %.",
                      "eligible requests with an integrated prestation",
                      "closed requests with an insurer, not delimited-dbc", "increase"),
)
BY_ID = {m.id: m for m in MEASURES}


def measure_resource(m: MeasureDefinition) -> dict[str, Any]:
    """The FHIR R4 Measure describing `m`."""
    populations = [{"code": {"coding": [{"system": POPULATION, "code": "measure-population" if
                                         m.scoring == "continuous-variable" else "denominator"}]},
                    "description": m.denominator, "criteria": {"language": "text/plain", "expression": m.denominator}}]
    if m.numerator:
        populations.append({"code": {"coding": [{"system": POPULATION, "code": "numerator"}]},
                            "description": m.numerator,
                            "criteria": {"language": "text/plain", "expression": m.numerator}})
    return {"resourceType": "Measure", "id": m.id, "url": f"{CANONICAL}{m.id}", "name": m.id.replace("-", "_"),
            "title": m.title, "status": "active", "description": m.description,
            "scoring": {"coding": [{"system": SCORING, "code": m.scoring}]},
            "improvementNotation": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                                          "measure-improvement-notation", "code": m.improvement}]},
            "group": [{"population": populations}]}


def _count(code: str, value: Any) -> dict[str, Any]:
    population: dict[str, Any] = {"code": {"coding": [{"system": POPULATION, "code": code}]}}
    if isinstance(value, int):
        population["count"] = value
    else:
        population["extension"] = [{"url": DATA_ABSENT, "valueCode": "masked"}]
    return population


def _score(group: dict[str, Any], value: float | None, unit: str) -> dict[str, Any]:
    if value is None:
        group["extension"] = [{"url": DATA_ABSENT, "valueCode": "masked"}]
    else:
        group["measureScore"] = {"value": value, "unit": unit, "system": UCUM, "code": unit}
    return group


def measure_report(m: MeasureDefinition, block: dict[str, Any], *, period: str, scope: str) -> dict[str, Any]:
    """The summary MeasureReport of measure `m` for one month's figures `block` (exact or suppressed)."""
    start = month_start(period)
    end = date(start.year + start.month // 12, start.month % 12 + 1, 1) - timedelta(days=1)
    score = block["measures"][m.key]
    groups: list[dict[str, Any]] = []
    if m.key == "target_met_share":
        for urgency in URGENCIES:
            ratio = block["ratios"][f"target_met_share.{urgency}"]
            groups.append(_score({"code": {"text": urgency}, "population": [
                _count("numerator", ratio["numerator"]), _count("denominator", ratio["denominator"])]},
                score[urgency], "1"))
    elif m.scoring == "continuous-variable":
        for percentile in ("p50", "p90"):
            groups.append(_score({"code": {"text": percentile},
                                  "population": [_count("measure-population", block["samples"][m.key])]},
                                 score[percentile], "min"))
    else:
        ratio = block["ratios"][m.key]
        groups.append(_score({"population": [_count("numerator", ratio["numerator"]),
                                             _count("denominator", ratio["denominator"])]}, score, "1"))
    report: dict[str, Any] = {
        "resourceType": "MeasureReport", "id": f"{m.id}-{scope}-{period}", "status": "complete", "type": "summary",
        "measure": f"{CANONICAL}{m.id}",
        "period": {"start": start.isoformat(), "end": end.isoformat()},
        "reporter": {"display": "Spoedzorg Regio Demo (shadow billing)"},
        "group": groups}
    if scope != "region":
        report["subject"] = {"identifier": {"system": UZOVI_SYSTEM, "value": scope}}
    return report


def measure_reports(document: dict[str, Any]) -> list[dict[str, Any]]:
    """One MeasureReport per measure and month of an evaluation document (SPEC §12)."""
    return [measure_report(m, month, period=month["period"], scope=document["scope"])
            for month in document["months"] for m in MEASURES]
