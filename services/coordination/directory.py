"""The region's directory as coordination routes by it: the region's defaults overlaid with each organisation's
entry as the front door's admin last set it (directory-changed), kept once and never replaced by an older one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination.models import DirectoryListing
from shared.bus.consumer import PoisonMessage
from shared.bus.envelope import Event
from shared.directory import Listing, NotAnEntry, from_fhir, overlay
from shared.region import care_provider


def _listing(row: DirectoryListing) -> Listing | None:
    org = care_provider(row.org)
    if org is None:
        return None
    return Listing(org.token, org.name, org.label, org.kind, tuple(row.dispositions.split()), row.hours,
                   row.weekdays_only)


async def current(session: AsyncSession) -> list[Listing]:
    """Every care provider of the region in the region's order: its received entry, else the region's default."""
    rows = (await session.execute(select(DirectoryListing))).scalars()
    return overlay(listing for row in rows if (listing := _listing(row)) is not None)


async def listing_of(session: AsyncSession, token: str) -> Listing | None:
    """The current entry of the care provider `token` ("system|value"); None for an insurer or a stranger."""
    if care_provider(token) is None:
        return None
    return next(listing for listing in await current(session) if listing.token == token)


async def on_directory_changed(session: AsyncSession, event: Event, *, codesystem_base: str) -> None:
    """An organisation's whole entry from the front door: stored when its version is newer than the one held (a
    redelivery, a replay or an entry overtaken on the way changes nothing); a value that is no entry of the
    region is poison."""
    try:
        value = event.json()
        listing, version = from_fhir(value, codesystem_base=codesystem_base)
    except (NotAnEntry, ValueError) as exc:
        raise PoisonMessage(f"directory-changed value: {exc}") from exc
    changed_at = _changed_at(value, event.time)
    row = await session.get(DirectoryListing, listing.token, with_for_update=True)
    if row is not None and row.version >= version:
        return
    row = row or DirectoryListing(org=listing.token, dispositions="", hours=listing.hours, version=version,
                                  changed_at=changed_at)
    row.dispositions, row.hours, row.weekdays_only = " ".join(listing.dispositions), listing.hours, \
        listing.weekdays_only
    row.version, row.changed_at = version, changed_at
    session.add(row)


def _changed_at(value: Any, fallback: datetime) -> datetime:
    """When the admin changed the entry (meta.lastUpdated), else when the event was made."""
    try:
        changed = datetime.fromisoformat(str(((value or {}).get("meta") or {}).get("lastUpdated") or ""))
    except ValueError:
        return fallback
    return changed if changed.tzinfo else changed.replace(tzinfo=UTC)
