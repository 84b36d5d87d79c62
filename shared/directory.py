"""The region's directory as plain data: which follow-up actions each care provider gives and in which hours, the
region's defaults, and the FHIR HealthcareService in which the front door publishes one organisation's entry
(directory-changed). No infrastructure: the front door and coordination both read it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared import opening_hours
from shared.region import ORGANISATIONS, Organisation, care_provider

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
EVERY_DAY = (*WEEKDAYS, "sat", "sun")
# FHIR time has no 24:00: an entry open until midnight ends at the day's last second, which reads back as 24:00.
END_OF_DAY = "23:59:59"


class NotAnEntry(ValueError):
    """A directory-changed value that is not an organisation's entry this region can read."""


@dataclass(frozen=True)
class Listing:
    """One care provider's entry: `token` "system|value", follow-up action codes (SPEC §6) and hours
    "HH:MM-HH:MM" in Europe/Amsterdam, optionally on working days only (shared/opening_hours)."""

    token: str
    name: str
    label: str  # e.g. "URA 90000020"
    kind: str
    dispositions: tuple[str, ...]
    hours: str
    weekdays_only: bool

    def provides(self, disposition: str | None) -> bool:
        return disposition in self.dispositions

    def open_at(self, moment: datetime) -> bool:
        """Whether the organisation is open at `moment` (any timezone), as shared/opening_hours counts it."""
        return opening_hours.open_at(self.hours, self.weekdays_only, moment)


def default(org: Organisation) -> Listing:
    """The region's static entry of `org` (shared/region.py follow-up actions, demo opening hours)."""
    hours, weekdays_only = opening_hours.hours_of(org)
    return Listing(org.token, org.name, org.label, org.kind, org.dispositions, hours, weekdays_only)


def overlay(received: Iterable[Listing]) -> list[Listing]:
    """The current directory: every care provider of the region in the region's order, its received entry where
    one was received, else its default (an existing region that never heard of an organisation keeps routing)."""
    by_token = {listing.token: listing for listing in received}
    return [by_token.get(org.token) or default(org) for org in ORGANISATIONS if org.kind != "insurer"]


def _available_time(hours: str, weekdays_only: bool) -> list[dict[str, Any]]:
    match = opening_hours.HOURS.match(hours)
    if match is None:
        raise NotAnEntry(f"hours {hours!r} are not HH:MM-HH:MM")
    days = list(WEEKDAYS if weekdays_only else EVERY_DAY)
    start, end = f"{match[1]}:{match[2]}:00", f"{match[3]}:{match[4]}:00"
    if start == "00:00:00" and end == "24:00:00":
        return [{"daysOfWeek": days, "allDay": True}]
    if end == "24:00:00":
        end = END_OF_DAY
    if start < end:
        return [{"daysOfWeek": days, "availableStartTime": start, "availableEndTime": end}]
    # Past midnight (e.g. 17:00-08:00): the evening and the early morning of each day, as open_at counts it.
    return [{"daysOfWeek": days, "availableStartTime": start, "availableEndTime": END_OF_DAY},
            {"daysOfWeek": days, "availableStartTime": "00:00:00", "availableEndTime": end}]


def to_fhir(listing: Listing, *, version: int, changed_at: datetime, codesystem_base: str,
            displays: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The entry as a FHIR R4 HealthcareService: `providedBy.identifier` the organisation, `meta.versionId` the
    entry's version (it only grows), `type` one coding per follow-up action (`<codesystem_base>/disposition`,
    absent when it provides none), `availableTime` the hours (allDay for always; an overnight range as an evening
    and an early-morning part; the end of the day as 23:59:59), `daysOfWeek` mon-fri on working days only.
    Raises NotAnEntry for hours that are not HH:MM-HH:MM."""
    org = care_provider(listing.token)
    if org is None:
        raise NotAnEntry(f"{listing.token} is not a care provider of the region")
    resource: dict[str, Any] = {
        "resourceType": "HealthcareService", "id": listing.label.lower().replace(" ", "-"),
        "meta": {"versionId": str(version),
                 "lastUpdated": (changed_at if changed_at.tzinfo else changed_at.replace(tzinfo=UTC))
                 .astimezone(UTC).isoformat()},
        "active": True,
        "providedBy": {"identifier": {"system": org.system, "value": org.value}, "display": listing.name},
        "name": listing.name,
        "availableTime": _available_time(listing.hours, listing.weekdays_only)}
    if listing.dispositions:
        resource["type"] = [{"coding": [{"system": f"{codesystem_base}/disposition", "code": code,
                                         **({"display": displays[code]} if displays and code in displays else {})}]}
                            for code in listing.dispositions]
    return resource


def _hours(available: list[dict[str, Any]]) -> tuple[str, bool]:
    if not available or not all(isinstance(a, dict) for a in available):
        raise NotAnEntry("availableTime is missing")
    days = {tuple(a.get("daysOfWeek") or ()) for a in available}
    if days not in ({WEEKDAYS}, {EVERY_DAY}):
        raise NotAnEntry("availableTime.daysOfWeek is every day or mon-fri on each part")
    weekdays_only = days == {WEEKDAYS}

    def hhmm(value: Any) -> str:
        text = str(value or "")
        return "24:00" if text == END_OF_DAY else text[:5]

    if len(available) == 1 and available[0].get("allDay") is True:
        return "00:00-24:00", weekdays_only
    if len(available) == 1:
        hours = f"{hhmm(available[0].get('availableStartTime'))}-{hhmm(available[0].get('availableEndTime'))}"
    elif len(available) == 2:
        evening, morning = sorted(available, key=lambda a: str(a.get("availableStartTime")), reverse=True)
        if evening.get("availableEndTime") != END_OF_DAY or morning.get("availableStartTime") != "00:00:00":
            raise NotAnEntry("two availableTime parts are an evening to 23:59:59 and a morning from 00:00:00")
        hours = f"{hhmm(evening.get('availableStartTime'))}-{hhmm(morning.get('availableEndTime'))}"
    else:
        raise NotAnEntry("availableTime has one part, or two for hours past midnight")
    if not opening_hours.HOURS.match(hours):
        raise NotAnEntry(f"availableTime does not read as hours HH:MM-HH:MM ({hours})")
    return hours, weekdays_only


def from_fhir(resource: Any, *, codesystem_base: str) -> tuple[Listing, int]:
    """The entry and its version from a HealthcareService as `to_fhir` writes it; NotAnEntry when it is not one
    (another resource, an organisation outside the region, no version, a follow-up action of another system)."""
    if not isinstance(resource, dict) or resource.get("resourceType") != "HealthcareService":
        raise NotAnEntry("not a HealthcareService")
    ident = (resource.get("providedBy") or {}).get("identifier") or {}
    org = care_provider(f"{ident.get('system')}|{ident.get('value')}")
    if org is None:
        raise NotAnEntry("providedBy is not a care provider of the region")
    version = str((resource.get("meta") or {}).get("versionId") or "")
    if not version.isdigit():
        raise NotAnEntry("meta.versionId is missing or not a number")
    system = f"{codesystem_base}/disposition"
    codes = []
    for concept in resource.get("type") or []:
        coding = next((c for c in (concept or {}).get("coding") or [] if c.get("system") == system), None)
        if coding is None or not coding.get("code"):
            raise NotAnEntry(f"type has a follow-up action without a {system} code")
        codes.append(str(coding["code"]))
    hours, weekdays_only = _hours(resource.get("availableTime") or [])
    return Listing(org.token, org.name, org.label, org.kind, tuple(codes), hours, weekdays_only), int(version)
