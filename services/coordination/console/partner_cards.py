"""What the partner console shows of a Task and why an action was refused: plain functions over plain data.

A Task card is read from the FHIR Task (SPEC §7: description, note, input of the task-input code system, due
time), with the routing order triage sent as the fallback for Tasks made before the Task carried urgency and
note, and the patient as coordination knows them (`partner.patient_for`). Every reading is defensive: a field
that is absent or of the wrong shape is shown as unknown, never an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from services.coordination.domain import words
from services.coordination.domain.task_state import REASON_REQUIRED, TERMINAL, allowed_targets
from shared.region import ORGANISATIONS

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
NEW, ACCEPTED, IN_PROGRESS, OVERDUE, FINISHED = "new", "accepted", "in-progress", "overdue", "finished"
GROUP_OF_STATUS = {"requested": NEW, "received": NEW, "accepted": ACCEPTED, "in-progress": IN_PROGRESS,
                   "on-hold": IN_PROGRESS}
FINISHED_SHOWN_FOR = timedelta(hours=24)

# The console's actions and the Task status each one asks the transition function for.
ACTIONS = {"accept": "accepted", "reject": "rejected", "start": "in-progress", "complete": "completed"}
DELIVERED_CONTACTS = ("VR", "HH", "AMB")  # v3 ActCode classes (SPEC §7)
# The contact a follow-up action usually ends in, preselected when completing (the nurse can change it).
USUAL_CONTACT = {"remote-advice": "VR", "home-visit": "HH", "community-nursing": "HH", "onsite-consult": "AMB",
                 "rtp-placement": "AMB", "hospital-referral": "AMB", "gp-office-hours": "AMB", "ambulance": "AMB"}

# Dutch labels (the console's default language); English in shared/i18n.py, checked by a test.
STATUS_LABELS = words.STATUS_LABELS
ACTION_LABELS = {"accept": "accepteren", "reject": "afwijzen", "start": "starten", "complete": "afronden"}
GENDER_LABELS = {"male": "man", "female": "vrouw", "other": "anders", "unknown": "geslacht onbekend"}
CONTACT_LABELS = {"VR": "Op afstand (VR)", "HH": "Aan huis (HH)", "AMB": "Op locatie (AMB)"}
REFUSALS = {
    "gone": "Deze taak is niet (meer) van uw organisatie.",
    "forbidden": "Alleen de uitvoerende organisatie mag deze taak wijzigen.",
    "already": "Deze taak is al {status}.",
    "final": "Deze taak is al {status} en verandert niet meer: {action} kan niet.",
    "not-now": "Deze taak is {status}: {action} kan nu niet.",
    "reason": "Geef een reden om de taak af te wijzen.",
    "contact": "Kies het geleverde contact: op afstand, aan huis of op locatie.",
    "time": "Begin en einde zijn geen geldige tijden (dag en tijd).",
    "order": "Het einde van het contact ligt vóór het begin.",
    "future": "Het contact kan niet in de toekomst beginnen of eindigen.",
    "other": "De actie is geweigerd, er is niets veranderd: {detail}",
}
ORG_NAMES = {o.token: o.name for o in ORGANISATIONS}


@dataclass(frozen=True)
class PatientView:
    """The patient as the card shows them; every part may be unknown."""

    name: str | None = None
    age: int | None = None
    gender: str | None = None
    address: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class TaskInputs:
    """What the Task says about the work beyond its status: the contract fields of SPEC §7, read defensively."""

    what: str | None = None  # the follow-up action (Task.code display)
    disposition: str | None = None  # its code
    complaint: str | None = None  # Task.description
    urgency: str | None = None  # U0..U5
    target_time: datetime | None = None
    note: str | None = None  # the triage note
    referrer: str | None = None
    phone: str | None = None  # the contact phone the front door recorded
    escalation: str | None = None  # businessStatus text set by a case manager's escalation


@dataclass(frozen=True)
class Card:
    """One Task as the partner console shows it."""

    task_id: str
    status: str
    pseudonym: str
    due: datetime
    group: str
    inputs: TaskInputs
    patient: PatientView | None
    moves: frozenset[str] = field(default_factory=frozenset)  # console actions the owner may take now
    started: datetime | None = None
    outcome: str | None = None  # why a Task ended as it did (statusReason), or why it was escalated
    delivered: str | None = None  # a completed Task: the contact delivered (VR, HH, AMB)

    @property
    def overdue(self) -> bool:
        return self.group == OVERDUE


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def instant(value: Any) -> datetime | None:
    """A FHIR dateTime with its zone as an aware datetime; None for anything else (a date, no zone, garbage)."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else None


def _first_code(concept: Any) -> str | None:
    return next((_text(c.get("code")) for c in _list(_dict(concept).get("coding")) if isinstance(c, dict)), None)


def _task_input(task: dict[str, Any], code: str, system: str) -> dict[str, Any]:
    for item in _list(task.get("input")):
        codings = _list(_dict(_dict(item).get("type")).get("coding"))
        if any(isinstance(c, dict) and c.get("system") == system and c.get("code") == code for c in codings):
            return _dict(item)
    return {}


def _reference_name(reference: Any) -> str | None:
    ref = _dict(reference)
    ident = _dict(ref.get("identifier"))
    known = ORG_NAMES.get(f"{ident.get('system')}|{ident.get('value')}")
    return _text(ref.get("display")) or known or _text(ident.get("value"))


def read_task(task: dict[str, Any], *, order: dict[str, Any] | None, codesystem_base: str) -> TaskInputs:
    """The work a Task describes: from the Task itself (SPEC §7: `description`, `note[0].text`, `input[]` coded in
    `<codesystem_base>task-input` as urgency, target-time, referrer, contact-phone), else, for urgency and note,
    from the routing order triage sent (`order`, the triage-completed ServiceRequest) for Tasks made before."""
    system = f"{codesystem_base}task-input"
    urgency_input = _task_input(task, "urgency", system)
    urgency = _first_code(urgency_input.get("valueCodeableConcept")) or _text(urgency_input.get("valueCode"))
    phone_input = _task_input(task, "contact-phone", system)
    phone = _text(phone_input.get("valueString")) or _text(_dict(phone_input.get("valueContactPoint")).get("value"))
    note = next((_text(n.get("text")) for n in _list(task.get("note")) if isinstance(n, dict)), None)
    routing = order or {}
    coding = next((c for c in _list(_dict(task.get("code")).get("coding")) if isinstance(c, dict)), {})
    return TaskInputs(
        what=_text(coding.get("display")) or _text(_dict(task.get("code")).get("text")),
        disposition=_text(coding.get("code")),
        complaint=_text(task.get("description")),
        urgency=urgency or next((_first_code(c) for c in _list(routing.get("category"))), None),
        target_time=instant(_task_input(task, "target-time", system).get("valueDateTime")),
        note=note or next((_text(n.get("text")) for n in _list(routing.get("note")) if isinstance(n, dict)), None),
        referrer=_reference_name(_task_input(task, "referrer", system).get("valueReference")),
        phone=phone,
        escalation=_text(_dict(task.get("businessStatus")).get("text")),
    )


def age_on(birth_date: date, today: date) -> int:
    """Whole years completed on `today` (someone born on 29 February turns a year older on 1 March)."""
    return today.year - birth_date.year - ((today.month, today.day) < (birth_date.month, birth_date.day))


def _address(value: Any) -> str | None:
    if isinstance(value, str):
        return _text(value)
    address = _dict(value)
    line = address.get("line")
    lines = [str(x) for x in line if x] if isinstance(line, list) else [str(line)] if line else []
    place = " ".join(str(p) for p in (address.get("postal_code") or address.get("postalCode"),
                                      address.get("city")) if p)
    return ", ".join([*lines, *([place] if place else [])]) or _text(address.get("text"))


def read_patient(patient: dict[str, Any] | None, *, today: date) -> PatientView | None:
    """The card's patient from coordination's lookup (`partner.patient_for`): `name`, `birth_date` (ISO date or
    date), `age` (whole years; computed from the birth date when absent), `gender` (FHIR code), `address` (text, or
    `line`/`postal_code`/`city`) and `phone`; None when coordination knows nothing of the patient."""
    if not patient:
        return None
    born = patient.get("birth_date")
    if isinstance(born, str):
        try:
            born = date.fromisoformat(born)
        except ValueError:
            born = None
    age = patient.get("age")
    if not isinstance(age, int) or isinstance(age, bool):
        age = age_on(born, today) if isinstance(born, date) else None
    return PatientView(name=_text(patient.get("name")), age=age, gender=_text(patient.get("gender")),
                       address=_address(patient.get("address")), phone=_text(patient.get("phone")))


def card_of(task: dict[str, Any], *, task_id: str, status: str, pseudonym: str, due: datetime,
            order: dict[str, Any] | None, patient: dict[str, Any] | None, started_at: datetime | None, now: datetime,
            codesystem_base: str) -> Card:
    """One Task's card: its work (`read_task`), its patient (`read_patient`), where it goes on the page, the moves
    the owner may make, when it was started (the Task's executionPeriod.start, else the time of its move to
    in-progress, `started_at`) and, once finished, why or which contact was delivered."""
    delivered = next((_dict(o.get("valueCoding")).get("code") for o in _list(task.get("output"))
                      if isinstance(o, dict)), None)
    return Card(task_id=task_id, status=status, pseudonym=pseudonym, due=_aware(due),
                group=group_of(status, due, now),
                inputs=read_task(task, order=order, codesystem_base=codesystem_base),
                patient=read_patient(patient, today=now.astimezone(AMSTERDAM).date()),
                moves=console_moves(status),
                started=instant(_dict(task.get("executionPeriod")).get("start")) or (
                    _aware(started_at) if started_at else None),
                outcome=_text(_dict(task.get("statusReason")).get("text")),
                delivered=delivered if delivered in DELIVERED_CONTACTS else None)


def console_moves(status: str) -> frozenset[str]:
    """The console actions the owner may take on a Task in this status: exactly the owner's moves of the
    transition function (domain/task_state.py), so the page never offers a move it would refuse."""
    if status not in STATUS_LABELS:
        return frozenset()
    targets = allowed_targets(status, "owner")
    return frozenset(action for action, target in ACTIONS.items() if target in targets)


def group_of(status: str, due: datetime, now: datetime) -> str:
    """Where a Task goes on the page: finished, overdue (open and past its due time), or by its status."""
    if status in TERMINAL:
        return FINISHED
    if _aware(due) < now:
        return OVERDUE
    return GROUP_OF_STATUS.get(status, IN_PROGRESS)


def grouped(cards: list[Card]) -> dict[str, list[Card]]:
    """The page's groups in the order a nurse works them; open Tasks most urgent (earliest due) first, finished
    ones most recent first."""
    groups: dict[str, list[Card]] = {OVERDUE: [], NEW: [], ACCEPTED: [], IN_PROGRESS: [], FINISHED: []}
    for card in sorted(cards, key=lambda c: _aware(c.due)):
        groups[card.group].append(card)
    groups[FINISHED].reverse()
    return groups


def due_label(due: datetime, now: datetime) -> str:
    """The due time as Dutch staff read it: Europe/Amsterdam, the date only when it is not today."""
    local, today = _aware(due).astimezone(AMSTERDAM), now.astimezone(AMSTERDAM).date()
    return local.strftime("%H:%M") if local.date() == today else local.strftime("%d-%m %H:%M")


def local_input(moment: datetime | None) -> str:
    """A moment as the value of an `<input type="datetime-local">` in Europe/Amsterdam ("" for none)."""
    return _aware(moment).astimezone(AMSTERDAM).strftime("%Y-%m-%dT%H:%M") if moment else ""


def parse_local(value: str) -> datetime | None:
    """A `datetime-local` form value, read as Europe/Amsterdam; None when empty. Raises ValueError otherwise."""
    if not value.strip():
        return None
    moment = datetime.fromisoformat(value.strip())
    if moment.tzinfo is not None:
        raise ValueError("a local time carries no zone")
    return moment.replace(tzinfo=AMSTERDAM)


class FormRefused(ValueError):
    """The console refuses what a form holds before asking anything; the message is a REFUSALS key."""


def contact_period(*, start: str, end: str, started: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    """When the delivered contact took place, from the completion form: start defaults to when the Task was
    started (else now), end to now. The form holds minutes: a start left at the minute the Task was started is
    that exact moment. Raises FormRefused when the times cannot be right."""
    try:
        begin, finish = parse_local(start), parse_local(end)
    except ValueError as exc:
        raise FormRefused("time") from exc
    if begin is not None and started is not None and local_input(begin) == local_input(started):
        begin = started
    begin, finish = begin or started or now, finish or now
    if finish < begin:
        raise FormRefused("order")
    if max(begin, finish) > now + timedelta(minutes=5):  # a little slack for a phone's clock
        raise FormRefused("future")
    return begin, finish


def refusal(*, status_code: int, current: str | None, action: str, reason: str | None,
            detail: str = "") -> tuple[str, dict[str, str]]:
    """Why the transition function refused an action, as a REFUSALS key and its parameters (Dutch status and
    action labels, translated by the page). Mirrors the order of the checks in `decide_transition`: `current` is
    the Task's status after the refusal, None when the caller can no longer see the Task."""
    target = ACTIONS[action]
    labels = {"action": ACTION_LABELS[action]}
    if status_code == 404 or current is None:
        return "gone", {}
    if status_code == 403:
        return "forbidden", {}
    status = {**labels, "status": STATUS_LABELS.get(current, current)}
    if current == target:
        return "already", status
    if current in TERMINAL:
        return "final", status
    if target not in allowed_targets(current, "owner"):
        return "not-now", status
    if target in REASON_REQUIRED and not (reason and reason.strip()):
        return "reason", {}
    return "other", {"detail": detail}
