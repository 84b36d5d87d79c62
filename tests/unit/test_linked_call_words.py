"""A linked call's words on their way to the case manager: the front door's linked-contact-recorded carries them in
the value only, coordination reads them back, and the timeline says them (and everything else) in words, in Dutch
or English; opening hours as the front door counts them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from services.coordination.console.timeline import describe
from services.coordination.domain import linked_call, words
from services.coordination.episodes import name_of
from services.triage import events
from services.triage.configuration import Provider
from services.triage.domain.rules import DISPOSITIONS
from services.triage.models import AcuteRequest
from shared.bus.topics import LINKED_CONTACT_RECORDED
from shared.fhir import validate_resource
from shared.i18n import translator
from shared.opening_hours import hours_of, open_at
from shared.region import ORGANISATIONS

NL, EN = translator("nl"), translator("en")
WIJK = "http://fhir.nl/fhir/NamingSystem/ura|90000020"
LINDE = "http://fhir.nl/fhir/NamingSystem/agb-z|01000001"
REQUEST = AcuteRequest(id="req-1", pseudonym="p-abc", patient_id="pat-1", channel="referral", submitted_by="x",
                       complaint="Valt steeds", received_at=datetime(2026, 11, 30, 5, 0, tzinfo=UTC))


def recorded(**changes: object) -> dict:
    values: dict = {"channel": "phone", "received_at": datetime(2026, 11, 30, 6, 21, tzinfo=UTC), "linked_so_far": 2,
                    "complaint": "Dochter belt: vader is verward", "caller": "relative",
                    "callback_phone": "06-99887766", "traceparent": None}
    return events.linked_contact_recorded(REQUEST, **{**values, **changes}).json()


def test_the_words_ride_in_the_value_for_coordination_and_never_in_the_key_or_headers() -> None:
    event = events.linked_contact_recorded(REQUEST, channel="phone", received_at=datetime(2026, 11, 30, 6, 21,
                                                                                          tzinfo=UTC),
                                           linked_so_far=2, complaint="Dochter belt: vader is verward",
                                           caller="relative", callback_phone="06-99887766", traceparent=None)
    assert event.topic == LINKED_CONTACT_RECORDED and event.key == "p-abc" and event.subject == "Communication/req-1-2"
    exposed = event.key.encode() + b" ".join(value for _, value in event.headers())
    assert b"06-99887766" not in exposed and b"verward" not in exposed
    assert validate_resource(event.json()) == []
    # The same Communication as contact-linked's, so both speak of one contact.
    assert event.json()["id"] == events.contact_linked(REQUEST, channel="phone", received_at=REQUEST.received_at,
                                                       linked_so_far=2, traceparent=None).json()["id"]


def test_coordination_reads_channel_caller_callback_complaint_and_time() -> None:
    call = linked_call.read(recorded())
    assert (call.id, call.acute_request_id, call.pseudonym, call.number) == ("req-1-2", "req-1", "p-abc", 2)
    assert (call.channel, call.caller, call.callback_phone) == ("phone", "relative", "06-99887766")
    assert call.complaint == "Dochter belt: vader is verward"
    assert call.received_at == datetime(2026, 11, 30, 6, 21, tzinfo=UTC)
    bare = linked_call.read(recorded(channel="referral", complaint="", caller="somebody", callback_phone=None))
    assert (bare.complaint, bare.caller, bare.callback_phone) == ("", None, None)


@pytest.mark.parametrize("broken", [
    {"resourceType": "Patient"},
    {"basedOn": []},
    {"medium": [{"text": "pigeon"}]},
    {"sent": "gisteren"},
    {"extension": []},
    {"subject": {"identifier": {"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": "999990007"}}},
])
def test_a_value_that_is_not_a_linked_call_is_refused_without_naming_anyone(broken: dict) -> None:
    with pytest.raises(linked_call.NotALinkedCall) as refused:
        linked_call.read({**recorded(), **broken})
    assert "verward" not in str(refused.value) and "06-99887766" not in str(refused.value)


def facts(**values: object) -> str:
    return json.dumps(values)


def test_a_linked_call_on_the_timeline_in_dutch_and_in_english() -> None:
    raw = facts(event="call", channel="walk-in", caller="carer", callback="020-1234567", complaint="Wond lekt")
    dutch = describe(kind="call", text="", facts=raw, t=NL, name_of=name_of)
    assert dutch.tag == "gekoppeld contact" and dutch.call is not None
    assert (dutch.call.channel, dutch.call.caller, dutch.call.callback, dutch.call.complaint) == (
        "balie", "mantelzorger", "020-1234567", "Wond lekt")
    english = describe(kind="call", text="", facts=raw, t=EN, name_of=name_of)
    assert english.tag == "linked contact" and english.call is not None
    assert (english.call.channel, english.call.caller) == ("walk-in", "carer")


def test_statuses_follow_up_actions_and_organisations_are_words_and_the_triage_tag_is_not_repeated() -> None:
    triage = describe(kind="triage", text="triage U3: …", t=NL, name_of=name_of, facts=facts(
        event="triage", urgency="U3", disposition="home-visit", complaint="Koorts", owner=WIJK,
        due="2026-11-30T12:00:00+00:00", note="Wond bekijken"))
    assert triage.tag == "triage"
    assert triage.text == ("U3 dringend (Koorts): Visite aan huis door Wijkverpleging Oost, uiterlijk 30-11 13:00; "
                           "notitie: Wond bekijken")
    moved = describe(kind="task", text="", t=EN, name_of=name_of, facts=facts(
        event="status", **{"from": "requested", "to": "in-progress"}, owner=WIJK, reason=None))
    assert moved.text == "Wijkverpleging Oost: new → in progress" and moved.tag == "Task"
    reassigned = describe(kind="task", text="", t=NL, name_of=name_of, facts=facts(
        event="reassigned", **{"from": WIJK, "to": LINDE}, reason="geen capaciteit", closed_at_due=True))
    assert reassigned.text == ("overgedragen: Wijkverpleging Oost → Huisartsenpraktijk De Linde "
                               "(gesloten op de streeftijd) (geen capaciteit)")
    for line in (triage, moved, reassigned):
        assert "http" not in line.text and "requested" not in line.text


def test_an_escalation_is_marked_also_on_entries_from_before_facts_were_kept() -> None:
    marked = describe(kind="task", text="", t=NL, name_of=name_of,
                      facts=facts(event="escalated", owner=WIJK, reason="pijn neemt toe"))
    assert marked.escalation and marked.tag == "escalatie"
    assert marked.text == "taak geëscaleerd bij Wijkverpleging Oost: pijn neemt toe"
    old = describe(kind="task", text="taak geëscaleerd bij Wijkverpleging Oost: pijn", facts=None, t=EN,
                   name_of=name_of)
    assert old.escalation and old.tag == "Task" and old.text == "taak geëscaleerd bij Wijkverpleging Oost: pijn"
    earlier = describe(kind="triage", text="triage U3 (Koorts): Visite aan huis", facts=None, t=NL, name_of=name_of)
    assert (earlier.tag, earlier.text) == ("triage", "U3 (Koorts): Visite aan huis")
    unknown = describe(kind="note", text="gebeld met dochter", facts="{not json", t=NL, name_of=name_of)
    assert (unknown.tag, unknown.text, unknown.escalation) == ("notitie", "gebeld met dochter", False)


def test_coordination_names_the_follow_up_actions_as_the_front_door_does() -> None:
    assert words.DISPOSITION_LABELS == DISPOSITIONS
    assert {o.kind for o in ORGANISATIONS} <= words.KIND_LABELS.keys()


def test_opening_hours_are_counted_as_the_front_door_counts_them() -> None:
    monday = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)
    moments = [monday + timedelta(minutes=m) for m in range(0, 8 * 24 * 60, 37)]
    for org in ORGANISATIONS:
        hours, weekdays_only = hours_of(org)
        provider = Provider(org.name, org.token, org.label, org.kind, org.dispositions, hours, weekdays_only)
        assert [open_at(hours, weekdays_only, m) for m in moments] == [provider.open_at(m) for m in moments]
    assert not open_at("08:00-17:00", True, datetime(2026, 12, 5, 11, 0, tzinfo=UTC))  # a Saturday
    assert open_at("08:00-17:00", True, datetime(2026, 11, 30, 16, 0, tzinfo=UTC))  # 17:00 in Amsterdam
    assert not open_at("08:00-17:00", True, datetime(2026, 11, 30, 16, 1, tzinfo=UTC))
    assert open_at("17:00-08:00", False, datetime(2026, 11, 30, 2, 0, tzinfo=UTC))
