"""A linked call as the front door tells it (linked-contact-recorded, docs/events.md): read from its FHIR
Communication into plain data. Plain functions, no framework."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

ACUTE_REQUEST_SYSTEM = "https://regiozorg.example/fhir/NamingSystem/acute-request"
PSEUDONYM_SYSTEM = "https://regiozorg.example/fhir/NamingSystem/patient-pseudonym"
LINKED_CONTACTS_EXTENSION = "https://regiozorg.example/fhir/StructureDefinition/linked-contacts"
CALLER_EXTENSION = "https://regiozorg.example/fhir/StructureDefinition/caller"
CALLBACK_EXTENSION = "https://regiozorg.example/fhir/StructureDefinition/callback-phone"
CHANNELS = frozenset({"referral", "phone", "walk-in"})
CALLERS = frozenset({"patient", "relative", "carer", "professional"})


class NotALinkedCall(ValueError):
    """The value is not a linked contact's Communication; the message names the part, never patient data."""


@dataclass(frozen=True)
class LinkedCallFacts:
    id: str  # the Communication id, "<acute request id>-<n>"
    acute_request_id: str
    pseudonym: str
    number: int  # the request's running count of linked contacts, 1 for the first
    channel: str  # referral | phone | walk-in
    received_at: datetime  # UTC
    caller: str | None  # patient | relative | carer | professional
    callback_phone: str | None
    complaint: str


def _extension(value: dict[str, Any], url: str) -> dict[str, Any]:
    return next((e for e in value.get("extension") or [] if isinstance(e, dict) and e.get("url") == url), {})


def read(value: Any) -> LinkedCallFacts:
    """The linked call in `value`; raises NotALinkedCall naming what is missing or malformed. An unknown caller
    is kept out (None) rather than refusing the words that came with it."""
    if not isinstance(value, dict) or value.get("resourceType") != "Communication":
        raise NotALinkedCall("the value is not a Communication")
    try:
        ident = next(b["identifier"] for b in value.get("basedOn") or []
                     if (b.get("identifier") or {}).get("system") == ACUTE_REQUEST_SYSTEM)
        request_id = str(ident["value"])
        subject = value["subject"]["identifier"]
        if subject.get("system") != PSEUDONYM_SYSTEM:
            raise NotALinkedCall("the subject is not a pseudonym")
        sent = datetime.fromisoformat(str(value["sent"]))
        channel = str(value["medium"][0]["text"])
        number = int(_extension(value, LINKED_CONTACTS_EXTENSION).get("valueInteger", 0))
    except (StopIteration, KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise NotALinkedCall(f"the Communication lacks basedOn, subject, sent, medium or linked-contacts "
                             f"({exc.__class__.__name__})") from exc
    if not (isinstance(value.get("id"), str) and 0 < len(value["id"]) <= 80 and 0 < len(request_id) <= 64):
        raise NotALinkedCall("the Communication id or its request id is missing or too long")
    if channel not in CHANNELS or number < 1:
        raise NotALinkedCall("medium is not a channel of the front door, or the count is not positive")
    caller = _extension(value, CALLER_EXTENSION).get("valueCode")
    phone = (_extension(value, CALLBACK_EXTENSION).get("valueContactPoint") or {}).get("value")
    complaint = "\n".join(str(p["contentString"]) for p in value.get("payload") or []
                          if isinstance(p, dict) and p.get("contentString"))
    return LinkedCallFacts(id=value["id"], acute_request_id=request_id, pseudonym=str(subject["value"])[:64],
                           number=number, channel=channel,
                           received_at=(sent if sent.tzinfo else sent.replace(tzinfo=UTC)).astimezone(UTC),
                           caller=caller if caller in CALLERS else None,
                           callback_phone=str(phone)[:32] if phone else None, complaint=complaint)
