"""The front door's patients by name or pseudonym, for the admin's audit page (shared/audit_views.py)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.triage.models import PatientRecord
from shared.audit_views import KnownPatient, PatientNames

NAME_LIMIT = 20


async def by_name(session: AsyncSession, name: str) -> list[KnownPatient]:
    """Patients whose name contains `name` (case-insensitive), at most NAME_LIMIT, by name. The caller audits."""
    rows = (await session.execute(select(PatientRecord).where(
        PatientRecord.display_name.icontains(name.strip(), autoescape=True))  # type: ignore[attr-defined]
        .order_by(PatientRecord.display_name).limit(NAME_LIMIT))).scalars()
    return [KnownPatient(r.pseudonym, r.display_name, r.birth_date) for r in rows]


async def by_pseudonyms(session: AsyncSession, pseudonyms: Iterable[str]) -> dict[str, KnownPatient]:
    """The patient of each pseudonym the front door knows (one of several records with one pseudonym)."""
    wanted = sorted(set(pseudonyms))[:500]
    rows = (await session.execute(select(PatientRecord).where(
        PatientRecord.pseudonym.in_(wanted)))).scalars()  # type: ignore[attr-defined]
    return {r.pseudonym: KnownPatient(r.pseudonym, r.display_name, r.birth_date) for r in rows}


NAMES = PatientNames(by_name=by_name, by_pseudonyms=by_pseudonyms)
