"""When an organisation of the region is open: "HH:MM-HH:MM" hours in Europe/Amsterdam, optionally on working days
only. Plain functions; the demo region's hours are the defaults the front door seeds its directory with."""

from __future__ import annotations

import re
from datetime import datetime, time
from zoneinfo import ZoneInfo

from shared.region import Organisation

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
# The demo region's opening hours by kind: GP practices in office hours on working days, everyone else always.
DEMO_HOURS = {"gp-practice": ("08:00-17:00", True)}
ALWAYS = ("00:00-24:00", False)


def hours_of(org: Organisation) -> tuple[str, bool]:
    """The demo region's (hours, working days only) of `org`, e.g. ("08:00-17:00", True) for a GP practice."""
    return DEMO_HOURS.get(org.kind, ALWAYS)


def open_at(hours: str, weekdays_only: bool, moment: datetime) -> bool:
    """Whether hours "HH:MM-HH:MM" (Amsterdam; an end before the start runs past midnight, "24:00" is the end of
    the day) include `moment` (any timezone). The closing minute still counts as open: care due by 17:00 can be
    given by a practice open until 17:00. Hours that do not parse count as always open, as at the front door."""
    local = moment.astimezone(AMSTERDAM)
    if weekdays_only and local.weekday() >= 5:
        return False
    match = HOURS.match(hours)
    if match is None:
        return True
    start = time(int(match[1]), int(match[2]))
    end_hour, end_minute = int(match[3]), int(match[4])
    now = local.time()
    if end_hour == 24:
        return now >= start
    end = time(end_hour, end_minute)
    return start <= now <= end if start < end else (now >= start or now <= end)
