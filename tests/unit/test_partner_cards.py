"""What the partner console reads from a Task and its patient, how it groups the work, and how it explains a
refusal of the transition function: plain functions, no database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.coordination.console import partner_cards as cards
from services.coordination.domain.task_state import ALL_STATUSES, TransitionError, decide_transition

BASE = "https://regiozorg.example/fhir/CodeSystem/"
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
NOW = datetime(2026, 11, 22, 13, 30, tzinfo=UTC)  # 14:30 in Amsterdam


def task_input(code: str, **value: object) -> dict[str, object]:
    return {"type": {"coding": [{"system": f"{BASE}task-input", "code": code}]}, **value}


CONTRACT_TASK = {
    "resourceType": "Task", "status": "requested",
    "code": {"coding": [{"system": f"{BASE}disposition", "code": "rtp-placement",
                         "display": "Plaatsing via transferpunt"}]},
    "description": "Valt steeds, woont alleen, dochter kan niet meer",
    "note": [{"text": "Kortdurend verblijf nodig, vandaag nog"}],
    "input": [
        task_input("urgency", valueCodeableConcept={"coding": [{"system": f"{BASE}urgency", "code": "U3"}]}),
        task_input("target-time", valueDateTime="2026-11-22T17:00:00+01:00"),
        task_input("referrer", valueReference={"identifier": {"system": "http://fhir.nl/fhir/NamingSystem/agb-z",
                                                              "value": "01000001"}}),
        task_input("contact-phone", valueContactPoint={"system": "phone", "value": "06 1234 5678"}),
    ],
    "businessStatus": {"text": "geëscaleerd: belt opnieuw"},
}


def test_a_task_that_carries_its_work_is_read_from_the_task_itself() -> None:
    read = cards.read_task(CONTRACT_TASK, order={"category": [{"coding": [{"code": "U5"}]}],
                                                 "note": [{"text": "oude notitie"}]}, codesystem_base=BASE)
    assert read == cards.TaskInputs(
        what="Plaatsing via transferpunt", disposition="rtp-placement",
        complaint="Valt steeds, woont alleen, dochter kan niet meer", urgency="U3",
        target_time=datetime(2026, 11, 22, 16, 0, tzinfo=UTC), note="Kortdurend verblijf nodig, vandaag nog",
        referrer="Huisartsenpraktijk De Linde", phone="06 1234 5678", escalation="geëscaleerd: belt opnieuw")


def test_a_task_made_before_it_carried_urgency_and_note_falls_back_to_the_routing_order() -> None:
    older = {"status": "requested", "code": {"coding": [{"code": "home-visit", "display": "Visite aan huis"}]}}
    order = {"category": [{"coding": [{"system": f"{BASE}urgency", "code": "U2"}]}],
             "note": [{"text": "Benauwd, saturatie 91%"}]}
    read = cards.read_task(older, order=order, codesystem_base=BASE)
    assert (read.urgency, read.note, read.complaint, read.phone) == ("U2", "Benauwd, saturatie 91%", None, None)
    assert cards.read_task(older, order=None, codesystem_base=BASE).urgency is None


def test_inputs_of_another_code_system_or_odd_shapes_are_unknown_not_errors() -> None:
    odd = {"code": "not a concept", "description": 7, "note": "text", "businessStatus": [],
           "input": [None, "x", {"type": {"coding": [{"system": "https://elsewhere/task-input", "code": "urgency"}]},
                                 "valueCode": "U0"},
                     task_input("urgency", valueCodeableConcept="U1"),
                     task_input("target-time", valueDateTime="2026-11-22T17:00"),  # no zone: not a moment
                     task_input("contact-phone", valueContactPoint=["06"])]}
    assert cards.read_task(odd, order={"category": "U4", "note": [3]}, codesystem_base=BASE) == cards.TaskInputs()
    assert cards.read_task({"input": [task_input("urgency", valueCode="U1")]}, order=None,
                           codesystem_base=BASE).urgency == "U1"


def test_the_patient_is_shown_with_age_address_and_phone_or_not_at_all() -> None:
    assert cards.read_patient(None, today=date(2026, 11, 22)) is None
    shown = cards.read_patient({"name": "Aaltje Bakker", "birth_date": "1937-11-23", "gender": "female",
                                "address": {"line": ["Dorpsstraat 12"], "postal_code": "1234 AB", "city": "Oost"},
                                "phone": "0201234567"}, today=date(2026, 11, 22))
    assert shown == cards.PatientView(name="Aaltje Bakker", age=88, gender="female",
                                      address="Dorpsstraat 12, 1234 AB Oost", phone="0201234567")
    given_age = cards.read_patient({"age": 40, "birth_date": "not a date", "address": "Kade 1, Zuid"},
                                   today=date(2026, 11, 22))
    assert given_age == cards.PatientView(age=40, address="Kade 1, Zuid")


@pytest.mark.parametrize(("born", "today", "age"), [
    (date(1940, 2, 29), date(2026, 2, 28), 85), (date(1940, 2, 29), date(2026, 3, 1), 86),
    (date(1990, 11, 22), date(2026, 11, 22), 36), (date(1990, 11, 23), date(2026, 11, 22), 35)])
def test_age_counts_whole_years(born: date, today: date, age: int) -> None:
    assert cards.age_on(born, today) == age


def test_the_console_offers_exactly_the_owners_moves_of_the_transition_function() -> None:
    assert cards.console_moves("requested") == {"accept", "reject"}
    assert cards.console_moves("received") == {"accept", "reject"}
    assert cards.console_moves("accepted") == {"start"}
    assert cards.console_moves("on-hold") == {"start"}
    assert cards.console_moves("in-progress") == {"complete"}
    assert cards.console_moves("bogus") == frozenset()
    for status in ALL_STATUSES:
        for action in cards.console_moves(status):
            decide_transition(current=status, target=cards.ACTIONS[action], role="owner", actor="rtp",
                              reason="reden", at=NOW)


def card(task_id: str, status: str, due: datetime) -> cards.Card:
    return cards.Card(task_id=task_id, status=status, pseudonym="p-1", due=due,
                      group=cards.group_of(status, due, NOW), inputs=cards.TaskInputs(), patient=None)


def test_open_tasks_are_grouped_by_status_overdue_first_and_earliest_due_first() -> None:
    soon, later, past = NOW + timedelta(minutes=20), NOW + timedelta(hours=3), NOW - timedelta(minutes=1)
    found = cards.grouped([card("b", "requested", later), card("a", "received", soon), card("c", "accepted", past),
                           card("d", "in-progress", later), card("e", "on-hold", soon), card("f", "completed", past),
                           card("g", "rejected", soon)])
    assert {k: [c.task_id for c in v] for k, v in found.items()} == {
        "overdue": ["c"], "new": ["a", "b"], "accepted": [], "in-progress": ["e", "d"], "finished": ["g", "f"]}
    naive_past = datetime(2026, 11, 22, 13, 0)  # SQLite hands back UTC without a zone
    assert cards.group_of("requested", naive_past, NOW) == cards.OVERDUE


def test_due_times_are_amsterdam_time_with_the_date_only_when_not_today() -> None:
    assert cards.due_label(datetime(2026, 11, 22, 15, 5, tzinfo=UTC), NOW) == "16:05"
    assert cards.due_label(datetime(2026, 11, 22, 23, 30, tzinfo=UTC), NOW) == "23-11 00:30"
    summer = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
    assert cards.due_label(summer, summer) == "12:00"
    assert cards.local_input(datetime(2026, 11, 22, 9, 15, tzinfo=UTC)) == "2026-11-22T10:15"


def test_the_contact_period_defaults_to_when_started_until_now_and_refuses_impossible_times() -> None:
    started = NOW - timedelta(minutes=40, seconds=27)
    assert cards.contact_period(start="", end="", started=started, now=NOW) == (started, NOW)
    assert cards.contact_period(start="", end="", started=None, now=NOW) == (NOW, NOW)
    assert cards.contact_period(start=cards.local_input(started), end="", started=started, now=NOW) == (started, NOW)
    begin, end = cards.contact_period(start="2026-11-22T13:00", end="2026-11-22T14:10", started=started, now=NOW)
    assert (begin, end) == (datetime(2026, 11, 22, 12, 0, tzinfo=UTC), datetime(2026, 11, 22, 13, 10, tzinfo=UTC))
    for start, end, why in (("2026-11-22T14:00", "2026-11-22T13:00", "order"), ("gisteren", "", "time"),
                            ("2026-11-22T13:00+01:00", "", "time"), ("", "2026-11-22T18:00", "future")):
        with pytest.raises(cards.FormRefused, match=why):
            cards.contact_period(start=start, end=end, started=started, now=NOW)


@pytest.mark.parametrize("current", sorted(ALL_STATUSES))
@pytest.mark.parametrize("action", sorted(cards.ACTIONS))
@pytest.mark.parametrize("reason", [None, "", "geen bed vrij"])
def test_every_refusal_of_the_transition_function_is_explained(current: str, action: str, reason: str | None) -> None:
    try:
        decide_transition(current=current, target=cards.ACTIONS[action], role="owner", actor="rtp", reason=reason,
                          at=NOW)
    except TransitionError:
        key, params = cards.refusal(status_code=422, current=current, action=action, reason=reason)
        assert key in ("already", "final", "not-now", "reason")
        assert cards.REFUSALS[key].format(**params)  # every placeholder is filled
    else:
        assert cards.refusal(status_code=422, current=current, action=action, reason=reason)[0] == "other"


def test_refusals_without_the_task_in_sight_say_it_is_no_longer_theirs() -> None:
    assert cards.refusal(status_code=404, current=None, action="accept", reason=None) == ("gone", {})
    assert cards.refusal(status_code=403, current="requested", action="start", reason=None) == ("forbidden", {})
    assert cards.refusal(status_code=422, current="cancelled", action="accept", reason=None) == (
        "final", {"action": "accepteren", "status": "geannuleerd"})


def test_a_card_knows_when_the_task_started_and_how_it_ended() -> None:
    due = datetime(2026, 11, 22, 14, 0)  # naive UTC, as SQLite returns it
    moved = NOW - timedelta(minutes=30)
    started = cards.card_of({"status": "in-progress"}, task_id="t1", status="in-progress", pseudonym="p-1",
                            due=due, order=None, patient=None, started_at=moved, now=NOW, codesystem_base=BASE)
    assert (started.group, started.started, started.moves, started.due) == (
        "in-progress", moved, {"complete"}, datetime(2026, 11, 22, 14, 0, tzinfo=UTC))
    own_start = {"executionPeriod": {"start": "2026-11-22T14:05:00+01:00"}}
    assert cards.card_of(own_start, task_id="t1", status="in-progress", pseudonym="p-1", due=due, order=None,
                         patient=None, started_at=moved, now=NOW, codesystem_base=BASE).started == \
        datetime(2026, 11, 22, 13, 5, tzinfo=UTC)
    completed = {"output": [{"valueCoding": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                             "code": "HH"}}]}
    done = cards.card_of(completed, task_id="t1", status="completed", pseudonym="p-1", due=due, order=None,
                         patient={"name": "Jan de Vries"}, started_at=None, now=NOW, codesystem_base=BASE)
    assert (done.group, done.delivered, done.moves, done.patient) == (
        "finished", "HH", frozenset(), cards.PatientView(name="Jan de Vries"))
    rejected = cards.card_of({"statusReason": {"text": "geen bed vrij"}, "output": [{"valueCoding": "x"}]},
                             task_id="t1", status="rejected", pseudonym="p-1", due=due, order=None, patient=None,
                             started_at=None, now=NOW, codesystem_base=BASE)
    assert (rejected.outcome, rejected.delivered) == ("geen bed vrij", None)
