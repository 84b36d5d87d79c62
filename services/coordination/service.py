"""Use cases of coordination: Tasks from triage, worked by their owners, closing the acute request.

Functions take the session and the caller explicitly and never commit; the edge commits once.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonpatch
from sqlalchemy import ColumnElement, Row, bindparam, case, false, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination import directory, episodes, events, notifications, patients
from services.coordination.domain import linked_call, task_content, words
from services.coordination.domain.contact import execution_period, received_at
from services.coordination.domain.person import contact_phone
from services.coordination.domain.task_state import TERMINAL, TransitionError, decide_transition
from services.coordination.models import (
    CoordinatedPatient,
    EncounterRecord,
    LinkedCall,
    RoutedRequest,
    TaskRecord,
    TaskTransition,
    TaskVersion,
)
from shared import search
from shared.auth import Caller
from shared.bus.consumer import PoisonMessage
from shared.bus.envelope import Event
from shared.bus.outbox import enqueue
from shared.console import local_time
from shared.fhir import FhirError, Issue, dumps, empty_elements, loads, unresolved_placeholders, validate_resource
from shared.fhirpatch import apply_fhirpath_patch
from shared.identifiers import PSEUDONYM_SYSTEM, org_token, parse_org, searched_pseudonym
from shared.region import FRONT_DOOR, organisation
from shared.search import json_text
from shared.writes import Writes

ACT_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
DELIVERED_CLASSES = {"VR": "virtual", "HH": "home health", "AMB": "ambulatory"}
PATCHABLE = frozenset({"status", "businessStatus", "statusReason", "output", "executionPeriod"})
# Reassignment to another organisation: by the requester or a case manager, before anyone started.
REASSIGNABLE_FROM = frozenset({"requested", "received", "rejected"})
REASSIGNMENT = frozenset({"owner", "status", "businessStatus", "statusReason"})
# http://hl7.org/fhir/task-status (R4), Task.status's required binding.
TASK_STATUS_CODES = frozenset({"draft", "requested", "received", "accepted", "rejected", "ready", "cancelled",
                               "in-progress", "on-hold", "failed", "completed", "entered-in-error"})

# The hot paths (a triage becoming a Task, a Task PATCH) read and write through SQLAlchemy Core on these tables,
# with statements built once here; the rest of coordination uses the models.
TASK = TaskRecord.__table__  # type: ignore[attr-defined]
TASK_VERSION = TaskVersion.__table__  # type: ignore[attr-defined]
TRANSITION = TaskTransition.__table__  # type: ignore[attr-defined]
ENCOUNTER = EncounterRecord.__table__  # type: ignore[attr-defined]
ROUTED = RoutedRequest.__table__  # type: ignore[attr-defined]
PATIENT = CoordinatedPatient.__table__  # type: ignore[attr-defined]
_PATIENT_BY_PSEUDONYM = (select(PATIENT.c.content).where(PATIENT.c.pseudonym == bindparam("pseudonym"))
                         .order_by(PATIENT.c.last_updated.desc()).limit(1))
_PATIENT_BY_ID_OR_PSEUDONYM = (
    select(PATIENT.c.content)
    .where(or_(PATIENT.c.id == bindparam("patient_id"), PATIENT.c.pseudonym == bindparam("pseudonym")))
    .order_by(case((PATIENT.c.id == bindparam("patient_id"), 0), else_=1), PATIENT.c.last_updated.desc()).limit(1))
_LOCKED_TASK = select(TASK.c.id, TASK.c.version, TASK.c.status, TASK.c.owner, TASK.c.requester,
                      TASK.c.acute_request_id, TASK.c.pseudonym, TASK.c.due_at, TASK.c.content).where(
    TASK.c.id == bindparam("task_id")).with_for_update()
_ROUTED = select(ROUTED.c.id, ROUTED.c.pseudonym, ROUTED.c.status, ROUTED.c.order).where(
    ROUTED.c.id == bindparam("request_id"))
_LOCKED_ROUTED = _ROUTED.with_for_update()
_UPDATE_TASK = update(TASK).where(TASK.c.id == bindparam("task_id")).values(
    version=bindparam("new_version"), status=bindparam("new_status"), last_updated=bindparam("at"),
    content=bindparam("new_content"))
_REASSIGN_TASK = update(TASK).where(TASK.c.id == bindparam("task_id")).values(
    version=bindparam("new_version"), owner=bindparam("new_owner"), status="requested", last_updated=bindparam("at"),
    content=bindparam("new_content"))
_CLOSE_REQUEST = update(ROUTED).where(ROUTED.c.id == bindparam("request_id")).values(
    status="closed", closed_at=bindparam("at"))


def _route_template(dialect: str) -> Any:
    """Upsert of the routed request: made at its first triage, its routing replaced at a re-triage."""
    upsert = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(ROUTED).values(
        id=bindparam("request_id"), pseudonym=bindparam("pseudonym"), urgency=bindparam("urgency"),
        disposition=bindparam("disposition"), status="open", due_at=bindparam("due_at"), routed_at=bindparam("at"),
        closed_at=None, order=bindparam("order_text"))
    return upsert.on_conflict_do_update(index_elements=[ROUTED.c.id], set_={
        "urgency": upsert.excluded.urgency, "disposition": upsert.excluded.disposition,
        "due_at": upsert.excluded.due_at, "order": upsert.excluded.order})


_ROUTE = {dialect: _route_template(dialect) for dialect in ("postgresql", "sqlite")}
_REQUEST_TASKS = (select(TASK.c.id, TASK.c.status, ENCOUNTER.c.id.label("encounter_id"))
                  .outerjoin(ENCOUNTER, ENCOUNTER.c.task_id == TASK.c.id)
                  .where(TASK.c.acute_request_id == bindparam("request_id")))


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _identifier_reference(token: str) -> dict[str, Any]:
    system, _, value = token.partition("|")
    return {"identifier": {"system": system, "value": value}}


async def on_triage_completed(session: AsyncSession, event: Event, *, front_door_fhir_base: str,
                              codesystem_base: str) -> None:
    """A triaged request becomes a Task owned by the chosen organisation, due by the urgency's target time, saying
    what to do and for whom (domain/task_content.py), with the contact phone of the patient coordination holds.

    Statements: the routed request upserted first (its row lock serialises the request's triages), the patient
    read, and everything else written together (shared.writes: one statement on PostgreSQL)."""
    order = event.json()
    try:
        routing = task_content.read_order(order)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise PoisonMessage(f"triage-completed value is not a routing order: {exc.__class__.__name__} {exc}") from exc
    request_id, pseudonym, due = routing.request_id, routing.pseudonym, routing.due
    dialect = session.get_bind().dialect.name
    now = _now()
    disposition, order_text = routing.code["coding"][0]["code"], dumps(order)
    await session.execute(_ROUTE[dialect], {"request_id": request_id, "pseudonym": pseudonym,
                                            "urgency": routing.urgency, "disposition": disposition, "due_at": due,
                                            "at": now, "order_text": order_text})
    if routing.retriage_reason:
        await _cancel_unstarted(session, request_id=request_id,
                                reason=f"opnieuw getrieerd: {routing.retriage_reason}",
                                traceparent=event.traceparent, at=now)
    phone = contact_phone(loads(patient)) if (patient := await _patient_content(
        session, patient_id=routing.patient_id, pseudonym=pseudonym)) else None
    task_id = uuid.uuid5(uuid.NAMESPACE_URL, f"task:{event.id}").hex
    task = task_content.task_content(routing, task_id=task_id, at=now, front_door_fhir_base=front_door_fhir_base,
                                     codesystem_base=codesystem_base, contact_phone=phone)
    owner, requester = routing.owner, routing.requester
    content = dumps(task)
    writes = Writes()
    writes.insert(TASK, id=task_id, version=1, status="requested", owner=owner, requester=requester,
                  acute_request_id=request_id, source_event_id=event.id, pseudonym=pseudonym, due_at=due,
                  last_updated=now, overdue_flagged_at=None, content=content)
    writes.insert(TASK_VERSION, task_id=task_id, version=1, content=content)
    writes.event(events.task_changed(task, pseudonym=pseudonym, traceparent=event.traceparent), at=now)
    notifications.notify_in(writes, dialect=dialect, task_id=task_id, owner=owner, at=now)
    episodes.join_episode(writes, dialect=dialect, pseudonym=pseudonym, member=owner, at=now)
    what = routing.urgency + (f" ({task_content.one_line(routing.complaint, 120)})" if routing.complaint else "")
    episodes.note_in(writes, pseudonym=pseudonym, at=now, kind="triage", organisation_token=requester,
                     reference=f"Task/{task_id}",
                     text=f"{what}: {routing.code['coding'][0].get('display', disposition)} door "
                          f"{episodes.name_of(owner)}, uiterlijk {local_time(due)}"
                          + (f"; notitie: {routing.note}" if routing.note else ""),
                     facts={"event": "triage", "urgency": routing.urgency, "disposition": disposition,
                            "complaint": task_content.one_line(routing.complaint, 120), "owner": owner,
                            "due": due.isoformat(), "note": routing.note})
    await writes.flush(session)


async def _patient_content(session: AsyncSession, *, patient_id: str | None, pseudonym: str) -> str | None:
    """The FHIR JSON of the patient coordination holds: by the front door's Patient id, else the latest updated
    with this pseudonym (patients.by_id, patients.by_pseudonym), in one statement."""
    if patient_id:
        found = (await session.execute(_PATIENT_BY_ID_OR_PSEUDONYM,
                                       {"patient_id": patient_id, "pseudonym": pseudonym})).scalars().first()
    else:
        found = (await session.execute(_PATIENT_BY_PSEUDONYM, {"pseudonym": pseudonym})).scalars().first()
    return found


async def on_patient_changed(session: AsyncSession, event: Event, *, codesystem_base: str) -> None:
    """The front door knows the patient better (a new referral, a call with a new address or phone): keep its
    newest version, and give the patient's open Tasks the current contact phone."""
    try:
        row = await patients.store(session, event.json())
    except patients.NotAPatient as exc:
        raise PoisonMessage(f"patient-changed value: {exc}") from exc
    if row is None:  # an older or the same version: a redelivery, a replay, or overtaken
        return
    phone = contact_phone(patients.resource(row))
    open_tasks = (await session.execute(select(TaskRecord).where(
        TaskRecord.pseudonym == row.pseudonym, TaskRecord.status.not_in(TERMINAL))  # type: ignore[attr-defined]
        .with_for_update())).scalars()
    now = _now()
    for record in list(open_tasks):
        updated = task_content.with_contact_phone(loads(record.content), phone, codesystem_base)
        if updated is None:
            continue
        record.version += 1
        updated["meta"] = {**updated.get("meta", {}), "versionId": str(record.version),
                           "lastUpdated": now.isoformat()}
        updated["lastModified"] = now.isoformat()
        record.content, record.last_updated = dumps(updated), now
        session.add(record)
        session.add(TaskVersion(task_id=record.id, version=record.version, content=record.content))
        enqueue(session, events.task_changed(updated, pseudonym=record.pseudonym, traceparent=event.traceparent))
        await notifications.notify(session, task_id=record.id, owner=record.owner)


async def on_linked_contact_recorded(session: AsyncSession, event: Event) -> None:
    """A later call, walk-in or referral the front door linked to an open request, with its words: kept once per
    Communication id (a redelivery or replay is a no-op) and put on the patient's timeline at the time it came in,
    whatever arrived before or after it (the triage, other calls)."""
    try:
        call = linked_call.read(event.json())
    except linked_call.NotALinkedCall as exc:
        raise PoisonMessage(f"linked-contact-recorded value: {exc}") from exc
    if await session.get(LinkedCall, call.id, with_for_update=True) is not None:
        return
    session.add(LinkedCall(id=call.id, acute_request_id=call.acute_request_id, pseudonym=call.pseudonym,
                           number=call.number, channel=call.channel, caller=call.caller,
                           callback_phone=call.callback_phone, complaint=call.complaint,
                           received_at=call.received_at))
    said = [words.label(words.CHANNEL_LABELS, call.channel)]
    if call.caller:
        said.append(words.label(words.CALLER_LABELS, call.caller))
    if call.callback_phone:
        said.append(f"terugbellen {call.callback_phone}")
    episodes.note(session, pseudonym=call.pseudonym, at=call.received_at, kind="call",
                  reference=f"Communication/{call.id}",
                  text=f"gekoppeld contact ({', '.join(said)}): {call.complaint or 'zonder klacht'}",
                  facts={"event": "call", "channel": call.channel, "caller": call.caller,
                         "callback": call.callback_phone, "complaint": call.complaint, "number": call.number,
                         "request": call.acute_request_id})


async def _cancel_unstarted(session: AsyncSession, *, request_id: str, reason: str, traceparent: str | None,
                            at: datetime) -> None:
    """A re-triage replaces the earlier routing: Tasks nobody started yet are cancelled by the front door."""
    open_tasks = (await session.execute(select(TaskRecord).where(
        TaskRecord.acute_request_id == request_id,
        TaskRecord.status.in_(("requested", "received", "accepted"))).with_for_update())).scalars()  # type: ignore[attr-defined]
    for record in list(open_tasks):
        transition = decide_transition(current=record.status, target="cancelled", role="requester",
                                       actor="triage", reason=reason, at=at)
        task = loads(record.content)
        task["status"], task["statusReason"] = "cancelled", {"text": reason}
        record.version += 1
        task["meta"] = {**task.get("meta", {}), "versionId": str(record.version), "lastUpdated": at.isoformat()}
        record.status, record.content, record.last_updated = "cancelled", dumps(task), at
        session.add(record)
        session.add(TaskVersion(task_id=record.id, version=record.version, content=record.content))
        session.add(TaskTransition(task_id=record.id, version=record.version, from_status=transition.from_status,
                                   to_status="cancelled", actor="triage", actor_org=record.requester,
                                   role="requester", reason=reason, at=at))
        enqueue(session, events.task_changed(task, pseudonym=record.pseudonym, traceparent=traceparent))
        await notifications.notify(session, task_id=record.id, owner=record.owner)
        episodes.note(session, pseudonym=record.pseudonym, at=at, kind="task", actor="triage",
                      organisation_token=record.requester, reference=f"Task/{record.id}",
                      text=f"taak geannuleerd bij {episodes.name_of(record.owner)}: {reason}",
                      facts={"event": "status", "from": transition.from_status, "to": "cancelled",
                             "owner": record.owner, "reason": reason})


def roles_of(caller: Caller, task: TaskRecord) -> list[str]:
    """Which roles the caller holds for this Task; the front door is requester and may own Tasks too."""
    roles = []
    if caller.org == task.owner:
        roles.append("owner")
    if caller.org == task.requester:
        roles.append("requester")
    if caller.role == "casemanager":
        roles.append("case-manager")
    return roles


def may_see(caller: Caller, task: TaskRecord) -> bool:
    return caller.org in (FRONT_DOOR.token, task.owner, task.requester) or caller.role == "casemanager"


async def get_task(session: AsyncSession, task_id: str, caller: Caller, *, lock: bool = False) -> TaskRecord:
    task = await session.get(TaskRecord, task_id, with_for_update=lock)
    if task is None or not may_see(caller, task):
        raise FhirError(404, Issue("error", "not-found", f"Task/{task_id} is not known"))
    return task


def _validate_outputs(task: dict[str, Any], codesystem_base: str) -> tuple[str, dict[str, Any]] | None:
    """The delivered contact recorded on completion, if any; malformed outputs are refused with their location."""
    delivered = None
    issues = []
    for i, output in enumerate(task.get("output", []) or []):
        codings = (output.get("type") or {}).get("coding", [])
        if not any(c.get("system") == f"{codesystem_base}task-output" and c.get("code") == "delivered-contact"
                   for c in codings):
            issues.append(Issue("error", "code-invalid", "output type must be task-output#delivered-contact",
                                (f"Task.output[{i}].type",)))
            continue
        value = output.get("valueCoding") or {}
        if value.get("system") != ACT_CODE_SYSTEM or value.get("code") not in DELIVERED_CLASSES:
            issues.append(Issue("error", "code-invalid", "delivered contact must be a v3 ActCode: VR, HH or AMB",
                                (f"Task.output[{i}].valueCoding",)))
            continue
        if delivered is not None:
            issues.append(Issue("error", "business-rule", "a Task records one delivered contact",
                                (f"Task.output[{i}]",)))
            continue
        delivered = (value["code"], output)
    if issues:
        raise FhirError(422, issues)
    return delivered


def _check_patched(patched: dict[str, Any], changed: set[str]) -> None:
    """The patched Task as FHIR: an element left or made empty is 400, anything else invalid in what changed 422
    (what did not change was valid when it was stored, and we wrote it: it is not parsed again). Only the changed
    elements are validated, in a Task of their own with the required status and intent: no rule of a Task relates
    one of its elements to another, so the issues within them are the same as in the whole Task."""
    if changed <= {"status"} and patched.get("status") in TASK_STATUS_CODES:
        return  # a known code of the required binding: nothing a validator could find (the transition decides)

    def in_changed(issue: Issue) -> bool:
        return any(e == f"Task.{name}" or e.startswith((f"Task.{name}.", f"Task.{name}["))
                   for e in issue.expression for name in changed)

    probe = {"resourceType": "Task", "status": patched.get("status"), "intent": patched.get("intent"),
             **{name: patched[name] for name in changed if name in patched}}
    empty = [issue for issue in empty_elements(probe, "Task") if in_changed(issue)]
    if empty:
        raise FhirError(400, empty)
    # Outside a transaction no urn:uuid:/urn:oid: placeholder names anything.
    invalid = [issue for issue in [*validate_resource(probe, path="Task"),
                                   *unresolved_placeholders(probe, "Task", ())] if in_changed(issue)]
    if invalid:
        raise FhirError(422, invalid)


async def _locked_task(session: AsyncSession, task_id: str, caller: Caller) -> Row[Any]:
    """The Task's row (id, version, status, owner, requester, acute_request_id, pseudonym, due_at, content), locked
    for this transaction; 404 when it is unknown or not the caller's to see, as `get_task`."""
    row = (await session.execute(_LOCKED_TASK, {"task_id": task_id})).first()
    if row is None or not may_see(caller, row):  # type: ignore[arg-type]
        raise FhirError(404, Issue("error", "not-found", f"Task/{task_id} is not known"))
    return row


async def patch_task(session: AsyncSession, *, task_id: str, operations: list[dict[str, Any]] | None = None,
                     fhirpath_patch: dict[str, Any] | None = None, if_match: str | None, caller: Caller,
                     codesystem_base: str, clock_tolerance: timedelta, traceparent: str | None,
                     writes: Writes | None = None) -> dict[str, Any]:
    """Apply a JSON Patch (`operations`) or a FHIRPath Patch (`fhirpath_patch`, a Parameters resource) of the
    workflow elements: every write of a Task (PATCH, PUT, the consoles) comes through here. The status change goes
    through the one transition function; the patched Task must be valid FHIR (400 for an empty element, 422 for
    the rest) and a delivered contact's executionPeriod plausible (domain.contact, with `clock_tolerance`).

    What it writes (the Task, its version, transition, timeline, Encounter, closing, outbox events, notifications)
    goes into `writes`, which the caller flushes after adding its audit row (one statement on PostgreSQL); without
    `writes` it is flushed here. Reads: the Task (locked), and on completion the request (locked) and its Tasks."""
    own = writes is None
    writes = Writes() if writes is None else writes
    record = await _locked_task(session, task_id, caller)
    if if_match is not None and if_match.strip() not in (f'W/"{record.version}"', f'"{record.version}"'):
        raise FhirError(412, Issue("error", "conflict", f"Task/{task_id} is at version {record.version}, "
                                                        f"not {if_match}"))
    current = loads(record.content)
    if fhirpath_patch is not None:
        patched = apply_fhirpath_patch(current, fhirpath_patch)
    else:
        try:  # a second parse of the stored text is the cheapest copy to patch
            patched = jsonpatch.apply_patch(loads(record.content), operations or [], in_place=True)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError, KeyError) as exc:
            raise FhirError(422, Issue("error", "processing", f"the patch cannot be applied: {exc}")) from exc
    if not isinstance(patched, dict):
        raise FhirError(422, Issue("error", "processing", "the patch replaces the Task by something else"))
    changed = {k for k in set(current) | set(patched) if current.get(k) != patched.get(k)}
    _check_patched(patched, changed)
    dialect = session.get_bind().dialect.name
    if "owner" in changed:
        result = await _reassign(session, writes, dialect=dialect, record=record, current=current, patched=patched,
                                 changed=changed, caller=caller, traceparent=traceparent)
        if own:
            await writes.flush(session)
        return result
    refused = sorted(changed - PATCHABLE)
    if refused:
        raise FhirError(422, [Issue("error", "business-rule", f"{name} cannot be changed by a patch", (f"Task.{name}",))
                              for name in refused])
    if not changed:
        return current
    now = _now()
    status_from, status_to = current["status"], patched.get("status")
    if status_from in TERMINAL:
        # Its outcome (a delivered contact, a reason) has been acted on: an Encounter exists, billing derived.
        raise FhirError(422, Issue("error", "business-rule", f"Task/{task_id} is {status_from}: a finished Task "
                                                             "is not changed", ("Task.status",)))
    status_reason = patched.get("statusReason") or {}
    reason = status_reason.get("text") or next(
        (c.get("display") or c.get("code") for c in status_reason.get("coding", [])), None)
    if status_to != status_from:
        roles = roles_of(caller, record)  # type: ignore[arg-type]
        if not roles:
            raise FhirError(403, Issue("error", "forbidden", "only the owner, the requester or a case manager may "
                                                             "change this Task"))
        transition = None
        errors = []
        for role in roles:
            try:
                transition = decide_transition(current=status_from, target=str(status_to), role=role,
                                               actor=caller.subject, reason=reason, at=now)
                break
            except TransitionError as exc:
                errors.append(str(exc))
        if transition is None:
            raise FhirError(422, Issue("error", "business-rule", "; ".join(errors), ("Task.status",)))
        writes.insert(TRANSITION, task_id=task_id, version=record.version + 1, from_status=status_from,
                      to_status=transition.to_status, actor=caller.subject, actor_org=caller.org,
                      role=transition.role, reason=reason, at=now)
        episodes.note_in(writes, pseudonym=record.pseudonym, at=now, kind="task", actor=caller.subject,
                         organisation_token=caller.org, reference=f"Task/{task_id}",
                         text=f"taak {words.label(words.STATUS_LABELS, status_from)} → "
                              f"{words.label(words.STATUS_LABELS, transition.to_status)}"
                              + (f" ({reason})" if reason else ""),
                         facts={"event": "status", "from": status_from, "to": transition.to_status,
                                "owner": record.owner, "reason": reason})
    elif caller.org != record.owner:
        raise FhirError(403, Issue("error", "forbidden", "only the owner records progress on this Task"))

    delivered = _validate_outputs(patched, codesystem_base)
    status = str(patched["status"])
    period, routed = None, None
    if "executionPeriod" in changed or (status_to == "completed" and delivered is not None):
        # Locked now if the Task ends here: closing the request needs the lock anyway (_close_if_done).
        routed = (await session.execute(_LOCKED_ROUTED if status in TERMINAL else _ROUTED,
                                        {"request_id": record.acute_request_id})).first()
        period = execution_period(patched.get("executionPeriod"), now=now, tolerance=clock_tolerance,
                                  received=received_at(loads(routed.order)) if routed else None)
        if period.issues:
            raise FhirError(422, period.issues)
    if delivered is not None and status_to != "completed":
        raise FhirError(422, Issue("error", "business-rule", "a delivered contact is recorded when the Task is "
                                                             "completed", ("Task.output",)))
    version = record.version + 1
    patched["meta"] = {**patched.get("meta", {}), "versionId": str(version), "lastUpdated": now.isoformat()}
    patched["lastModified"] = now.isoformat()
    content = dumps(patched)
    writes.statement(_UPDATE_TASK, {"task_id": task_id, "new_version": version, "new_status": status, "at": now,
                                    "new_content": content})
    writes.insert(TASK_VERSION, task_id=task_id, version=version, content=content)
    writes.event(events.task_changed(patched, pseudonym=record.pseudonym, traceparent=traceparent), at=now)
    notifications.notify_in(writes, dialect=dialect, task_id=task_id, owner=record.owner, at=now)

    encounter_id = None
    if status_to == "completed" and delivered is not None and period is not None:
        encounter_id = _record_encounter(writes, record=record, act_class=delivered[0], start=period.start,
                                         end=period.end, traceparent=traceparent, at=now)
    if status in TERMINAL:
        await _close_if_done(session, writes, record=record, status=status, encounter_id=encounter_id,
                             routed=routed if routed is not None and status in TERMINAL else None,
                             traceparent=traceparent, at=now)
    if own:
        await writes.flush(session)
    return patched


async def _reassign(session: AsyncSession, writes: Writes, *, dialect: str, record: Row[Any], current: dict[str, Any],
                    patched: dict[str, Any], changed: set[str], caller: Caller,
                    traceparent: str | None) -> dict[str, Any]:
    """Hand a Task to another organisation: it starts again as requested there, and both owners hear of it."""
    refused = sorted(changed - REASSIGNMENT)
    if refused:
        raise FhirError(422, [Issue("error", "business-rule", f"{name} cannot change while reassigning",
                                    (f"Task.{name}",)) for name in refused])
    roles = [r for r in roles_of(caller, record) if r in ("requester", "case-manager")]  # type: ignore[arg-type]
    if not roles:
        raise FhirError(403, Issue("error", "forbidden", "only the requester or a case manager reassigns a Task"))
    if current["status"] not in REASSIGNABLE_FROM:
        raise FhirError(422, Issue("error", "business-rule", f"a Task that is {current['status']} cannot be "
                                                             "reassigned", ("Task.owner",)))
    ident = (patched.get("owner") or {}).get("identifier") or {}
    found = organisation(str(ident.get("system")), str(ident.get("value")))
    if found is None or found.kind == "insurer" or found.token == record.owner:
        raise FhirError(422, Issue("error", "not-found", "owner must be another care provider in the region's "
                                                         "directory", ("Task.owner.identifier",)))
    # The directory decides who provides what and when (SPEC §6), as at triage: the region's defaults overlaid
    # with what the front door's admin set (directory-changed).
    listings = await directory.current(session)
    target = next(listing for listing in listings if listing.token == found.token)
    coding = next(iter((current.get("code") or {}).get("coding") or []), {})
    if not target.provides(coding.get("code")):
        offering = ", ".join(o.name for o in listings if o.provides(coding.get("code"))) or "none"
        raise FhirError(422, Issue("error", "business-rule",
                                   f"{target.name} does not provide {coding.get('display') or coding.get('code')} "
                                   f"({coding.get('code')}) according to the region's directory; organisations "
                                   f"that do: {offering}", ("Task.owner.identifier",)))
    due = _aware(record.due_at)
    closed = not target.open_at(due)
    explicit = "statusReason" in changed
    if closed and not explicit:
        # As at triage (closed_reason): a closed organisation only with a reason, which is recorded (SPEC §6).
        raise FhirError(422, Issue("error", "business-rule",
                                   f"{target.name} is closed at the due time {local_time(due)} (hours "
                                   f"{target.hours}{', working days only' if target.weekdays_only else ''}): choose "
                                   "an organisation that is open then, or give statusReason with the reason to "
                                   "reassign there anyway", ("Task.statusReason",)))
    now = _now()
    previous = record.owner
    reason = (patched.get("statusReason") or {}).get("text") or next(
        (c.get("display") or c.get("code") for c in (patched.get("statusReason") or {}).get("coding") or []
         if c.get("display") or c.get("code")), None) or f"reassigned to {target.name}"
    patched["status"] = "requested"
    patched["owner"] = _identifier_reference(target.token)
    writes.insert(TRANSITION, task_id=record.id, version=record.version + 1, from_status=current["status"],
                  to_status="requested", actor=caller.subject, actor_org=caller.org, role=roles[0],
                  reason=f"reassigned from {previous} to {target.token}"
                         + (" (closed at the due time)" if closed else "") + f": {reason}", at=now)
    episodes.join_episode(writes, dialect=dialect, pseudonym=record.pseudonym, member=target.token, at=now)
    episodes.note_in(writes, pseudonym=record.pseudonym, at=now, kind="task", actor=caller.subject,
                     organisation_token=caller.org, reference=f"Task/{record.id}",
                     text=f"taak overgedragen: {episodes.name_of(previous)} → {target.name}"
                          + (" (gesloten op de streeftijd)" if closed else "") + f" ({reason})",
                     facts={"event": "reassigned", "from": previous, "to": target.token, "reason": reason,
                            "closed_at_due": closed})
    version = record.version + 1
    patched["meta"] = {**patched.get("meta", {}), "versionId": str(version), "lastUpdated": now.isoformat()}
    patched["lastModified"] = now.isoformat()
    content = dumps(patched)
    writes.statement(_REASSIGN_TASK, {"task_id": record.id, "new_version": version, "new_owner": target.token,
                                      "at": now, "new_content": content})
    writes.insert(TASK_VERSION, task_id=record.id, version=version, content=content)
    writes.event(events.task_changed(patched, pseudonym=record.pseudonym, traceparent=traceparent), at=now)
    for owner in (previous, target.token):
        notifications.notify_in(writes, dialect=dialect, task_id=record.id, owner=owner, at=now)
    return patched


async def escalate(session: AsyncSession, *, task_id: str, reason: str, caller: Caller,
                   traceparent: str | None) -> dict[str, Any]:
    """A case manager (or the requester) escalates an open Task: top priority, the reason as business status,
    and the owner is notified at once."""
    record = await get_task(session, task_id, caller, lock=True)
    if not [r for r in roles_of(caller, record) if r in ("requester", "case-manager")]:
        raise FhirError(403, Issue("error", "forbidden", "only the requester or a case manager escalates a Task"))
    if record.status in TERMINAL:
        raise FhirError(422, Issue("error", "business-rule", f"a Task that is {record.status} is not escalated"))
    if not reason.strip():
        raise FhirError(422, Issue("error", "required", "an escalation needs a reason", ("reason",)))
    now = _now()
    task = loads(record.content)
    task["priority"] = "stat"
    task["businessStatus"] = {"text": f"geëscaleerd: {reason}"}
    record.version += 1
    task["meta"] = {**task.get("meta", {}), "versionId": str(record.version), "lastUpdated": now.isoformat()}
    task["lastModified"] = now.isoformat()
    record.content, record.last_updated = dumps(task), now
    session.add(record)
    session.add(TaskVersion(task_id=task_id, version=record.version, content=record.content))
    enqueue(session, events.task_changed(task, pseudonym=record.pseudonym, traceparent=traceparent))
    await notifications.notify(session, task_id=task_id, owner=record.owner)
    episodes.note(session, pseudonym=record.pseudonym, at=now, kind="task", actor=caller.subject,
                  organisation_token=caller.org, reference=f"Task/{task_id}",
                  text=f"taak geëscaleerd bij {episodes.name_of(record.owner)}: {reason}",
                  facts={"event": "escalated", "owner": record.owner, "reason": reason})
    return task


def json_patch_for_update(current: dict[str, Any], updated: dict[str, Any], task_id: str) -> list[dict[str, Any]]:
    """A PUT is the patch from the current version to the one sent, so the same rules apply to both."""
    if updated.get("resourceType") != "Task" or updated.get("id") != task_id:
        raise FhirError(400, Issue("error", "invalid", f"the body must be Task/{task_id}"))
    volatile = ("meta", "lastModified")
    before = {k: v for k, v in current.items() if k not in volatile}
    after = {k: v for k, v in updated.items() if k not in volatile}
    return list(jsonpatch.make_patch(before, after))


async def history(session: AsyncSession, *, task_id: str, caller: Caller) -> list[dict[str, Any]]:
    await get_task(session, task_id, caller)
    rows = (await session.execute(select(TaskVersion).where(TaskVersion.task_id == task_id)
                                  .order_by(TaskVersion.version.desc()))).scalars()  # type: ignore[attr-defined]
    return [loads(r.content) for r in rows]


async def version(session: AsyncSession, *, task_id: str, version_id: int, caller: Caller) -> dict[str, Any]:
    await get_task(session, task_id, caller)
    row = await session.get(TaskVersion, (task_id, version_id))
    if row is None:
        raise FhirError(404, Issue("error", "not-found", f"Task/{task_id} has no version {version_id}"))
    return loads(row.content)


def _record_encounter(writes: Writes, *, record: Row[Any], act_class: str, start: datetime, end: datetime | None,
                      traceparent: str | None, at: datetime) -> str:
    """The delivered contact as an Encounter, its contact-delivered event and its timeline entry; its id."""
    encounter_id = uuid.uuid5(uuid.NAMESPACE_URL, f"encounter:{record.id}").hex
    performer = _identifier_reference(record.owner)
    encounter: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": encounter_id,
        "status": "finished",
        "class": {"system": ACT_CODE_SYSTEM, "code": act_class, "display": DELIVERED_CLASSES[act_class]},
        "subject": {"identifier": {"system": PSEUDONYM_SYSTEM, "value": record.pseudonym}},
        "basedOn": [{"identifier": {"system": events.ACUTE_REQUEST_SYSTEM, "value": record.acute_request_id}}],
        "serviceProvider": performer,
        "participant": [{"individual": {"display": "performer of Task/" + record.id}}],
        "period": {"start": start.isoformat(), **({"end": end.isoformat()} if end else {})},
    }
    writes.insert(ENCOUNTER, id=encounter_id, task_id=record.id, acute_request_id=record.acute_request_id,
                  pseudonym=record.pseudonym, act_class=act_class, performer=record.owner, start=start,
                  content=dumps(encounter))
    writes.event(events.contact_delivered(encounter, pseudonym=record.pseudonym, traceparent=traceparent), at=at)
    episodes.note_in(writes, pseudonym=record.pseudonym, at=start, kind="contact", organisation_token=record.owner,
                     reference=f"Encounter/{encounter_id}",
                     text=f"contact geleverd ({act_class}: {DELIVERED_CLASSES[act_class]}) door "
                          f"{episodes.name_of(record.owner)}",
                     facts={"event": "delivered", "class": act_class, "owner": record.owner})
    return encounter_id


async def _close_if_done(session: AsyncSession, writes: Writes, *, record: Row[Any], status: str,
                         encounter_id: str | None, routed: Row[Any] | None, traceparent: str | None,
                         at: datetime) -> None:
    """An acute request closes when all its Tasks are terminal. `record` is the Task this unit of work ends (at
    `status`, with the Encounter `encounter_id` if one was delivered), not yet written; `routed` the request's row
    if it was read with its lock already."""
    request_id = record.acute_request_id
    if routed is None:
        routed = (await session.execute(_LOCKED_ROUTED, {"request_id": request_id})).first()
    if routed is None or routed.status == "closed":
        return
    # Read after the lock, so of two Tasks finishing together the second sees the first. The Encounters
    # come in the same statement: each belongs to one of these Tasks.
    rows = (await session.execute(_REQUEST_TASKS, {"request_id": request_id})).all()
    statuses = {task_id: task_status for task_id, task_status, _ in rows} | {record.id: status}
    if any(task_status not in TERMINAL for task_status in statuses.values()):
        return
    encounter_ids = [found for _, _, found in rows if found is not None] + ([encounter_id] if encounter_id else [])
    writes.statement(_CLOSE_REQUEST, {"request_id": request_id, "at": at})
    episodes.note_in(writes, pseudonym=routed.pseudonym, at=at, kind="closed", text="acute aanvraag afgesloten",
                     reference=f"ServiceRequest/{request_id}", facts={"event": "closed"})
    writes.event(events.acute_request_closed(request_id=request_id, pseudonym=routed.pseudonym, closed_at=at,
                                             encounter_ids=encounter_ids, traceparent=traceparent), at=at)


def _organisation_key(parameter: str) -> Callable[[str], str]:
    """An organisation as owner or requester is searched: `system|value`, `URA 90000020`, `AGB 01000001`, digits or
    `Organization?identifier=system|value`; anything else is 400 naming the parameter."""
    def read(value: str) -> str:
        try:
            return org_token(*parse_org(value.removeprefix("Organization?identifier=")))
        except ValueError as exc:
            raise FhirError(400, Issue("error", "value", f"{parameter}: {exc}", (parameter,))) from exc
    return read


_SERVICE_REQUEST = re.compile(r"(?:(?:.*/)?ServiceRequest/)?([A-Za-z0-9\-.]{1,64})")
_FOCUS_REFERENCE = json_text(TaskRecord.content, "focus", "reference")


def _focus_condition(criterion: search.Criterion) -> ColumnElement[bool]:
    """focus: the referral's ServiceRequest as `ServiceRequest/<id>`, `<id>` or an absolute URL ending in that;
    Task.focus.reference holds it relative or absolute."""
    keys = [f"ServiceRequest/{form[1]}" for value in criterion.values
            if (form := _SERVICE_REQUEST.fullmatch(value)) is not None]
    if not keys:
        return false()
    return or_(_FOCUS_REFERENCE.in_(keys), *(_FOCUS_REFERENCE.endswith(f"/{key}", autoescape=True) for key in keys))


TASK_SEARCH = {parameter.name: parameter for parameter in (
    search.token("_id", TaskRecord.id, documentation="The Task's logical id."),
    search.reference("owner", TaskRecord.owner, read=_organisation_key("owner"), identifier=True,
                     documentation="Task.owner, an organisation: system|value, URA 90000020, AGB 01000001, digits "
                                   "or Organization?identifier=system|value."),
    search.reference("requester", TaskRecord.requester, read=_organisation_key("requester"), identifier=True,
                     documentation="Task.requester, an organisation, written as for owner."),
    search.token("status", TaskRecord.status, system="http://hl7.org/fhir/task-status",
                 documentation="Task.status: a code, or http://hl7.org/fhir/task-status|<code>; :not matches a "
                               "Task with none of the codes."),
    search.reference("patient", TaskRecord.pseudonym, read=searched_pseudonym, identifier=True,
                     documentation=f"Task.for, the patient by pseudonym: <pseudonym> or {PSEUDONYM_SYSTEM}|"
                                   "<pseudonym>."),
    search.SearchParameter("focus", "reference", "Task.focus, the referral: ServiceRequest/<id>, <id> or the "
                           "ServiceRequest's absolute URL at the front door.", _focus_condition),
    search.date_parameter("_lastUpdated", TaskRecord.last_updated,
                          documentation="meta.lastUpdated: when the Task was made or last changed."),
)}


async def search_tasks(session: AsyncSession, *, caller: Caller,
                       request: search.Search) -> tuple[list[dict[str, Any]], int]:
    """One page of the Tasks the caller may see that meet every criterion of `TASK_SEARCH`, most recently changed
    first, and how many match in all. A partner sees the Tasks its organisation owns or requested; the front door
    and case managers see all."""
    query = select(TaskRecord).where(*request.conditions(TASK_SEARCH))
    if caller.org != FRONT_DOOR.token and caller.role != "casemanager":
        query = query.where((TaskRecord.owner == caller.org) | (TaskRecord.requester == caller.org))
    page = await search.fetch(session, query, count=request.count, offset=request.offset,
                              order_by=(TaskRecord.last_updated.desc(), TaskRecord.id))  # type: ignore[attr-defined]
    return [loads(r.content) for r in page.rows], page.total


@dataclass(frozen=True)
class Routed:
    """An acute request as the case manager reads it: complaint, urgency, follow-up action, triage note."""

    id: str
    pseudonym: str
    urgency: str
    disposition: str  # its display, e.g. "Visite aan huis"
    complaint: str
    note: str
    due_at: datetime
    status: str  # open | closed
    routed_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "urgency": self.urgency, "disposition": self.disposition,
                "complaint": self.complaint, "triage_note": self.note, "due_at": _aware(self.due_at).isoformat(),
                "status": self.status}


def _routed(row: RoutedRequest) -> Routed:
    order = loads(row.order)
    try:
        routing = task_content.read_order(order)
        complaint, note = routing.complaint, routing.note
        display = routing.code["coding"][0].get("display") or row.disposition
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        complaint, note, display = "", "", row.disposition
    return Routed(id=row.id, pseudonym=row.pseudonym, urgency=row.urgency, disposition=display, complaint=complaint,
                  note=note, due_at=_aware(row.due_at), status=row.status, routed_at=_aware(row.routed_at))


async def routed_requests(session: AsyncSession, *, ids: list[str] | None = None,
                          pseudonyms: list[str] | None = None) -> list[Routed]:
    """The acute requests with these ids or of these patients, newest first."""
    query = select(RoutedRequest)
    if ids is not None:
        query = query.where(RoutedRequest.id.in_(ids))  # type: ignore[attr-defined]
    if pseudonyms is not None:
        query = query.where(RoutedRequest.pseudonym.in_(pseudonyms))  # type: ignore[attr-defined]
    rows = (await session.execute(query.order_by(RoutedRequest.routed_at.desc()))).scalars()  # type: ignore[attr-defined]
    return [_routed(r) for r in rows]


INCLUDES = ("Task:patient", "Task:focus")


async def included(session: AsyncSession, *, caller: Caller, tasks: list[dict[str, Any]], include: set[str],
                   front_door_fhir_base: str) -> list[tuple[dict[str, Any], str, str, str]]:
    """What `_include=Task:patient` and `_include=Task:focus` add to a page of Tasks, answered from what
    coordination holds: the patient as the front door last sent it, and the focus ServiceRequest as far as the
    routing order tells it (domain/task_content.referral_summary). Only for Tasks the caller may see (`may_see`:
    owner, requester, case manager); each item is (resource, fullUrl, pseudonym, Task id) for the caller's
    audit. A patient or request coordination does not hold is left out."""
    base = front_door_fhir_base.rstrip("/")
    ids = [t["id"] for t in tasks]
    records = {r.id: r for r in (await session.execute(select(TaskRecord).where(
        TaskRecord.id.in_(ids)))).scalars()} if ids else {}  # type: ignore[attr-defined]
    found: dict[str, tuple[dict[str, Any], str, str, str]] = {}
    for task in tasks:
        record = records.get(task["id"])
        if record is None or not may_see(caller, record):
            continue
        if "Task:patient" in include:
            reference = str((task.get("for") or {}).get("reference", ""))
            patient = await patients.by_id(session, reference.removeprefix(f"{base}/Patient/")) \
                if reference.startswith(f"{base}/Patient/") else None
            patient = patient or await patients.by_pseudonym(session, record.pseudonym)
            if patient is not None:
                url = f"{base}/Patient/{patient.id}"
                found.setdefault(url, (patients.resource(patient), url, record.pseudonym, record.id))
        focus_url = str((task.get("focus") or {}).get("reference", ""))
        if "Task:focus" in include and focus_url.startswith(f"{base}/ServiceRequest/") and focus_url not in found:
            routed = await session.get(RoutedRequest, record.acute_request_id)
            if routed is None:
                continue
            routing = task_content.read_order(loads(routed.order))
            summary = task_content.referral_summary(routing, front_door_fhir_base=base,
                                                    closed=routed.status == "closed")
            if summary is not None and f"{base}/ServiceRequest/{summary['id']}" == focus_url:
                found[focus_url] = (summary, focus_url, record.pseudonym, record.id)
    return list(found.values())


ENCOUNTER_SEARCH = {parameter.name: parameter for parameter in (
    search.reference("patient", EncounterRecord.pseudonym, read=searched_pseudonym, identifier=True, missing=False,
                     required=True, documentation=f"Encounter.subject, the patient by pseudonym: <pseudonym> or "
                                                  f"{PSEUDONYM_SYSTEM}|<pseudonym>."),
)}


async def search_encounters(session: AsyncSession, *, caller: Caller,
                            request: search.Search) -> tuple[list[dict[str, Any]], int]:
    """One page of the delivered contacts (Encounters) that meet `ENCOUNTER_SEARCH`, earliest first, and how many
    match in all; a partner sees those its organisation performed."""
    query = select(EncounterRecord).where(*request.conditions(ENCOUNTER_SEARCH))
    if caller.org != FRONT_DOOR.token and caller.role != "casemanager":
        query = query.where(EncounterRecord.performer == caller.org)
    page = await search.fetch(session, query, count=request.count, offset=request.offset,
                              order_by=(EncounterRecord.start, EncounterRecord.id))
    return [loads(r.content) for r in page.rows], page.total


async def flag_overdue(session: AsyncSession, *, now: datetime | None = None, limit: int = 200) -> int:
    """The scheduled deadline check: each Task past its due time and not terminal is reported once."""
    moment = now or _now()
    rows = list((await session.execute(select(TaskRecord).where(
        TaskRecord.status.not_in(TERMINAL), TaskRecord.overdue_flagged_at.is_(None),  # type: ignore[attr-defined,union-attr]
        TaskRecord.due_at < moment).limit(limit))).scalars())
    for record in rows:
        record.overdue_flagged_at = moment
        session.add(record)
        enqueue(session, events.task_overdue(loads(record.content), pseudonym=record.pseudonym))
    return len(rows)


async def overdue(session: AsyncSession, *, now: datetime | None = None) -> list[TaskRecord]:
    moment = now or _now()
    rows = (await session.execute(select(TaskRecord).where(
        TaskRecord.status.not_in(TERMINAL)).order_by(TaskRecord.due_at))).scalars()  # type: ignore[attr-defined]
    return [r for r in rows if _aware(r.due_at) < moment]
