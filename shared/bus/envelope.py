"""CloudEvents 1.0 envelope in Kafka binary mode: attributes in `ce_*` headers, FHIR JSON as the value."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared import jsontext, tracing
from shared.bus.topics import event_type

FHIR_JSON = "application/fhir+json"
REQUIRED_HEADERS = ("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "content-type")


class EnvelopeError(ValueError):
    """A record that is not a valid CloudEvent; such records are poison and go to the DLQ."""


@dataclass(frozen=True)
class Event:
    topic: str
    key: str  # the patient pseudonym: never a BSN
    source: str
    subject: str
    data: bytes
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    content_type: str = FHIR_JSON
    traceparent: str = field(default_factory=tracing.new_traceparent)
    type: str = ""

    def __post_init__(self) -> None:
        if not self.type:
            object.__setattr__(self, "type", event_type(self.topic))

    @classmethod
    def of(cls, *, topic: str, key: str, source: str, subject: str, payload: dict[str, Any],
           traceparent: str | None = None, content_type: str = FHIR_JSON) -> Event:
        """A new span of the given trace; without a readable one, of the request or event being handled."""
        parent = traceparent if tracing.parse(traceparent) else tracing.current()
        return cls(topic=topic, key=key, source=source, subject=subject,
                   data=jsontext.dump_bytes(payload),
                   content_type=content_type, traceparent=tracing.child_traceparent(parent))

    def json(self) -> Any:
        """The value as JSON: non-integer numbers as exact Decimals (shared.jsontext.loads)."""
        return jsontext.loads(self.data)

    def headers(self) -> list[tuple[str, bytes]]:
        return [
            ("ce_specversion", b"1.0"),
            ("ce_id", self.id.encode()),
            ("ce_source", self.source.encode()),
            ("ce_type", self.type.encode()),
            ("ce_time", self.time.isoformat().encode()),
            ("ce_subject", self.subject.encode()),
            ("content-type", self.content_type.encode()),
            ("traceparent", self.traceparent.encode()),
        ]


def decode(topic: str, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]] | tuple) -> Event:
    """Rebuild an Event from a Kafka record; raise EnvelopeError when it is not a CloudEvent we can read."""
    found = {name: raw.decode("utf-8", "replace") for name, raw in headers or ()}
    missing = [name for name in REQUIRED_HEADERS if name not in found]
    if missing:
        raise EnvelopeError(f"missing CloudEvents headers: {', '.join(missing)}")
    if found["ce_specversion"] != "1.0":
        raise EnvelopeError(f"unsupported CloudEvents specversion {found['ce_specversion']!r}")
    if value is None:
        raise EnvelopeError("record has no value")
    try:
        time = datetime.fromisoformat(found["ce_time"])
    except ValueError as exc:
        raise EnvelopeError("ce_time is not an ISO 8601 timestamp") from exc
    if found["content-type"].startswith(("application/fhir+json", "application/json")):
        try:
            jsontext.check(value)
        except ValueError as exc:
            raise EnvelopeError("value is not JSON") from exc
    return Event(topic=topic, key=(key or b"").decode(), source=found["ce_source"],
                 subject=found.get("ce_subject", ""), data=value, id=found["ce_id"], time=time,
                 content_type=found["content-type"], traceparent=found.get("traceparent") or tracing.new_traceparent(),
                 type=found["ce_type"])
