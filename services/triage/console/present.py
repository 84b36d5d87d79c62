"""How the triage console words what it shows (pure): channels, statuses, due times, ages, a patient's contact details
and a referral's referrer, in the nurse's words instead of codes and identifiers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from shared.region import organisation

AMSTERDAM = ZoneInfo("Europe/Amsterdam")

# Dutch labels (the console's default language); English in shared/i18n.py, checked by a test.
CHANNEL_LABELS = {"referral": "verwijzing", "phone": "telefoon", "walk-in": "balie"}
STATUS_LABELS = {"open": "te triëren", "triaged": "getrieerd", "closed": "afgesloten"}
# A coordination Task's status as the triage page lists the patient's open Tasks.
TASK_STATUS_LABELS = {"requested": "nieuw", "received": "ontvangen", "accepted": "geaccepteerd", "in-progress": "bezig",
                      "on-hold": "gepauzeerd", "completed": "afgerond", "rejected": "afgewezen",
                      "cancelled": "geannuleerd", "failed": "mislukt"}
# A referral's FHIR priority, shown until the request is triaged.
PRIORITY_LABELS = {"routine": "routine", "urgent": "spoed", "asap": "zo snel mogelijk", "stat": "direct"}
CALLER_LABELS = {"patient": "patiënt zelf", "relative": "naaste", "carer": "mantelzorger",
                 "professional": "zorgverlener"}
DAY_WORDS = {-1: "gisteren", 0: "", 1: "morgen"}


def due_label(due: datetime | None, *, now: datetime | None = None,
              translate: Callable[[str], str] = lambda text: text) -> str:
    """A due time as the nurse reads it, in Europe/Amsterdam time: "01:10" today, "morgen 01:10" tomorrow,
    "gisteren 23:50" yesterday, else "01-12 01:10" (day-month). A naive datetime is taken as UTC (as stored);
    `translate` gives the day words in the console's language. "" for no due time."""
    if due is None:
        return ""
    local = (due if due.tzinfo else due.replace(tzinfo=UTC)).astimezone(AMSTERDAM)
    today = (now or datetime.now(UTC)).astimezone(AMSTERDAM).date()
    days = (local.date() - today).days
    if days not in DAY_WORDS:
        return f"{local:%d-%m %H:%M}"
    word = DAY_WORDS[days]
    return f"{translate(word)} {local:%H:%M}" if word else f"{local:%H:%M}"


def age_in_years(birth_date: str | None, *, today: date | None = None) -> int | None:
    """Completed years on `today` (Europe/Amsterdam's date by default) of an ISO birth date ("1950-01-01"; a FHIR
    partial date "1950" or "1950-03" gives None: no age is guessed). None for a date in the future or unreadable."""
    if not birth_date or len(birth_date) != 10:
        return None
    try:
        born = date.fromisoformat(birth_date)
    except ValueError:
        return None
    on = today or datetime.now(AMSTERDAM).date()
    years = on.year - born.year - ((on.month, on.day) < (born.month, born.day))
    return years if years >= 0 else None


def _phones(telecom: object) -> list[str]:
    return [str(t["value"]) for t in telecom if isinstance(t, dict) and t.get("system") == "phone"
            and t.get("value")] if isinstance(telecom, list) else []


def address_text(address: Mapping[str, Any]) -> str:
    """One FHIR Address on one line: "Dorpsstraat 1, 1234 AB Ergens" (its `text` when it has no parts)."""
    lines = ", ".join(str(line) for line in address.get("line", []) or [] if line)
    place = " ".join(str(p) for p in (address.get("postalCode"), address.get("city")) if p)
    return ", ".join(p for p in (lines, place) if p) or str(address.get("text", ""))


def contact_details(patient: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a stored FHIR Patient says of how to reach the patient: `address` (the current one: a temporary
    address before the home address, "" when none), `phones` (the patient's own numbers) and `contacts`
    ([(caller code, phone)] of the people who called for the patient, Patient.contact as the phone form stores
    them, services/triage/service.contact_patient_details)."""
    if not patient:
        return {"address": "", "phones": [], "contacts": []}
    addresses = [a for a in patient.get("address", []) or [] if isinstance(a, dict) and a.get("use") != "old"]
    addresses.sort(key=lambda a: {"temp": 0, "home": 1}.get(str(a.get("use")), 2))
    contacts = []
    for person in patient.get("contact", []) or []:
        if not isinstance(person, dict):
            continue
        relation = next((r.get("text") or next((c.get("code") for c in r.get("coding", []) or []), None)
                         for r in person.get("relationship", []) or [] if isinstance(r, dict)), None)
        for phone in _phones(person.get("telecom")) or [""]:
            contacts.append((str(relation or ""), phone))
    return {"address": address_text(addresses[0]) if addresses else "", "phones": _phones(patient.get("telecom")),
            "contacts": contacts}


def form_fill(patient: Mapping[str, Any] | None, *, bsn: str | None, name: str, birth_date: str | None,
              uzovi: str | None) -> dict[str, str]:
    """The phone/walk-in form's fields filled from a known patient (a lookup result the nurse chose): name, birth
    date, BSN, the first address's parts, the patient's own phone and the insurer's UZOVI when known."""
    addresses = [a for a in (patient or {}).get("address", []) or [] if isinstance(a, dict) and a.get("use") != "old"]
    addresses.sort(key=lambda a: {"temp": 0, "home": 1}.get(str(a.get("use")), 2))
    first = addresses[0] if addresses else {}
    phones = _phones((patient or {}).get("telecom"))
    return {"bsn": bsn or "", "name": name, "birth_date": birth_date or "", "uzovi": uzovi or "",
            "address_line": ", ".join(str(line) for line in first.get("line", []) or [] if line),
            "postal_code": str(first.get("postalCode", "")), "city": str(first.get("city", "")),
            "callback_phone": phones[0] if phones else ""}


def person_name(resource: Mapping[str, Any]) -> str:
    """A Practitioner's or Patient's name as written: its text, else given names and family."""
    for name in resource.get("name", []) or []:
        if not isinstance(name, dict):
            continue
        if name.get("text"):
            return str(name["text"])
        text = " ".join(str(p) for p in [*(name.get("given", []) or []), name.get("family")] if p)
        if text:
            return text
    return ""


def organisation_name(resource: Mapping[str, Any]) -> str:
    """An Organization's name: the region's name for one of its identifiers (AGB, URA; the directory's name is the
    one staff know), else the name the resource gives itself."""
    for ident in resource.get("identifier", []) or []:
        if isinstance(ident, dict):
            known = organisation(str(ident.get("system", "")), str(ident.get("value", "")))
            if known is not None:
                return known.name
    return str(resource.get("name") or "")


def reference_name(reference: Mapping[str, Any] | None, resolve: Callable[[str], Mapping[str, Any] | None]) -> str:
    """The name behind a FHIR Reference (a referral's requester): the stored resource it points at, read with
    `resolve("Type/id")` (an Organization, Practitioner, or PractitionerRole with its practitioner and
    organisation as "name, organisation"), else its `display`, else the region's name for a logical identifier.
    "" when nothing names it: an identifier is never shown instead of a name."""
    if not isinstance(reference, Mapping):
        return ""
    target = resolve(str(reference["reference"])) if isinstance(reference.get("reference"), str) else None
    if target is not None:
        kind = target.get("resourceType")
        if kind == "Organization":
            named = organisation_name(target)
        elif kind == "PractitionerRole":
            named = ", ".join(n for n in (reference_name(target.get("practitioner"), resolve),
                                          reference_name(target.get("organization"), resolve)) if n)
        else:
            named = person_name(target)
        if named:
            return named
    if reference.get("display"):
        return str(reference["display"])
    ident = reference.get("identifier")
    if isinstance(ident, Mapping):
        known = organisation(str(ident.get("system", "")), str(ident.get("value", "")))
        if known is not None:
            return known.name
    return ""
