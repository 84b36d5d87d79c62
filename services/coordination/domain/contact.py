"""When a delivered contact took place: the Task's executionPeriod, read and held to what can have happened."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.fhir import Issue

RECEIVED_AT_EXTENSION = "https://regiozorg.example/fhir/StructureDefinition/received-at"
START, END = "Task.executionPeriod.start", "Task.executionPeriod.end"


@dataclass(frozen=True)
class Period:
    """The executionPeriod as moments (start defaults to the moment of the change), or the issues that refuse it."""

    start: datetime
    end: datetime | None
    issues: list[Issue] = field(default_factory=list)


def received_at(order: dict[str, Any]) -> datetime | None:
    """When the front door received the acute request, from the routing order (triage-completed) it sent; None
    when the order does not say (then only the other rules apply)."""
    for extension in order.get("extension") or []:
        if isinstance(extension, dict) and extension.get("url") == RECEIVED_AT_EXTENSION:
            try:
                moment = datetime.fromisoformat(str(extension.get("valueDateTime")))
            except ValueError:
                return None
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # triage writes UTC
    return None


def execution_period(period: Any, *, received: datetime | None, now: datetime, tolerance: timedelta) -> Period:
    """Read `Task.executionPeriod` (start and optional end, ISO 8601 dateTimes with a zone) and check that the
    contact can have happened as recorded: it starts no earlier than the request was received, ends no earlier than
    it starts, and neither lies in the future. Clocks of partners and of the front door differ a little, so a
    start up to `tolerance` before receipt and moments up to `tolerance` after `now` are accepted.

    Without a period the contact is taken to start at `now`. Issues are located at Task.executionPeriod.start or
    .end, whichever moment is wrong; an unreadable moment at the moment itself.
    """
    period = period if isinstance(period, dict) else {}
    start, start_issue = _moment(period.get("start"), START)
    end, end_issue = _moment(period.get("end"), END)
    issues = [issue for issue in (start_issue, end_issue) if issue is not None]
    if issues:
        return Period(now, None, issues)
    start = start or now
    latest = now + tolerance
    if received is not None and start < received - tolerance:
        issues.append(Issue("error", "business-rule", f"the contact starts at {start.isoformat()}, before the "
                                                      f"request was received at {received.isoformat()}", (START,)))
    if start > latest:
        issues.append(Issue("error", "business-rule", f"the contact starts at {start.isoformat()}, in the future "
                                                      f"(now is {now.isoformat()})", (START,)))
    if end is not None and end < start:
        issues.append(Issue("error", "business-rule", f"the contact ends at {end.isoformat()}, before it starts "
                                                      f"at {start.isoformat()}", (END,)))
    elif end is not None and end > latest:
        issues.append(Issue("error", "business-rule", f"the contact ends at {end.isoformat()}, in the future "
                                                      f"(now is {now.isoformat()})", (END,)))
    return Period(start, end, issues)


def _moment(value: Any, where: str) -> tuple[datetime | None, Issue | None]:
    if value is None:
        return None, None
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None or "T" not in value:
        return None, Issue("error", "value", "executionPeriod holds ISO 8601 dateTimes with a time and a time zone, "
                                             "e.g. 2026-11-30T21:10:00+01:00", (where,))
    return moment, None
