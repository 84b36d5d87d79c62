"""The CloudEvents binary-mode envelope: what goes into Kafka headers and what comes back out."""

from __future__ import annotations

import pytest

from shared.bus.envelope import EnvelopeError, Event, decode
from shared.bus.topics import TRIAGE_COMPLETED, dlq, event_type, every_topic


def test_event_round_trips_through_kafka_headers() -> None:
    event = Event.of(topic=TRIAGE_COMPLETED, key="p-" + "a" * 32, source="/regiozorg/triage",
                     subject="ServiceRequest/1", payload={"resourceType": "ServiceRequest", "id": "1"})
    back = decode(event.topic, event.key.encode(), event.data, event.headers())
    assert back == event
    assert back.type == "nl.regiozorg.triage.triage-completed.v1"
    assert back.json() == {"resourceType": "ServiceRequest", "id": "1"}


def test_headers_are_the_cloudevents_binary_mode_attributes() -> None:
    event = Event.of(topic=TRIAGE_COMPLETED, key="p-1", source="/s", subject="x", payload={})
    names = [name for name, _ in event.headers()]
    assert names == ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_subject", "content-type",
                     "traceparent"]


def test_trace_of_the_caller_is_continued_with_a_new_span() -> None:
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    event = Event.of(topic=TRIAGE_COMPLETED, key="k", source="/s", subject="x", payload={}, traceparent=parent)
    assert event.traceparent.startswith("00-0af7651916cd43dd8448eb211c80319c-")
    assert event.traceparent != parent


@pytest.mark.parametrize(("headers", "value", "message"), [
    ([], b"{}", "missing CloudEvents headers"),
    ([("ce_specversion", b"0.3"), ("ce_id", b"1"), ("ce_source", b"/s"), ("ce_type", b"t"),
      ("ce_time", b"2026-11-22T10:00:00+00:00"), ("content-type", b"application/fhir+json")], b"{}",
     "unsupported CloudEvents specversion"),
    ([("ce_specversion", b"1.0"), ("ce_id", b"1"), ("ce_source", b"/s"), ("ce_type", b"t"),
      ("ce_time", b"yesterday"), ("content-type", b"application/fhir+json")], b"{}", "ce_time"),
    ([("ce_specversion", b"1.0"), ("ce_id", b"1"), ("ce_source", b"/s"), ("ce_type", b"t"),
      ("ce_time", b"2026-11-22T10:00:00+00:00"), ("content-type", b"application/fhir+json")], b"{not json",
     "not JSON"),
])
def test_records_that_are_not_our_cloudevents_are_refused(headers: list, value: bytes, message: str) -> None:
    with pytest.raises(EnvelopeError, match=message):
        decode(TRIAGE_COMPLETED, b"k", value, headers)


def test_every_topic_has_a_dlq_companion_and_a_versioned_type() -> None:
    topics = every_topic()
    assert all(dlq(t) in topics for t in topics if not t.endswith(".dlq"))
    assert event_type("regiozorg.billing.prestation-feed.v1") == "nl.regiozorg.billing.prestation-feed.v1"
