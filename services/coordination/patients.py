"""Whom coordination coordinates: the front door's Patients as patient-changed brings them, each kept at its newest
version, looked up by pseudonym or Patient id and searched by name and birth date or by BSN.

These functions decide nothing about access: callers (Task `_include`, the case-manager console and API) check
that the caller treats or coordinates the patient, and audit what they show.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination.domain.person import Person, display_name, person_of
from services.coordination.models import CoordinatedPatient
from shared.audit_views import KnownPatient, PatientNames
from shared.console import AMSTERDAM
from shared.fhir import dumps, loads
from shared.identifiers import BSN_SYSTEM, PSEUDONYM_SYSTEM

SEARCH_LIMIT = 50


class NotAPatient(ValueError):
    """A patient-changed value that is not a FHIR Patient with an id, a pseudonym and a usable meta."""


def today() -> date:
    """The date in Amsterdam, on which ages are counted."""
    return datetime.now(AMSTERDAM).date()


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _version(patient: dict[str, Any]) -> tuple[int, datetime]:
    meta = patient.get("meta") or {}
    raw = str(meta.get("versionId", "0"))
    try:
        updated = datetime.fromisoformat(str(meta["lastUpdated"]))
    except (KeyError, ValueError) as exc:
        raise NotAPatient("the Patient has no meta.lastUpdated") from exc
    return (int(raw) if raw.isdigit() else 0), _aware(updated)


def _identifier(patient: dict[str, Any], system: str) -> str | None:
    return next((str(i["value"]) for i in patient.get("identifier", []) or []
                 if isinstance(i, dict) and i.get("system") == system and i.get("value")), None)


async def store(session: AsyncSession, patient: dict[str, Any]) -> CoordinatedPatient | None:
    """Keep this version of the Patient if it is newer than the one held (by meta.versionId, then
    meta.lastUpdated); returns the row when it changed, None for an older or the same version.

    Raises NotAPatient (whose message holds no patient data) when the value is not a usable Patient."""
    if not isinstance(patient, dict) or patient.get("resourceType") != "Patient" \
            or not isinstance(patient.get("id"), str) or not patient["id"]:
        raise NotAPatient("the value is not a Patient with an id")
    pseudonym = _identifier(patient, PSEUDONYM_SYSTEM)
    if not pseudonym:
        raise NotAPatient("the Patient has no pseudonym identifier")
    version, updated = _version(patient)
    row = await session.get(CoordinatedPatient, patient["id"], with_for_update=True)
    if row is not None and (version, updated) <= (row.version, _aware(row.last_updated)):
        return None
    bsn = _identifier(patient, BSN_SYSTEM)
    values = {"pseudonym": pseudonym, "version": version, "last_updated": updated,
              "name": display_name(patient)[:300], "birth_date": str(patient["birthDate"])[:10]
              if patient.get("birthDate") else None, "bsn": bsn if bsn and len(bsn) == 9 else None,
              "received_at": datetime.now(UTC), "content": dumps(patient)}
    if row is None:
        row = CoordinatedPatient(id=patient["id"], **values)
    else:
        for name, value in values.items():
            setattr(row, name, value)
    session.add(row)
    return row


def resource(row: CoordinatedPatient) -> dict[str, Any]:
    """The FHIR Patient as the front door sent it (its references are relative to the front door's base)."""
    return dict(loads(row.content))


def person(row: CoordinatedPatient, *, on: date | None = None) -> Person:
    """The patient as the consoles show them, with the age on `on` (default: today in Amsterdam)."""
    return person_of(resource(row), today=on or today())


async def by_id(session: AsyncSession, patient_id: str) -> CoordinatedPatient | None:
    return await session.get(CoordinatedPatient, patient_id)


async def by_pseudonym(session: AsyncSession, pseudonym: str) -> CoordinatedPatient | None:
    """The patient with this pseudonym; of several front-door Patients with one pseudonym, the latest updated."""
    return (await session.execute(select(CoordinatedPatient).where(CoordinatedPatient.pseudonym == pseudonym)
                                  .order_by(CoordinatedPatient.last_updated.desc()).limit(1))).scalars().first()  # type: ignore[attr-defined]


async def by_pseudonyms(session: AsyncSession, pseudonyms: Iterable[str]) -> dict[str, CoordinatedPatient]:
    """The patient of each pseudonym that coordination knows, in one query per 500 pseudonyms."""
    wanted = sorted(set(pseudonyms))
    found: dict[str, CoordinatedPatient] = {}
    for start in range(0, len(wanted), 500):
        rows = (await session.execute(select(CoordinatedPatient).where(
            CoordinatedPatient.pseudonym.in_(wanted[start:start + 500]))  # type: ignore[attr-defined]
            .order_by(CoordinatedPatient.last_updated))).scalars()
        found.update((row.pseudonym, row) for row in rows)  # the latest updated wins
    return found


async def search(session: AsyncSession, *, name: str | None = None, birth_date: str | None = None,
                 bsn: str | None = None) -> list[CoordinatedPatient]:
    """Patients by BSN, or by (part of) the name together with the birth date (YYYY-MM-DD); at most 50, by name.

    Both name and birth date are needed: a name alone would list too many people to someone looking for one.
    Raises ValueError naming what is missing."""
    if bsn:
        query = select(CoordinatedPatient).where(CoordinatedPatient.bsn == bsn)
    elif name and name.strip() and birth_date:
        query = select(CoordinatedPatient).where(
            CoordinatedPatient.birth_date == birth_date,
            CoordinatedPatient.name.icontains(name.strip(), autoescape=True))  # type: ignore[attr-defined]
    else:
        raise ValueError("search by bsn, or by name and birthdate together")
    return list((await session.execute(query.order_by(CoordinatedPatient.name).limit(SEARCH_LIMIT))).scalars())


async def _known(session: AsyncSession, name: str) -> list[KnownPatient]:
    rows = (await session.execute(select(CoordinatedPatient).where(
        CoordinatedPatient.name.icontains(name.strip(), autoescape=True))  # type: ignore[attr-defined]
        .order_by(CoordinatedPatient.name).limit(AUDIT_NAME_LIMIT))).scalars()
    return list({r.pseudonym: KnownPatient(r.pseudonym, r.name, r.birth_date) for r in rows}.values())


async def _named(session: AsyncSession, pseudonyms: Iterable[str]) -> dict[str, KnownPatient]:
    return {p: KnownPatient(p, r.name, r.birth_date) for p, r in (await by_pseudonyms(session, pseudonyms)).items()}


# The admin's audit page searches coordination's log by a name alone (at most AUDIT_NAME_LIMIT patients): the admin
# looks for whose data was touched, not for one patient to treat (that search needs the birth date too).
AUDIT_NAME_LIMIT = 20
AUDIT_NAMES = PatientNames(by_name=_known, by_pseudonyms=_named)
