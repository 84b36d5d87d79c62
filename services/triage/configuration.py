"""The front door's own configuration as data: urgency target times and the organisation directory
(what each organisation provides, in which hours). Seeded from the demo region, edited by the admin; each change of
an organisation's entry is published (directory-changed) so coordination routes by the same directory."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.triage import events
from services.triage.domain.rules import DEFAULT_TARGET_MINUTES, DISPOSITIONS, URGENCIES
from services.triage.models import DirectoryEntry, UrgencyTarget
from shared import opening_hours
from shared.bus.outbox import enqueue
from shared.directory import Listing
from shared.region import ORGANISATIONS, care_provider


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
        """Whether the organisation is open at `moment` (any timezone; hours are Europe/Amsterdam), as
        shared/opening_hours counts it for the whole region: the closing minute still counts as open."""
        return opening_hours.open_at(self.hours, self.weekdays_only, moment)


async def seed(session: AsyncSession) -> None:
    for urgency, minutes in DEFAULT_TARGET_MINUTES.items():
        if await session.get(UrgencyTarget, urgency) is None:
            session.add(UrgencyTarget(urgency=urgency, minutes=minutes))
    for org in ORGANISATIONS:
        if org.kind == "insurer" or await session.get(DirectoryEntry, org.token) is not None:
            continue
        hours, weekdays = opening_hours.hours_of(org)
        session.add(DirectoryEntry(org=org.token, dispositions=" ".join(org.dispositions), hours=hours,
                                   weekdays_only=weekdays))


async def announce_earlier_changes(session: AsyncSession, *, codesystem_base: str) -> int:
    """Publish (directory-changed) each entry the admin changed before the front door published its directory: a
    region upgraded from then has such entries at version 1, which coordination never heard of. Each gets a new
    version, so this happens once; entries never changed stay unpublished (coordination has the same defaults).
    Returns how many were published; the caller commits."""
    rows = (await session.execute(select(DirectoryEntry).where(
        DirectoryEntry.version == 1, DirectoryEntry.changed_by != "defaults").with_for_update())).scalars()
    published = 0
    for row in rows:
        found = care_provider(row.org)
        if found is None:
            continue
        row.version = max(2, int(datetime.now(UTC).timestamp() * 1_000_000))
        session.add(row)
        enqueue(session, events.directory_changed(
            Listing(found.token, found.name, found.label, found.kind, tuple(row.dispositions.split()), row.hours,
                    row.weekdays_only), version=row.version, changed_at=row.changed_at,
            codesystem_base=codesystem_base))
        published += 1
    return published


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
                       actor: str, codesystem_base: str) -> None:
    """Change an organisation's entry (`org` "system|value"; follow-up action codes of SPEC §6; hours
    "HH:MM-HH:MM" Europe/Amsterdam, optionally working days only) and publish it whole, with its new version, as
    directory-changed in the same transaction (the caller commits). ValueError for an unknown action, hours that do
    not parse, or an organisation outside the directory."""
    unknown = [d for d in dispositions if d not in DISPOSITIONS]
    if unknown:
        raise ValueError(f"unknown follow-up actions: {', '.join(unknown)}")
    if not opening_hours.HOURS.match(hours):
        raise ValueError("hours are HH:MM-HH:MM, e.g. 08:00-17:00 or 17:00-08:00")
    row = await session.get(DirectoryEntry, org, with_for_update=True)
    found = care_provider(org)
    if row is None or found is None:
        raise ValueError("not an organisation of the region's directory")
    now = datetime.now(UTC)
    provided = tuple(dict.fromkeys(dispositions))
    row.dispositions, row.hours, row.weekdays_only = " ".join(provided), hours, weekdays_only
    row.changed_by, row.changed_at = actor, now
    row.version = max(row.version + 1, int(now.timestamp() * 1_000_000))
    session.add(row)
    enqueue(session, events.directory_changed(
        Listing(found.token, found.name, found.label, found.kind, provided, hours, weekdays_only),
        version=row.version, changed_at=now, codesystem_base=codesystem_base))
