"""JSON API of coordination for case managers and automation: overdue work, timelines, the lead role."""

from __future__ import annotations

import json
from datetime import UTC
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from services.coordination import episodes, patients, service
from services.coordination.models import CoordinatedPatient, EpisodeRecord
from shared import audit
from shared.auth import Caller, require_scope
from shared.fhir import FhirError, Issue
from shared.identifiers import is_valid_bsn

router = APIRouter(prefix="/api/v1", tags=["coordination"])


@router.get("/overdue")
async def overdue(request: Request, caller: Caller = require_scope(scope="coordination.write")) -> dict[str, object]:
    async with request.app.state.runtime.sessions() as session:
        rows = await service.overdue(session)
    await audit.for_request(request, subtype="search", entity="overdue Tasks")
    return {"items": [{"task": f"Task/{r.id}", "owner": r.owner, "status": r.status, "patient": r.pseudonym,
                       "due_at": (r.due_at if r.due_at.tzinfo else r.due_at.replace(tzinfo=UTC)).isoformat()}
                      for r in rows]}


def _patient_json(row: CoordinatedPatient, front_door_fhir_base: str) -> dict[str, object]:
    return {"patient": row.pseudonym, "reference": f"{front_door_fhir_base}/Patient/{row.id}",
            **patients.person(row).as_json()}


@router.get("/patients")
async def find_patients(request: Request, caller: Caller = require_scope(scope="coordination.write"),
                        name: Annotated[str | None, Query(max_length=200)] = None,
                        birthdate: Annotated[str | None, Query(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")] = None,
                        bsn: Annotated[str | None, Query(pattern=r"^[0-9]{9}$")] = None) -> dict[str, object]:
    """Case managers find a patient coordination holds Tasks for: by BSN, or by (part of) the name and the birth
    date together. Each patient found is an audited search; so is a search that found nobody."""
    if bsn and not is_valid_bsn(bsn):
        raise FhirError(400, Issue("error", "value", "bsn fails the 11-proof", ("bsn",)))
    async with request.app.state.runtime.sessions() as session:
        try:
            found = await patients.search(session, name=name, birth_date=birthdate, bsn=bsn)
        except ValueError as exc:
            raise FhirError(400, Issue("error", "required", str(exc), ("name", "birthdate", "bsn"))) from exc
    what = "patient search by BSN" if bsn else "patient search by name and birth date"
    for row in found or [None]:
        await audit.for_request(request, subtype="search", entity=what, patient=row.pseudonym if row else None)
    base = request.app.state.settings.front_door_fhir_base
    return {"items": [_patient_json(row, base) for row in found]}


@router.get("/patients/{pseudonym}/timeline")
async def timeline(pseudonym: str, request: Request,
                   caller: Caller = require_scope(scope="coordination.write")) -> dict[str, object]:
    """The patient's timeline, episodes and acute requests, named: `person` is what coordination knows of them
    (null until the front door has told it)."""
    async with request.app.state.runtime.sessions() as session:
        entries = await episodes.timeline(session, pseudonym)
        cases = await episodes.episodes_of(session, pseudonym)
        known = await patients.by_pseudonym(session, pseudonym)
        requests = await service.routed_requests(session, pseudonyms=[pseudonym])
    await audit.for_request(request, subtype="read", entity="timeline", patient=pseudonym)
    base = request.app.state.settings.front_door_fhir_base
    return {"patient": pseudonym, "person": _patient_json(known, base) if known else None,
            "requests": [r.as_json() for r in requests],
            "episodes": [episodes.episode_resource(e, request.app.state.settings.public_url) for e in cases],
            "items": [{"at": (e.at if e.at.tzinfo else e.at.replace(tzinfo=UTC)).isoformat(), "kind": e.kind,
                       "organization": e.organisation, "actor": e.actor, "text": e.text, "reference": e.reference,
                       "facts": json.loads(e.facts) if e.facts else None}
                      for e in entries]}


class HandoverIn(BaseModel):
    to: str = Field(description='the new hoofdbehandelaar organisation, e.g. "URA 90000010"')
    reason: str = Field(min_length=3, max_length=500)


def _handover_json(h: object) -> dict[str, object]:
    return {k: getattr(h, k) for k in ("id", "episode_id", "from_lead", "to_lead", "reason", "status",
                                       "proposed_by", "decided_by")}


@router.post("/episodes/{episode_id}/lead-practitioner", status_code=201)
async def propose(episode_id: str, body: HandoverIn, request: Request,
                  caller: Caller = require_scope(scope="coordination.write")) -> dict[str, object]:
    async with request.app.state.runtime.sessions() as session, session.begin():
        handover = await episodes.propose_handover(session, episode_id=episode_id, to=body.to, reason=body.reason,
                                                   caller=caller)
        await audit.record(session, service="coordination", caller=caller, subtype="update",
                           entity=f"hoofdbehandelaar handover proposed for EpisodeOfCare/{episode_id}",
                           patient=await _pseudonym(session, episode_id))
    return _handover_json(handover)


async def _pseudonym(session, episode_id: str) -> str | None:  # type: ignore[no-untyped-def]
    episode = await session.get(EpisodeRecord, episode_id)
    return episode.pseudonym if episode else None


@router.get("/lead-handovers")
async def waiting(request: Request, caller: Caller = require_scope(resource="Task", action="r")) -> dict[str, object]:
    """Handovers of the hoofdbehandelaar role waiting for the calling organisation's answer."""
    async with request.app.state.runtime.sessions() as session:
        found = await episodes.proposals_for(session, caller.org)
    return {"items": [_handover_json(h) for h in found]}


@router.post("/lead-handovers/{handover_id}/{decision}")
async def decide(handover_id: str, decision: str, request: Request,
                 caller: Caller = require_scope(resource="Task", action="u")) -> dict[str, object]:
    """The receiving organisation answers with its own token: accept or decline."""
    if decision not in ("accept", "decline"):
        raise FhirError(404, Issue("error", "not-found", "use /accept or /decline"))
    async with request.app.state.runtime.sessions() as session, session.begin():
        handover = await episodes.decide_handover(session, handover_id=handover_id, accept=decision == "accept",
                                                  caller=caller)
        await audit.record(session, service="coordination", caller=caller, subtype="update",
                           entity=f"hoofdbehandelaar handover {decision}ed",
                           patient=await _pseudonym(session, handover.episode_id))
    return _handover_json(handover)
