"""Read a FHIR Patient the way a case manager or community nurse needs it: name, age, address, phone, GP, insurer.

Pure: plain dicts in, plain values out. The Patient is the one the front door holds (patient-changed), so its
references are relative to the front door's FHIR base.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from typing import Any

from shared.identifiers import BSN_SYSTEM, PSEUDONYM_SYSTEM, UZOVI_SYSTEM

INSURER_EXTENSION = "https://regiozorg.example/fhir/StructureDefinition/insurer"
GENDERS = {"male": "man", "female": "vrouw", "other": "anders", "unknown": "onbekend"}


@dataclass(frozen=True)
class Person:
    """One patient as the consoles and the JSON API show them; every field may be unknown (None or "")."""

    name: str
    birth_date: str | None
    age: int | None  # whole years on the given day
    gender: str | None  # FHIR administrative gender code
    address: str | None  # one line: "Dorpsstraat 1, 1234 AB Oost"
    phone: str | None
    bsn: str | None
    pseudonym: str | None
    general_practitioner: str | None
    insurer: str | None  # "Zorgverzekeraar Noord (UZOVI 9001)"

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "birth_date": self.birth_date, "age": self.age, "gender": self.gender,
                "address": self.address, "phone": self.phone, "bsn": self.bsn,
                "general_practitioner": self.general_practitioner, "insurer": self.insurer}


def age_on(birth_date: str | None, today: date) -> int | None:
    """Whole years between a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD) and `today`; None when unknown or later.

    A partial date counts from its latest possible day, so the age is never overstated."""
    if not birth_date:
        return None
    parts = birth_date.split("-")
    try:
        year = int(parts[0])
        month = int(parts[1]) if len(parts) > 1 else 12
        day = int(parts[2]) if len(parts) > 2 else calendar.monthrange(year, month)[1]
        born = date(year, month, day)
    except (ValueError, IndexError):
        return None
    if born > today:
        return None
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def display_name(patient: dict[str, Any]) -> str:
    """The official (else first) name as it is written: `text`, else given names and family name."""
    names = [n for n in patient.get("name", []) or [] if isinstance(n, dict)]
    names.sort(key=lambda n: n.get("use") != "official")
    for name in names:
        if name.get("text"):
            return str(name["text"])
        text = " ".join(str(p) for p in [*(name.get("given") or []), name.get("family") or ""] if p)
        if text:
            return text
    return ""


def _identifier(patient: dict[str, Any], system: str) -> str | None:
    return next((str(i["value"]) for i in patient.get("identifier", []) or []
                 if isinstance(i, dict) and i.get("system") == system and i.get("value")), None)


def _phones(telecom: object) -> list[dict[str, Any]]:
    return [t for t in telecom or [] if isinstance(t, dict) and t.get("system") == "phone" and t.get("value")
            and not (t.get("period") or {}).get("end")] if isinstance(telecom, list) else []


def contact_phone(patient: dict[str, Any]) -> str | None:
    """The number to reach the patient on: their own phone (mobile first), else a contact person's."""
    own = sorted(_phones(patient.get("telecom")), key=lambda t: t.get("use") != "mobile")
    if own:
        return str(own[0]["value"])
    for contact in patient.get("contact", []) or []:
        phones = _phones(contact.get("telecom")) if isinstance(contact, dict) else []
        if phones:
            return str(phones[0]["value"])
    return None


def one_line_address(patient: dict[str, Any]) -> str | None:
    """The home (else first current) address on one line: street, postal code and city."""
    addresses = [a for a in patient.get("address", []) or [] if isinstance(a, dict)
                 and not (a.get("period") or {}).get("end") and a.get("use") != "old"]
    addresses.sort(key=lambda a: a.get("use") != "home")
    for address in addresses:
        street = ", ".join(str(line) for line in address.get("line") or [] if line)
        place = " ".join(str(p) for p in (address.get("postalCode"), address.get("city")) if p)
        text = ", ".join(p for p in (street, place) if p) or address.get("text")
        if text:
            return str(text)
    return None


def _reference_display(reference: object) -> str | None:
    if not isinstance(reference, dict):
        return None
    ident = reference.get("identifier") or {}
    label = f"{ident.get('system', '').rsplit('/', 1)[-1].upper()} {ident['value']}" if ident.get("value") else None
    if reference.get("display"):
        return f"{reference['display']} ({label})" if label else str(reference["display"])
    return label or reference.get("reference")


def person_of(patient: dict[str, Any], *, today: date) -> Person:
    """What a console or the JSON API shows of a FHIR Patient, with the age on `today` (Amsterdam's date)."""
    insurer = next((e.get("valueReference") for e in patient.get("extension", []) or []
                    if isinstance(e, dict) and e.get("url") == INSURER_EXTENSION), None)
    if isinstance(insurer, dict) and (insurer.get("identifier") or {}).get("system") == UZOVI_SYSTEM:
        uzovi = insurer["identifier"].get("value")
        insurer_text = f"{insurer.get('display', 'UZOVI')} (UZOVI {uzovi})" if insurer.get("display") else \
            f"UZOVI {uzovi}"
    else:
        insurer_text = None
    practitioners = [d for d in (_reference_display(g) for g in patient.get("generalPractitioner", []) or []) if d]
    return Person(name=display_name(patient), birth_date=patient.get("birthDate"),
                  age=age_on(patient.get("birthDate"), today), gender=patient.get("gender"),
                  address=one_line_address(patient), phone=contact_phone(patient),
                  bsn=_identifier(patient, BSN_SYSTEM), pseudonym=_identifier(patient, PSEUDONYM_SYSTEM),
                  general_practitioner=", ".join(practitioners) or None, insurer=insurer_text)
