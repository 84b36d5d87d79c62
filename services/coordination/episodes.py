"""Episodes of care, the hoofdbehandelaar handover, and one timeline per patient across organisations.

The lead role (hoofdbehandelaar) changes only by an explicit handover: a case manager or the current lead
proposes it, the receiving organisation accepts (or declines) it, and every step is on the timeline and in
the audit log.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination.models import EpisodeRecord, LeadHandover, TimelineEntry
from shared import search
from shared.auth import Caller
from shared.bus.consumer import PoisonMessage
from shared.bus.envelope import Event
from shared.fhir import FhirError, Issue
from shared.identifiers import PSEUDONYM_SYSTEM, parse_org, searched_pseudonym
from shared.region import ORGANISATIONS, organisation
from shared.writes import Writes

ACUTE_CARE = "acute zorg"
NAMES = {o.token: o.name for o in ORGANISATIONS}


def _now() -> datetime:
    return datetime.now(UTC)


def name_of(token: str | None) -> str:
    return NAMES.get(token or "", token or "–")


def note(session: AsyncSession, *, pseudonym: str, at: datetime, kind: str, text: str,
         organisation_token: str | None = None, actor: str | None = None, reference: str | None = None,
         facts: dict[str, Any] | None = None) -> None:
    """One entry on the patient's timeline: `text` the Dutch sentence of record, `facts` what happened as data
    (`{"event": ..., ...}`, read by console/timeline.py to say it in the console's language)."""
    session.add(TimelineEntry(pseudonym=pseudonym, at=at, kind=kind, text=text, organisation=organisation_token,
                              actor=actor, reference=reference,
                              facts=json.dumps(facts, ensure_ascii=False) if facts is not None else None))


async def on_referral_received(session: AsyncSession, event: Event) -> None:
    referral = event.json()
    try:
        pseudonym = referral["subject"]["identifier"]["value"]
        authored = referral.get("authoredOn")
        at = datetime.fromisoformat(authored).astimezone(UTC) if authored else event.time
    except (KeyError, TypeError, ValueError) as exc:
        raise PoisonMessage(f"referral-received value unreadable: {exc.__class__.__name__}") from exc
    reasons = "; ".join(r.get("text", "") for r in referral.get("reasonCode", []) or [] if r.get("text"))
    note(session, pseudonym=pseudonym, at=at, kind="referral", reference=event.subject,
         text=f"verwijzing ontvangen: {reasons or 'zonder reden'}", facts={"event": "referral", "reasons": reasons})


def episode_resource(episode: EpisodeRecord, base_url: str) -> dict[str, Any]:
    team = json.loads(episode.care_team)
    resource: dict[str, Any] = {
        "resourceType": "EpisodeOfCare", "id": episode.id, "status": episode.status,
        "type": [{"text": episode.condition}],
        "patient": {"identifier": {"system": PSEUDONYM_SYSTEM, "value": episode.pseudonym}},
        "period": {"start": episode.started_at.isoformat()},
        "team": [{"display": "zorgteam: " + ", ".join(name_of(t) for t in team)}],
        "extension": [{"url": "https://regiozorg.example/fhir/StructureDefinition/hoofdbehandelaar",
                       "valueReference": {"identifier": dict(zip(("system", "value"), (episode.lead or "|").split("|"),
                                                                strict=True)), "display": name_of(episode.lead)}}],
    }
    if episode.case_manager:
        resource["careManager"] = {"display": episode.case_manager}
    return resource


async def episodes_of(session: AsyncSession, pseudonym: str) -> list[EpisodeRecord]:
    return list((await session.execute(select(EpisodeRecord).where(EpisodeRecord.pseudonym == pseudonym)
                                       .order_by(EpisodeRecord.started_at))).scalars())


SEARCH = {parameter.name: parameter for parameter in (
    search.reference("patient", EpisodeRecord.pseudonym, read=searched_pseudonym, identifier=True, missing=False,
                     required=True, documentation=f"EpisodeOfCare.patient, by pseudonym: <pseudonym> or "
                                                  f"{PSEUDONYM_SYSTEM}|<pseudonym>."),
)}


async def search_episodes(session: AsyncSession, *, request: search.Search) -> tuple[list[EpisodeRecord], int]:
    """One page of the episodes that meet `SEARCH`, earliest first, and how many match in all."""
    page = await search.fetch(session, select(EpisodeRecord).where(*request.conditions(SEARCH)),
                              order_by=(EpisodeRecord.started_at, EpisodeRecord.id), count=request.count,
                              offset=request.offset)
    return page.rows, page.total


async def _episode(session: AsyncSession, episode_id: str) -> EpisodeRecord:
    episode = await session.get(EpisodeRecord, episode_id, with_for_update=True)
    if episode is None:
        raise FhirError(404, Issue("error", "not-found", f"EpisodeOfCare/{episode_id} is not known"))
    return episode


async def propose_handover(session: AsyncSession, *, episode_id: str, to: str, reason: str,
                           caller: Caller) -> LeadHandover:
    episode = await _episode(session, episode_id)
    is_case_manager = caller.role in ("casemanager", "beheer") or "coordination.write" in caller.scopes
    if not is_case_manager and caller.org != episode.lead:
        raise FhirError(403, Issue("error", "forbidden", "a case manager or the current lead proposes a handover"))
    try:
        target = organisation(*parse_org(to))
    except ValueError as exc:
        raise FhirError(422, Issue("error", "value", str(exc), ("to",))) from exc
    if target is None or target.kind == "insurer" or target.token == episode.lead:
        raise FhirError(422, Issue("error", "business-rule", "the new lead must be another care provider in the "
                                                             "region's directory", ("to",)))
    if not reason.strip():
        raise FhirError(422, Issue("error", "required", "a handover needs a reason", ("reason",)))
    open_proposals = (await session.execute(select(LeadHandover).where(
        LeadHandover.episode_id == episode_id, LeadHandover.status == "proposed"))).scalars().first()
    if open_proposals is not None:
        raise FhirError(409, Issue("error", "conflict", "a handover is already waiting for an answer"))
    now = _now()
    handover = LeadHandover(id=uuid.uuid4().hex, episode_id=episode_id, from_lead=episode.lead, to_lead=target.token,
                            reason=reason, proposed_by=caller.subject, proposed_at=now)
    session.add(handover)
    note(session, pseudonym=episode.pseudonym, at=now, kind="handover", actor=caller.subject,
         organisation_token=episode.lead,
         text=f"overdracht hoofdbehandelaarschap voorgesteld: {name_of(episode.lead)} → {target.name} ({reason})",
         facts={"event": "lead-proposed", "from": episode.lead, "to": target.token, "reason": reason})
    return handover


async def decide_handover(session: AsyncSession, *, handover_id: str, accept: bool, caller: Caller) -> LeadHandover:
    handover = await session.get(LeadHandover, handover_id, with_for_update=True)
    if handover is None:
        raise FhirError(404, Issue("error", "not-found", f"handover {handover_id} is not known"))
    if caller.org != handover.to_lead:
        raise FhirError(403, Issue("error", "forbidden", "only the receiving organisation accepts or declines"))
    if handover.status != "proposed":
        raise FhirError(409, Issue("error", "conflict", f"the handover was already {handover.status}"))
    episode = await _episode(session, handover.episode_id)
    now = _now()
    handover.status, handover.decided_by, handover.decided_at = ("accepted" if accept else "declined",
                                                                 caller.subject, now)
    session.add(handover)
    if accept:
        episode.lead = handover.to_lead
        team = json.loads(episode.care_team)
        if handover.to_lead not in team:
            episode.care_team = json.dumps([*team, handover.to_lead])
        session.add(episode)
    note(session, pseudonym=episode.pseudonym, at=now, kind="handover", actor=caller.subject,
         organisation_token=handover.to_lead,
         text=f"overdracht {'geaccepteerd' if accept else 'afgewezen'} door {name_of(handover.to_lead)}",
         facts={"event": "lead-decided", "to": handover.to_lead, "accepted": accept})
    return handover


async def take_case(session: AsyncSession, *, episode_id: str, caller: Caller) -> EpisodeRecord:
    episode = await _episode(session, episode_id)
    episode.case_manager = caller.subject
    session.add(episode)
    note(session, pseudonym=episode.pseudonym, at=_now(), kind="note", actor=caller.subject,
         text=f"{caller.subject} is casemanager", facts={"event": "case-manager", "who": caller.subject})
    return episode


async def timeline(session: AsyncSession, pseudonym: str) -> list[TimelineEntry]:
    return list((await session.execute(select(TimelineEntry).where(TimelineEntry.pseudonym == pseudonym)
                                       .order_by(TimelineEntry.at, TimelineEntry.pk))).scalars())


async def handovers(session: AsyncSession, episode_id: str) -> list[LeadHandover]:
    return list((await session.execute(select(LeadHandover).where(LeadHandover.episode_id == episode_id)
                                       .order_by(LeadHandover.proposed_at))).scalars())


async def proposals_for(session: AsyncSession, org: str) -> list[LeadHandover]:
    """Handovers waiting for this organisation's answer."""
    return list((await session.execute(select(LeadHandover).where(
        LeadHandover.to_lead == org, LeadHandover.status == "proposed").order_by(LeadHandover.proposed_at))).scalars())


async def my_patients(session: AsyncSession, case_manager: str) -> list[EpisodeRecord]:
    return list((await session.execute(select(EpisodeRecord).where(
        EpisodeRecord.case_manager == case_manager, EpisodeRecord.status == "active")
        .order_by(EpisodeRecord.started_at.desc()))).scalars())  # type: ignore[attr-defined]



TIMELINE = TimelineEntry.__table__  # type: ignore[attr-defined]
EPISODE = EpisodeRecord.__table__  # type: ignore[attr-defined]


def note_in(writes: Writes, *, pseudonym: str, at: datetime, kind: str, text: str,
            organisation_token: str | None = None, actor: str | None = None, reference: str | None = None,
            facts: dict[str, Any] | None = None) -> None:
    """`note` for a hot path: the timeline entry goes with the unit of work's other writes (shared.writes)."""
    writes.insert(TIMELINE, pseudonym=pseudonym, at=at, kind=kind, organisation=organisation_token, actor=actor,
                  text=text, reference=reference,
                  facts=json.dumps(facts, ensure_ascii=False) if facts is not None else None)


def _join_template(dialect: str) -> Any:
    upsert = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(EPISODE).values(
        id=bindparam("id"), pseudonym=bindparam("pseudonym"), condition=bindparam("condition"), status="active",
        care_team=bindparam("team"), case_manager=None, lead=bindparam("member"), started_at=bindparam("at"))
    team = EPISODE.c.care_team
    position = func.strpos(team, bindparam("quoted")) if dialect == "postgresql" \
        else func.instr(team, bindparam("quoted"))
    return upsert.on_conflict_do_update(
        index_elements=[EPISODE.c.pseudonym, EPISODE.c.condition],
        set_={"care_team": func.substr(team, 1, func.length(team) - 1).op("||")(bindparam("appended"))},
        where=position == 0)


_JOIN = {dialect: _join_template(dialect) for dialect in ("postgresql", "sqlite")}


def join_episode(writes: Writes, *, dialect: str, pseudonym: str, member: str, at: datetime,
                 condition: str = ACUTE_CARE) -> None:
    """The patient's episode for this condition, with the organisation in its care team, as one statement with the
    unit of work's other writes: made with `member` as lead (the first organisation routed to is the lead until a
    handover) and care team, or, when it exists, `member` appended to its care team (the JSON list `care_team`,
    written as json.dumps writes it) unless it is in it already."""
    quoted = json.dumps(member)
    writes.statement(_JOIN[dialect], {"id": uuid.uuid4().hex, "pseudonym": pseudonym, "condition": condition,
                                      "team": json.dumps([member]), "member": member, "at": at, "quoted": quoted,
                                      "appended": f", {quoted}]"})
