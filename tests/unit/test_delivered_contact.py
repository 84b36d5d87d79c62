"""When a delivered contact can have taken place: after the request came in, ending after it starts, not in the
future, with the configured tolerance for clocks that differ."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from services.coordination.domain.contact import RECEIVED_AT_EXTENSION, execution_period, received_at

# The README's walk-through as it once was: a referral received on 30 November, a home visit on 22 November.
RECEIVED = datetime.fromisoformat("2026-11-30T20:55:00+01:00")
NOW = datetime.fromisoformat("2026-11-30T22:00:00+01:00")
TOLERANCE = timedelta(seconds=120)


def locations(period: Any) -> set[str]:
    checked = execution_period(period, received=RECEIVED, now=NOW, tolerance=TOLERANCE)
    return {location for issue in checked.issues for location in issue.expression}


@pytest.mark.parametrize(("period", "expected"), [
    ({"start": "2026-11-22T21:10:00+01:00", "end": "2026-11-22T21:40:00+01:00"}, {"Task.executionPeriod.start"}),
    ({"start": "2026-11-30T21:40:00+01:00", "end": "2026-11-30T21:10:00+01:00"}, {"Task.executionPeriod.end"}),
    ({"start": "2026-12-01T09:00:00+01:00"}, {"Task.executionPeriod.start"}),
    ({"start": "2026-11-30T21:10:00+01:00", "end": "2026-11-30T23:00:00+01:00"}, {"Task.executionPeriod.end"}),
    ({"start": "2026-11-30T20:50:00+01:00"}, {"Task.executionPeriod.start"}),  # five minutes before receipt
    ({"start": "2026-11-30T21:10:00"}, {"Task.executionPeriod.start"}),  # no time zone
    ({"start": "2026-11-30", "end": "later"}, {"Task.executionPeriod.start", "Task.executionPeriod.end"}),
    ({"start": 20261130}, {"Task.executionPeriod.start"}),
], ids=["before-receipt", "ends-before-start", "starts-in-future", "ends-in-future", "beyond-tolerance",
        "no-zone", "not-datetimes", "not-a-string"])
def test_an_implausible_contact_is_refused_at_the_moment_that_is_wrong(period: dict[str, Any],
                                                                      expected: set[str]) -> None:
    assert locations(period) == expected


@pytest.mark.parametrize("period", [
    {"start": "2026-11-30T21:10:00+01:00", "end": "2026-11-30T21:40:00+01:00"},
    {"start": "2026-11-30T19:54:00Z"},  # a minute before receipt by a clock that runs behind: within tolerance
    {"start": "2026-11-30T21:10:00+01:00", "end": "2026-11-30T22:01:30+01:00"},  # a partner's clock runs ahead
    {"start": "2026-11-30T21:10:00+01:00", "end": "2026-11-30T21:10:00+01:00"},
])
def test_a_contact_between_receipt_and_now_is_accepted_with_its_moments(period: dict[str, Any]) -> None:
    checked = execution_period(period, received=RECEIVED, now=NOW, tolerance=TOLERANCE)
    assert checked.issues == []
    assert checked.start == datetime.fromisoformat(period["start"])
    assert checked.end == (datetime.fromisoformat(period["end"]) if "end" in period else None)


def test_without_a_period_the_contact_starts_now_and_without_receipt_only_the_clock_bounds_it() -> None:
    assert execution_period(None, received=RECEIVED, now=NOW, tolerance=TOLERANCE).start == NOW
    early = {"start": "2026-11-22T21:10:00+01:00"}
    assert execution_period(early, received=None, now=NOW, tolerance=TOLERANCE).issues == []


def test_the_tolerance_is_what_the_setting_says() -> None:
    five_minutes_early = {"start": "2026-11-30T20:50:00+01:00"}
    assert execution_period(five_minutes_early, received=RECEIVED, now=NOW,
                            tolerance=timedelta(minutes=10)).issues == []
    assert execution_period({"start": "2026-11-30T20:54:59+01:00"}, received=RECEIVED, now=NOW,
                            tolerance=timedelta(0)).issues != []


def test_receipt_time_comes_from_the_routing_orders_extension() -> None:
    order = {"resourceType": "ServiceRequest", "extension": [
        {"url": "https://regiozorg.example/fhir/StructureDefinition/intake-channel", "valueCode": "referral"},
        {"url": RECEIVED_AT_EXTENSION, "valueDateTime": "2026-11-30T19:55:00+00:00"}]}
    assert received_at(order) == RECEIVED
    assert received_at({"resourceType": "ServiceRequest"}) is None
    assert received_at({"extension": [{"url": RECEIVED_AT_EXTENSION, "valueDateTime": "yesterday"}]}) is None
