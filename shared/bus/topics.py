"""Every Kafka topic of the product, with its CloudEvents type; each has a `.dlq` companion."""

from __future__ import annotations

REFERRAL_RECEIVED = "regiozorg.triage.referral-received.v1"
# The FHIR Patient as the front door holds it (names, BSN, address): for coordination only, never for billing.
PATIENT_CHANGED = "regiozorg.triage.patient-changed.v1"
TRIAGE_COMPLETED = "regiozorg.triage.triage-completed.v1"
# A later referral, call or walk-in linked to an open request instead of triaged again (double triage avoided); the
# value names the request and the pseudonym only, so billing's evaluation may consume it.
CONTACT_LINKED = "regiozorg.triage.contact-linked.v1"
# The same linked contact with its words (complaint, who called, callback number): for coordination only, which
# shows it on the case manager's timeline; never for billing.
LINKED_CONTACT_RECORDED = "regiozorg.triage.linked-contact-recorded.v1"
TASK_CHANGED = "regiozorg.coordination.task-changed.v1"
CONTACT_DELIVERED = "regiozorg.coordination.contact-delivered.v1"
ACUTE_REQUEST_CLOSED = "regiozorg.coordination.acute-request-closed.v1"
TASK_OVERDUE = "regiozorg.coordination.task-overdue.v1"
PRESTATION_RECORDED = "regiozorg.billing.prestation-recorded.v1"
PRESTATION_FEED = "regiozorg.billing.prestation-feed.v1"

# Holds one marker record at offset 0; a different marker means the broker lost its data.
BROKER_EPOCH = "regiozorg.system.broker-epoch.v1"

ALL_TOPICS: tuple[str, ...] = (
    REFERRAL_RECEIVED,
    PATIENT_CHANGED,
    TRIAGE_COMPLETED,
    CONTACT_LINKED,
    LINKED_CONTACT_RECORDED,
    TASK_CHANGED,
    CONTACT_DELIVERED,
    ACUTE_REQUEST_CLOSED,
    TASK_OVERDUE,
    PRESTATION_RECORDED,
    PRESTATION_FEED,
)


def dlq(topic: str) -> str:
    return f"{topic}.dlq"


def event_type(topic: str) -> str:
    """CloudEvents type for a topic: regiozorg.triage.triage-completed.v1 → nl.regiozorg.triage.triage-completed.v1."""
    return f"nl.{topic}"


def every_topic() -> list[str]:
    return [t for topic in ALL_TOPICS for t in (topic, dlq(topic))]
