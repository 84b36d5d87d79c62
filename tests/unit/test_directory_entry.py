"""An organisation's directory entry as FHIR (HealthcareService) reads back as the same entry, is valid FHIR R4,
and says the opening hours in availableTime; what is not an entry is refused; the directory is the defaults overlaid
with what was received."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.directory import Listing, NotAnEntry, default, from_fhir, overlay, to_fhir
from shared.fhir import validate_resource
from shared.region import ORGANISATIONS
from shared.settings import CODESYSTEM_BASE

LINDE = ORGANISATIONS[1]
CHANGED = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def linde(hours: str, weekdays_only: bool, dispositions: tuple[str, ...] = ("home-visit",)) -> Listing:
    return Listing(LINDE.token, LINDE.name, LINDE.label, LINDE.kind, dispositions, hours, weekdays_only)


@pytest.mark.parametrize(("hours", "weekdays_only", "parts"), [
    ("00:00-24:00", False, [{"allDay": True}]),
    ("08:00-17:00", True, [{"availableStartTime": "08:00:00", "availableEndTime": "17:00:00"}]),
    ("08:00-24:00", False, [{"availableStartTime": "08:00:00", "availableEndTime": "23:59:59"}]),
    ("17:00-08:00", True, [{"availableStartTime": "17:00:00", "availableEndTime": "23:59:59"},
                           {"availableStartTime": "00:00:00", "availableEndTime": "08:00:00"}]),
])
def test_hours_travel_as_available_time_and_read_back_the_same(hours: str, weekdays_only: bool,
                                                               parts: list[dict[str, object]]) -> None:
    listing = linde(hours, weekdays_only, ("gp-office-hours", "home-visit"))
    resource = to_fhir(listing, version=42, changed_at=CHANGED, codesystem_base=CODESYSTEM_BASE,
                       displays={"home-visit": "Visite aan huis"})
    assert validate_resource(resource) == []
    days = ["mon", "tue", "wed", "thu", "fri"] + ([] if weekdays_only else ["sat", "sun"])
    assert resource["availableTime"] == [{"daysOfWeek": days, **part} for part in parts]
    assert resource["providedBy"]["identifier"] == {"system": LINDE.system, "value": LINDE.value}
    assert resource["type"][1]["coding"][0] == {"system": f"{CODESYSTEM_BASE}/disposition", "code": "home-visit",
                                                "display": "Visite aan huis"}
    assert from_fhir(resource, codesystem_base=CODESYSTEM_BASE) == (listing, 42)


def test_an_organisation_that_provides_nothing_has_no_type_and_reads_back_empty() -> None:
    resource = to_fhir(linde("08:00-17:00", True, ()), version=2, changed_at=CHANGED, codesystem_base=CODESYSTEM_BASE)
    assert "type" not in resource and validate_resource(resource) == []
    assert from_fhir(resource, codesystem_base=CODESYSTEM_BASE)[0].dispositions == ()


@pytest.mark.parametrize("change", [
    {"resourceType": "Organization"},
    {"providedBy": {"identifier": {"system": "http://fhir.nl/fhir/NamingSystem/uzovi", "value": "9001"}}},
    {"meta": {"versionId": "v2"}},
    {"type": [{"coding": [{"system": "http://example.org/other", "code": "home-visit"}]}]},
    {"availableTime": []},
    {"availableTime": [{"daysOfWeek": ["sat"], "allDay": True}]},
    {"availableTime": [{"daysOfWeek": ["mon"], "allDay": True}, {"daysOfWeek": ["mon"], "allDay": True},
                       {"daysOfWeek": ["mon"], "allDay": True}]},
])
def test_what_is_not_an_entry_of_the_region_is_refused(change: dict[str, object]) -> None:
    resource = {**to_fhir(linde("08:00-17:00", True), version=2, changed_at=CHANGED,
                          codesystem_base=CODESYSTEM_BASE), **change}
    with pytest.raises(NotAnEntry):
        from_fhir(resource, codesystem_base=CODESYSTEM_BASE)


def test_the_directory_is_the_defaults_overlaid_with_what_was_received() -> None:
    changed = linde("17:00-08:00", False, ("remote-advice",))
    current = overlay([changed])
    assert [o.token for o in current] == [o.token for o in ORGANISATIONS if o.kind != "insurer"]
    assert current[1] == changed
    assert current[2] == default(ORGANISATIONS[2]) and current[2].hours == "08:00-17:00"
    assert not current[1].provides("home-visit") and current[2].provides("home-visit")
