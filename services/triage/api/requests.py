"""JSON API of the front door used by the console and by automation: worklist, contacts, triage."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from services.triage import service
from services.triage.models import AcuteRequest
from shared import audit
from shared.auth import Caller, require_scope

router = APIRouter(prefix="/api/v1", tags=["front door"])


class WorklistItem(BaseModel):
    id: str
    service_request: str | None
    patient: str
    channel: str
    status: str
    urgency: str | None
    disposition: str | None
    assigned_organization: str | None
    received_at: datetime
    due_at: datetime | None


def item(r: AcuteRequest) -> WorklistItem:
    def aware(m: datetime | None) -> datetime | None:
        return m if m is None or m.tzinfo else m.replace(tzinfo=UTC)

    return WorklistItem(id=r.id, service_request=f"ServiceRequest/{r.service_request_id}" if r.service_request_id
                        else None, patient=r.pseudonym, channel=r.channel, status=r.status, urgency=r.urgency,
                        disposition=r.disposition, assigned_organization=r.assigned_org,
                        received_at=aware(r.received_at), due_at=aware(r.due_at))  # type: ignore[arg-type]


@router.get("/worklist")
async def worklist(request: Request, caller: Caller = require_scope(scope="triage.write"),
                   status: Annotated[str, Query(pattern=r"^(open|triaged|closed)(,(open|triaged|closed))*$")] = "open",
                   ) -> dict[str, list[WorklistItem]]:
    async with request.app.state.runtime.sessions() as session:
        rows = await service.worklist(session, statuses=tuple(status.split(",")))
    await audit.for_request(request, subtype="search", entity=f"worklist?status={status}")
    return {"items": [item(r) for r in rows]}


class PatientIn(BaseModel):
    bsn: str | None = Field(None, pattern=r"^\d{9}$")
    name: str = Field("", max_length=300)
    birth_date: str | None = Field(None, pattern=r"^\d{4}-\d{2}-\d{2}$")


class AddressIn(BaseModel):
    line: str = Field("", max_length=200, description="street and house number")
    postal_code: str = Field("", max_length=10)
    city: str = Field("", max_length=100)


class ContactIn(BaseModel):
    channel: Literal["phone", "walk-in"]
    patient: PatientIn
    uzovi: str | None = Field(None, pattern=r"^\d{4}$")
    complaint: str = Field("", max_length=2000)
    caller: Literal["patient", "relative", "carer", "professional"] = "patient"
    callback_phone: str | None = Field(None, max_length=32,
                                       description="the number to call back: the patient's own when the patient "
                                                   "called, else the caller's")
    address: AddressIn | None = Field(None, description="the patient's home address")


@router.post("/requests", status_code=201)
async def record_contact(body: ContactIn, request: Request,
                         caller: Caller = require_scope(scope="triage.write")) -> dict[str, object]:
    async with request.app.state.runtime.sessions() as session, session.begin():
        acute, linked = await service.record_contact(
            session, contact=service.ContactInput(
                channel=body.channel, bsn=body.patient.bsn, name=body.patient.name,
                birth_date=body.patient.birth_date, uzovi=body.uzovi, complaint=body.complaint, caller=body.caller,
                callback_phone=body.callback_phone,
                address=service.Address(**body.address.model_dump()) if body.address else None),
            caller=caller, pseudonym_key=request.app.state.settings.pseudonym_key_bytes,
            traceparent=request.headers.get("traceparent"))
        await audit.record(session, service="triage", caller=caller, subtype="create",
                           entity=f"{body.channel} contact for acute request {acute.id}", patient=acute.pseudonym)
    request.app.state.runtime.relay.wake()
    return {"request": item(acute).model_dump(mode="json"), "linked_to_open_request": linked}


class TriageIn(BaseModel):
    urgency: str
    disposition: str
    assigned_organization: str
    note: str = Field("", max_length=4000)
    retriage_reason: str | None = Field(None, max_length=500, description="to triage a triaged request again")
    closed_reason: str | None = Field(None, max_length=500,
                                      description="required to route to an organisation the directory has closed "
                                                  "at the due time; recorded with the triage")


@router.post("/requests/{request_id}/triage", response_model=WorklistItem)
async def triage(request_id: str, body: TriageIn, request: Request,
                 caller: Caller = require_scope(scope="triage.write")) -> Response:
    state = request.app.state
    async with state.runtime.sessions() as session, session.begin():
        acute = await service.triage(session, request_id=request_id,
                                     decision=service.TriageInput(**body.model_dump()), caller=caller,
                                     codesystem_base=state.settings.codesystem_base,
                                     traceparent=request.headers.get("traceparent"))
        await audit.record(session, service="triage", caller=caller, subtype="update",
                           entity=f"triage of acute request {request_id}", patient=acute.pseudonym)
    state.runtime.relay.wake()
    # Serialised here, as built: FastAPI would validate the model a second time on its way out.
    return Response(item(acute).model_dump_json(), media_type="application/json")


class LinkedContactOut(BaseModel):
    channel: str
    received_at: datetime
    complaint: str
    caller: str | None
    callback_phone: str | None
    service_request: str | None


class TriageOut(BaseModel):
    urgency: str
    disposition: str
    assigned_organization: str
    note: str
    decided_by: str
    decided_at: datetime
    retriage_reason: str | None
    closed_reason: str | None


class RequestDetail(WorklistItem):
    complaint: str
    contacts: list[LinkedContactOut]
    triages: list[TriageOut]


@router.get("/requests/{request_id}")
async def read_request(request_id: str, request: Request,
                       caller: Caller = require_scope(scope="triage.write")) -> RequestDetail:
    """One acute request with every contact linked to it (what each said, who called, the callback number) and
    every triage, oldest first."""
    async with request.app.state.runtime.sessions() as session:
        acute, contacts, decisions = await service.request_details(session, request_id)

    def utc(m: datetime) -> datetime:
        return m if m.tzinfo else m.replace(tzinfo=UTC)

    await audit.for_request(request, subtype="read", entity=f"acute request {request_id}", patient=acute.pseudonym)
    return RequestDetail(**item(acute).model_dump(), complaint=acute.complaint, contacts=[LinkedContactOut(
        channel=c.channel, received_at=utc(c.received_at), complaint=c.complaint, caller=c.caller,
        callback_phone=c.callback_phone,
        service_request=f"ServiceRequest/{c.service_request_id}" if c.service_request_id else None) for c in contacts],
        triages=[TriageOut(urgency=d.urgency, disposition=d.disposition, assigned_organization=d.assigned_org,
                           note=d.note, decided_by=d.decided_by, decided_at=utc(d.decided_at),
                           retriage_reason=d.retriage_reason, closed_reason=d.closed_reason) for d in decisions])


@router.get("/directory")
async def directory(request: Request, caller: Caller = require_scope(scope="triage.write")) -> dict[str, object]:
    async with request.app.state.runtime.sessions() as session:
        return {"organizations": await service.directory(session)}
