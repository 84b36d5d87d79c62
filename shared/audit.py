"""NEN 7513 audit log: every access to patient data, and every refusal, as an append-only FHIR AuditEvent.

Each service keeps its own log in its own database. The table cannot be changed or emptied:
triggers refuse UPDATE and DELETE on both SQLite and PostgreSQL (made by every service's baseline
migration, `services/<service>/migrations/versions/0001_baseline.py`), and no code path tries.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, Index, Text, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import Field, SQLModel

from shared import rows
from shared import search as fhir_search
from shared.auth import Caller
from shared.identifiers import PSEUDONYM_SYSTEM, searched_pseudonym

log = logging.getLogger(__name__)

ACTIONS = {"create": "C", "read": "R", "update": "U", "delete": "D", "search": "E", "export": "R", "login": "E"}
OUTCOME_SUCCESS, OUTCOME_REFUSED, OUTCOME_ERROR = "0", "4", "8"
PURPOSE_TREATMENT, PURPOSE_OPERATIONS, PURPOSE_PAYMENT = "TREAT", "HOPERAT", "HPAYMT"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"


class AuditRecord(SQLModel, table=True):
    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_patient_recorded", "patient", "recorded"),)

    id: str = Field(primary_key=True, max_length=64)
    recorded: datetime = Field(default_factory=lambda: datetime.now(UTC), index=True)
    service: str = Field(max_length=40)
    action: str = Field(max_length=1)
    subtype: str = Field(max_length=20)
    outcome: str = Field(max_length=2)
    agent: str = Field(max_length=120)
    agent_kind: str = Field(max_length=10)
    agent_org: str = Field(max_length=120)
    agent_role: str | None = Field(default=None, max_length=40)
    patient: str | None = Field(default=None, max_length=64)
    entity: str = Field(max_length=500)
    content: str = Field(sa_column=Column(Text, nullable=False))


def audit_event(*, record_id: str, recorded: datetime, service: str, caller: Caller | None, subtype: str,
                outcome: str, patient: str | None, entity: str, purpose: str,
                description: str | None, granted_by: Sequence[str] = ()) -> dict[str, Any]:
    """The FHIR R4 AuditEvent: who (and for which organisation), what, which patient, when, outcome, why.

    `granted_by`: references ("Task/<id>") of the Tasks whose treatment relationship allowed the access, each an
    entity with the object role "Security Resource" (NEN 7513: on which grant the data was read).
    """
    agent: dict[str, Any] = {"requestor": True,
                             "who": {"identifier": {"value": caller.subject if caller else "anonymous"},
                                     "display": f"{caller.kind if caller else 'unauthenticated'}"},
                             "purposeOfUse": [{"coding": [{"system": ACT_REASON, "code": purpose}]}]}
    if caller is not None:
        system, _, value = caller.org.partition("|")
        agent["who"]["identifier"]["system"] = ("https://regiozorg.example/fhir/NamingSystem/user" if caller.kind ==
                                                "user" else "https://regiozorg.example/fhir/NamingSystem/client")
        agent["onBehalfOf"] = {"identifier": {"system": system, "value": value}}
        if caller.role:
            agent["role"] = [{"text": caller.role}]
    entities: list[dict[str, Any]] = [{"what": {"display": entity}, "type": {
        "system": ENTITY_TYPE, "code": "2", "display": "System Object"}}]
    if patient:
        entities.insert(0, {"what": {"identifier": {"system": PSEUDONYM_SYSTEM, "value": patient}},
                            "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"}})
    entities += [{"what": {"reference": reference},
                  "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
                  "role": {"system": OBJECT_ROLE, "code": "13", "display": "Security Resource"},
                  "description": "the Task whose owner treats this patient: the treatment relationship that "
                                 "allowed this access"} for reference in granted_by]
    event: dict[str, Any] = {
        "resourceType": "AuditEvent", "id": record_id,
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest",
                 "display": "RESTful Operation"},
        "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": subtype}],
        "action": ACTIONS[subtype], "recorded": recorded.isoformat(), "outcome": outcome,
        "agent": [agent],
        "source": {"observer": {"display": f"Regiozorg {service}"}},
        "entity": entities,
    }
    if description:
        event["outcomeDesc"] = description
    return event


def entry(*, service: str, caller: Caller | None, subtype: str, entity: str, patient: str | None = None,
          outcome: str = OUTCOME_SUCCESS, purpose: str = PURPOSE_TREATMENT, description: str | None = None,
          granted_by: Sequence[str] = ()) -> dict[str, Any]:
    """The audit_event row (column values) of one access, made now; `record` adds it to a session, a hot path
    writes it with its other writes (shared.writes)."""
    # Text from a request (a path, a refusal) may hold a NUL, which PostgreSQL cannot store.
    entity, description = entity.replace("\x00", "\\0"), description.replace("\x00", "\\0") if description else None
    record_id = uuid.uuid4().hex
    now = datetime.now(UTC)
    content = audit_event(record_id=record_id, recorded=now, service=service, caller=caller, subtype=subtype,
                          outcome=outcome, patient=patient, entity=entity, purpose=purpose, description=description,
                          granted_by=granted_by)
    return {"id": record_id, "recorded": now, "service": service, "action": ACTIONS[subtype], "subtype": subtype,
            "outcome": outcome, "agent": caller.subject if caller else "anonymous",
            "agent_kind": caller.kind if caller else "none", "agent_org": caller.org if caller else "",
            "agent_role": caller.role if caller else None, "patient": patient, "entity": entity[:500],
            "content": json.dumps(content)}


async def record(session: AsyncSession, *, service: str, caller: Caller | None, subtype: str, entity: str,
                 patient: str | None = None, outcome: str = OUTCOME_SUCCESS, purpose: str = PURPOSE_TREATMENT,
                 description: str | None = None, granted_by: Sequence[str] = ()) -> None:
    """Add an audit event to the caller's transaction (for changes: it commits with them); `granted_by` as in
    `audit_event`. Written at once as a plain row (shared/rows.py), not as an ORM object flushed with the rest: an
    audit event is on every request's path and never read back in the same transaction."""
    await rows.insert(session, AuditRecord.__table__, [entry(  # type: ignore[attr-defined]
        service=service, caller=caller, subtype=subtype, entity=entity, patient=patient, outcome=outcome,
        purpose=purpose, description=description, granted_by=granted_by)])


async def record_now(sessions: async_sessionmaker[AsyncSession], **kwargs: Any) -> None:
    """Audit in a transaction of its own: reads, searches and refusals, which change nothing else."""
    try:
        async with sessions() as session, session.begin():
            await record(session, **kwargs)
    except Exception as exc:  # an access we cannot log must not pass silently
        log.error("writing an audit event failed: %s", exc.__class__.__name__)
        raise


async def search(session: AsyncSession, *, patient: str | None = None, patients: Sequence[str] | None = None,
                 count: int) -> list[dict[str, Any]]:
    """The newest `count` events, of one patient (pseudonym), of any of `patients`, or of all (neither given): the
    admin's console page."""
    query = select(AuditRecord).order_by(AuditRecord.recorded.desc()).limit(count)  # type: ignore[attr-defined]
    wanted = [*([patient] if patient else []), *(patients or [])]
    if wanted:
        query = query.where(AuditRecord.patient.in_(wanted))  # type: ignore[union-attr]
    return [json.loads(r.content) for r in (await session.execute(query)).scalars()]


SEARCH = {parameter.name: parameter for parameter in (
    fhir_search.reference("patient", AuditRecord.patient, read=searched_pseudonym, identifier=True,
                          documentation="The patient the event is about, by pseudonym: <pseudonym> or "
                                        f"{PSEUDONYM_SYSTEM}|<pseudonym>; :missing=true finds events about no "
                                        "patient."),
    fhir_search.date_parameter("date", AuditRecord.recorded, documentation="AuditEvent.recorded."),
)}


async def find(session: AsyncSession, *, request: fhir_search.Search) -> tuple[list[dict[str, Any]], int]:
    """One page of the events that meet every criterion of `SEARCH`, newest first, and how many match in all."""
    query = select(AuditRecord).where(*request.conditions(SEARCH))
    page = await fhir_search.fetch(session, query, count=request.count, offset=request.offset,
                                   order_by=(AuditRecord.recorded.desc(), AuditRecord.id.desc()))  # type: ignore[attr-defined]
    return [json.loads(r.content) for r in page.rows], page.total


async def for_request(request: Any, *, subtype: str, entity: str, patient: str | None = None,
                      purpose: str = PURPOSE_TREATMENT, caller: Caller | None = None,
                      granted_by: Sequence[str] = ()) -> None:
    """Audit a successful read or search made by this request's caller (`granted_by`: the Tasks whose treatment
    relationship allowed it, as in `audit_event`)."""
    state = request.app.state
    await record_now(state.runtime.sessions, service=state.settings.service_name,
                     caller=caller or getattr(request.state, "caller", None), subtype=subtype, entity=entity,
                     patient=patient, purpose=purpose, granted_by=granted_by)


def subtype_of(method: str) -> str:
    return {"GET": "read", "POST": "create", "PUT": "update", "PATCH": "update", "DELETE": "delete"}.get(method, "read")
