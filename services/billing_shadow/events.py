"""Events shadow billing publishes: a prestation recorded (FHIR ChargeItem) and insurer feed revisions."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from services.billing_shadow.models import PrestationLine
from shared.bus.envelope import Event
from shared.bus.topics import PRESTATION_FEED, PRESTATION_RECORDED
from shared.identifiers import PSEUDONYM_SYSTEM, UZOVI_SYSTEM

SOURCE = "/regiozorg/billing_shadow"
ACUTE_REQUEST_SYSTEM = "https://regiozorg.example/fhir/NamingSystem/acute-request"
PRESTATION_SYSTEM = "https://regiozorg.example/fhir/CodeSystem/prestation"
EXCLUSION_EXTENSION = "https://regiozorg.example/fhir/StructureDefinition/exclusion-reason"


def prestation_recorded(line: PrestationLine, *, pseudonym: str, traceparent: str | None) -> Event:
    charge: dict[str, Any] = {
        "resourceType": "ChargeItem",
        "id": line.id,
        "identifier": [{"system": ACUTE_REQUEST_SYSTEM, "value": line.acute_request_id}],
        "status": "billable" if line.exclusion_reason is None else "not-billable",
        "code": {"coding": [{"system": PRESTATION_SYSTEM, "code": line.code}]} if line.code
        else {"text": "geen integrale prestatie"},
        "subject": {"identifier": {"system": PSEUDONYM_SYSTEM, "value": pseudonym}},
        "occurrenceDateTime": line.service_date.isoformat(),
        "quantity": {"value": 1},
    }
    if line.uzovi:
        charge["account"] = [{"identifier": {"system": UZOVI_SYSTEM, "value": line.uzovi}}]
    if line.unit_price_cents is not None:
        charge["priceOverride"] = {"value": float(Decimal(line.unit_price_cents) / 100), "currency": "EUR"}
    if line.exclusion_reason:
        charge["extension"] = [{"url": EXCLUSION_EXTENSION, "valueCode": line.exclusion_reason}]
    return Event.of(topic=PRESTATION_RECORDED, key=pseudonym, source=SOURCE, subject=f"ChargeItem/{line.id}",
                    payload=charge, traceparent=traceparent)


def feed_published(document: dict[str, Any]) -> Event:
    """Keyed by UZOVI (an insurer, not a patient), so revisions of one insurer stay in order."""
    return Event.of(topic=PRESTATION_FEED, key=document["uzovi"], source=SOURCE,
                    subject=f"feed/{document['uzovi']}/{document['period']}/{document['revision']}",
                    payload=document, content_type="application/json")
