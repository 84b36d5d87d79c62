"""Subscriptions in the R4 Subscriptions Backport IG form: what is accepted, what is refused and where, and
the status Parameters and Bundles sent and served ($status, $events)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from services.coordination import notifications
from services.coordination.models import Notification, SubscriptionRecord
from shared.fhir import FhirError, validate_resource

WIJK = "http://fhir.nl/fhir/NamingSystem/ura|90000020"
ZUIDRAND = "http://fhir.nl/fhir/NamingSystem/ura|90000010"
B = notifications.BACKPORT


def backport(*filters: Any, channel: dict[str, Any] | None = None, topic: str = notifications.TOPIC) -> dict[str, Any]:
    """A Subscription as a partner following the IG writes it; each filter a valueString (or a whole extension)."""
    extensions = [f if isinstance(f, dict) else {"url": f"{B}/backport-filter-criteria", "valueString": f}
                  for f in filters]
    body: dict[str, Any] = {
        "resourceType": "Subscription", "status": "requested", "reason": "Taken van Wijkverpleging Oost",
        "criteria": topic,
        "channel": {"type": "rest-hook", "endpoint": "https://ehr.example/notify", "payload": "application/fhir+json",
                    "_payload": {"extension": [{"url": f"{B}/backport-payload-content", "valueCode": "id-only"}]},
                    **(channel or {})}}
    if extensions:
        body["_criteria"] = {"extension": extensions}
    return body


def refusal(body: dict[str, Any], org: str = WIJK) -> FhirError:
    with pytest.raises(FhirError) as caught:
        notifications.parse(body, caller_org=org)
    return caught.value


@pytest.mark.parametrize("filter_text", [
    f"Task?owner={WIJK}",
    "Task?owner=http://fhir.nl/fhir/NamingSystem/ura%7C90000020",
    f"Task?owner:identifier={WIJK}",
    f"owner={WIJK}",
    f"Task?owner=Organization?identifier={WIJK}",
    "Task?owner=URA 90000020",
])
def test_a_filter_on_the_callers_own_organisation_in_any_spelling_is_accepted(filter_text: str) -> None:
    wanted = notifications.parse(backport(filter_text), caller_org=WIJK)
    assert (wanted.form, wanted.owner, wanted.endpoint) == ("backport", WIJK, "https://ehr.example/notify")


def test_without_a_filter_the_topic_is_narrowed_to_the_callers_organisation_and_says_so() -> None:
    body = backport()
    wanted = notifications.parse(body, caller_org=WIJK)
    assert wanted.owner == WIJK
    echoed = notifications.accepted(body, wanted)
    assert echoed["criteria"] == notifications.TOPIC
    assert echoed["_criteria"]["extension"] == [{"url": f"{B}/backport-filter-criteria",
                                                  "valueString": f"Task?owner={WIJK}"}]


def test_a_filter_on_another_organisation_is_refused_at_that_extension() -> None:
    error = refusal(backport(f"Task?owner={WIJK}", f"Task?owner={ZUIDRAND}"))
    assert error.status_code == 422
    assert [(i.code, i.expression) for i in error.issues] == [
        ("forbidden", ("Subscription.criteria.extension[1].valueString",))]


def test_an_unknown_topic_is_refused_at_criteria() -> None:
    error = refusal(backport(f"Task?owner={WIJK}", topic="https://regiozorg.example/fhir/SubscriptionTopic/nope"))
    assert error.status_code == 422
    assert [(i.code, i.expression) for i in error.issues] == [("not-supported", ("Subscription.criteria",))]


@pytest.mark.parametrize(("filter_extension", "code"), [
    ({"url": f"{B}/backport-filter-criteria", "valueString": "Task?status=requested"}, "not-supported"),
    ({"url": f"{B}/backport-filter-criteria", "valueString": f"Encounter?owner={WIJK}"}, "not-supported"),
    ({"url": f"{B}/backport-filter-criteria", "valueString": "Task?owner=nobody"}, "value"),
    ({"url": f"{B}/backport-filter-criteria", "valueString": "Task?"}, "value"),
    ({"url": f"{B}/backport-filter-criteria", "valueCode": "owner"}, "structure"),
])
def test_a_filter_the_topic_does_not_offer_is_refused_at_that_extension(filter_extension: dict[str, Any],
                                                                        code: str) -> None:
    error = refusal(backport(filter_extension))
    assert [(i.code, i.expression) for i in error.issues] == [
        (code, ("Subscription.criteria.extension[0].valueString",))]


def test_other_extensions_on_criteria_do_not_shift_the_reported_location() -> None:
    error = refusal(backport({"url": "https://example.org/other", "valueString": "x"}, f"Task?owner={ZUIDRAND}"))
    assert error.issues[0].expression == ("Subscription.criteria.extension[1].valueString",)


def test_the_ig_leaves_heartbeats_off_unless_asked_and_the_timeout_is_capped_at_the_senders() -> None:
    quiet = notifications.parse(backport(f"Task?owner={WIJK}"), caller_org=WIJK)
    assert quiet.heartbeat_seconds == 0
    assert quiet.timeout_seconds == notifications.SEND_TIMEOUT_SECONDS
    body = backport(f"Task?owner={WIJK}", channel={"extension": [
        {"url": f"{B}/backport-heartbeat-period", "valueUnsignedInt": 86400},
        {"url": f"{B}/backport-timeout", "valueUnsignedInt": 60}]})
    asked = notifications.parse(body, caller_org=WIJK)
    assert (asked.heartbeat_seconds, asked.timeout_seconds) == (86400, notifications.SEND_TIMEOUT_SECONDS)
    channel = notifications.accepted(body, asked)["channel"]
    assert {e["url"]: e["valueUnsignedInt"] for e in channel["extension"]} == {
        f"{B}/backport-heartbeat-period": 86400, f"{B}/backport-timeout": notifications.SEND_TIMEOUT_SECONDS}
    short = notifications.parse(backport(channel={"extension": [{"url": f"{B}/backport-timeout",
                                                                 "valueUnsignedInt": 2}]}), caller_org=WIJK)
    assert short.timeout_seconds == 2


@pytest.mark.parametrize(("channel", "where"), [
    ({"extension": [{"url": f"{B}/backport-heartbeat-period", "valueUnsignedInt": 1}]},
     "Subscription.channel.extension[0]"),
    ({"extension": [{"url": "https://example.org/x", "valueString": "y"},
                    {"url": f"{B}/backport-timeout", "valueUnsignedInt": 0}]}, "Subscription.channel.extension[1]"),
    ({"_payload": {"extension": [{"url": f"{B}/backport-payload-content", "valueCode": "full-resource"}]}},
     "Subscription.channel.payload.extension"),
    ({"payload": "application/fhir+xml"}, "Subscription.channel.payload"),
    ({"type": "websocket"}, "Subscription.channel.type"),
    ({"_type": {"extension": [{"url": f"{B}/backport-channel-type",
                               "valueCoding": {"system": "https://example.org", "code": "zulip"}}]}},
     "Subscription.channel.type"),
    ({"endpoint": "ftp://ehr.example/notify"}, "Subscription.channel.endpoint"),
])
def test_a_channel_that_cannot_be_served_is_refused_at_its_element(channel: dict[str, Any], where: str) -> None:
    error = refusal(backport(f"Task?owner={WIJK}", channel=channel))
    assert error.status_code == 422
    assert [i.expression for i in error.issues] == [(where,)]


def test_a_malformed_subscription_is_refused_with_the_shape_that_was_expected() -> None:
    body = backport()
    body["_criteria"] = {"extension": "Task?owner=x"}
    error = refusal(body)
    assert error.status_code == 422
    assert error.issues[0].expression == ("Subscription.criteria.extension",)
    assert refusal({"resourceType": "Patient"}).status_code == 400


def test_the_older_criteria_form_is_read_as_before() -> None:
    body = {"resourceType": "Subscription", "criteria": f"Task?owner={WIJK}",
            "channel": {"type": "rest-hook", "endpoint": "http://127.0.0.1:9/x", "header": ["X-Key: 1", "bad"]}}
    wanted = notifications.parse(body, caller_org=WIJK)
    assert (wanted.form, wanted.owner, wanted.heartbeat_seconds, wanted.headers) == (
        "criteria", WIJK, notifications.LEGACY_HEARTBEAT_SECONDS, ("X-Key: 1",))
    assert notifications.accepted(body, wanted)["criteria"] == f"Task?owner={WIJK}"
    other = refusal({**body, "criteria": "Task?owner=URA 90000010"})
    assert [(i.code, i.expression) for i in other.issues] == [("forbidden", ("Subscription.criteria",))]


@pytest.mark.parametrize(("since", "until", "expected"), [
    (None, None, (1, None)), ("3", None, (3, None)), ("2", "2", (2, 2)), ("", "5", (1, 5))])
def test_event_ranges_are_inclusive_numbers(since: str | None, until: str | None,
                                            expected: tuple[int, int | None]) -> None:
    assert notifications.event_range(since, until) == expected


@pytest.mark.parametrize(("since", "until", "parameter"), [
    ("0", None, "eventsSinceNumber"), ("one", None, "eventsSinceNumber"), (None, "-1", "eventsUntilNumber"),
    ("4", "3", "eventsUntilNumber")])
def test_a_bad_event_range_is_a_400_naming_the_parameter(since: str | None, until: str | None,
                                                         parameter: str) -> None:
    with pytest.raises(FhirError) as caught:
        notifications.event_range(since, until)
    assert caught.value.status_code == 400
    assert caught.value.issues[0].expression == (parameter,)


def _record(status: str = "active", events: int = 2) -> SubscriptionRecord:
    return SubscriptionRecord(id="s1", owner_org=WIJK, endpoint="https://ehr.example/notify", status=status,
                              events_since_start=events, created_by="ehr-wijk-oost", content=json.dumps({}))


def _params(parameters: dict[str, Any]) -> dict[str, Any]:
    return {p["name"]: p for p in parameters["parameter"]}


def test_events_are_served_as_a_valid_r4_notification_bundle_naming_each_task() -> None:
    found = [Notification(subscription_id="s1", event_number=n, focus=f"Task/t{n}",
                          created_at=datetime(2026, 11, 22, 10, n, tzinfo=UTC)) for n in (1, 2)]
    body = notifications.bundle(_record(), kind="query-event", base_url="https://coord.example", notifications=found)
    assert validate_resource(body) == []
    assert body["type"] == "history"
    status = body["entry"][0]["resource"]
    assert status["meta"]["profile"] == [f"{B}/backport-subscription-status-r4"]
    params = _params(status)
    assert params["type"]["valueCode"] == "query-event"
    assert params["topic"]["valueCanonical"] == notifications.TOPIC
    events = [{part["name"]: part for part in p["part"]} for p in status["parameter"]
              if p["name"] == "notification-event"]
    assert [(e["event-number"]["valueString"], e["focus"]["valueReference"]["reference"]) for e in events] == [
        ("1", "https://coord.example/fhir/Task/t1"), ("2", "https://coord.example/fhir/Task/t2")]
    assert events[0]["timestamp"]["valueInstant"] == "2026-11-22T10:01:00+00:00"
    assert [(e["fullUrl"], "resource" in e) for e in body["entry"][1:]] == [
        ("https://coord.example/fhir/Task/t1", False), ("https://coord.example/fhir/Task/t2", False)]


def test_the_handshake_tells_the_subscription_is_requested_and_carries_no_event() -> None:
    body = notifications.bundle(_record(status="requested", events=0), kind="handshake",
                                base_url="https://coord.example")
    assert validate_resource(body) == []
    params = _params(body["entry"][0]["resource"])
    assert (params["status"]["valueCode"], params["type"]["valueCode"]) == ("requested", "handshake")
    assert "notification-event" not in params and len(body["entry"]) == 1


def test_status_is_a_searchset_with_the_count_and_any_error() -> None:
    record = _record(status="error", events=7)
    record.error = "gave up after 9 attempts"
    body = notifications.status_bundle(record, base_url="https://coord.example")
    assert validate_resource(body) == []
    assert body["type"] == "searchset"
    params = _params(body["entry"][0]["resource"])
    assert params["type"]["valueCode"] == "query-status"
    assert params["events-since-subscription-start"]["valueString"] == "7"
    assert params["error"]["valueCodeableConcept"]["text"] == "gave up after 9 attempts"


def test_the_capability_statement_is_valid_and_advertises_the_topic_and_both_operations() -> None:
    from services.coordination.api import fhir

    capabilities = fhir.capability_statement("http://coordination.example")
    subscription = next(r for r in capabilities["rest"][0]["resource"] if r["type"] == "Subscription")
    assert validate_resource({**capabilities, "format": ["json"],
                              "rest": [{"mode": "server", "resource": [subscription]}]}) == []
    assert subscription["extension"] == [{"url": f"{B}/capabilitystatement-subscriptiontopic-canonical",
                                          "valueCanonical": notifications.TOPIC}]
    assert {o["name"]: o["definition"].rsplit("/", 1)[1] for o in subscription["operation"]} == {
        "status": "backport-subscription-status", "events": "backport-subscription-events"}
