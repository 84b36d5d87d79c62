"""The front door's own configuration as data: urgency target times and the organisation directory
(what each organisation provides, in which hours). Seeded from the demo region, edited by the admin."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.triage.domain.rules import AMSTERDAM, DEFAULT_TARGET_MINUTES, DISPOSITIONS, URGENCIES
from services.triage.models import DirectoryEntry, UrgencyTarget
from shared.region import ORGANISATIONS

HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
# The demo region's opening hours: GP practices in office hours, everyone else around the clock.
DEMO_HOURS = {"gp-practice": ("08:00-17:00", True)}


@dataclass(frozen=True)
class Provider:
    name: str
    token: str
    identifier: str
    kind: str
    dispositions: tuple[str, ...]
    hours: str
    weekdays_only: bool

    def open_at(self, moment: datetime) -> bool:
        """Whether the organisation is open at `moment` (any timezone; hours are Europe/Amsterdam). The closing
        minute still counts as open: care due by 17:00 can be given by a practice open until 17:00."""
        local = moment.astimezone(AMSTERDAM)
        if self.weekdays_only and local.weekday() >= 5:
            return False
        match = HOURS.match(self.hours)
        if match is None:
            return True
        start = time(int(match[1]), int(match[2]))
        end_hour, end_minute = int(match[3]), int(match[4])
        now = local.time()
        if end_hour == 24:
            return now >= start
        end = time(end_hour, end_minute)
        return start <= now <= end if start < end else (now >= start or now <= end)


async def seed(session: AsyncSession) -> None:
    for urgency, minutes in DEFAULT_TARGET_MINUTES.items():
        if await session.get(UrgencyTarget, urgency) is None:
            session.add(UrgencyTarget(urgency=urgency, minutes=minutes))
    for org in ORGANISATIONS:
        if org.kind == "insurer" or await session.get(DirectoryEntry, org.token) is not None:
            continue
        hours, weekdays = DEMO_HOURS.get(org.kind, ("00:00-24:00", False))
        session.add(DirectoryEntry(org=org.token, dispositions=" ".join(org.dispositions), hours=hours,
                                   weekdays_only=weekdays))


async def targets(session: AsyncSession) -> dict[str, int | None]:
    rows = dict((await session.execute(select(UrgencyTarget.urgency, UrgencyTarget.minutes))).tuples().all())
    return {u: rows.get(u, DEFAULT_TARGET_MINUTES[u]) for u in URGENCIES}


async def providers(session: AsyncSession) -> list[Provider]:
    entries = {e.org: e for e in await session.execute(select(  # rows, not ORM objects: read on every triage
        DirectoryEntry.org, DirectoryEntry.dispositions, DirectoryEntry.hours, DirectoryEntry.weekdays_only))}
    found = []
    for org in ORGANISATIONS:
        entry = entries.get(org.token)
        if entry is None:
            continue
        found.append(Provider(org.name, org.token, org.label, org.kind, tuple(entry.dispositions.split()),
                              entry.hours, entry.weekdays_only))
    return found


async def set_target(session: AsyncSession, *, urgency: str, minutes: int | None, actor: str) -> None:
    if urgency not in URGENCIES:
        raise ValueError(f"urgency must be one of {', '.join(URGENCIES)}")
    if minutes is not None and not 0 <= minutes <= 7 * 24 * 60:
        raise ValueError("a target is 0 to 10080 minutes, or empty for the next working day")
    row = await session.get(UrgencyTarget, urgency) or UrgencyTarget(urgency=urgency)
    row.minutes, row.changed_by, row.changed_at = minutes, actor, datetime.now(UTC)
    session.add(row)


async def set_provider(session: AsyncSession, *, org: str, dispositions: list[str], hours: str, weekdays_only: bool,
                       actor: str) -> None:
    unknown = [d for d in dispositions if d not in DISPOSITIONS]
    if unknown:
        raise ValueError(f"unknown follow-up actions: {', '.join(unknown)}")
    if not HOURS.match(hours):
        raise ValueError("hours are HH:MM-HH:MM, e.g. 08:00-17:00 or 17:00-08:00")
    row = await session.get(DirectoryEntry, org)
    if row is None:
        raise ValueError("not an organisation of the region's directory")
    row.dispositions, row.hours, row.weekdays_only = " ".join(dispositions), hours, weekdays_only
    row.changed_by, row.changed_at = actor, datetime.now(UTC)
    session.add(row)
