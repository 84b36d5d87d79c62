"""FHIR R4 endpoints of coordination: Task search, read and PATCH by partners; Encounters per patient."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from services.coordination import episodes, notifications, service
from shared import audit
from shared.auth import Caller, require_scope
from shared.fhir import FHIR_JSON, FhirError, Issue, loads
from shared.identifiers import org_token, parse_org
from shared.responses import FhirJSONResponse

router = APIRouter(prefix="/fhir", tags=["FHIR"])


def _fhir(body: dict[str, Any], status_code: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return FhirJSONResponse(body, status_code=status_code, headers=headers)


def _searchset(request: Request, resources: list[dict[str, Any]],
               included: list[tuple[dict[str, Any], str]] | None = None) -> JSONResponse:
    """A searchset of the matches, then the included resources (each with its absolute fullUrl)."""
    return _fhir({"resourceType": "Bundle", "type": "searchset", "total": len(resources),
                  "link": [{"relation": "self", "url": str(request.url)}],
                  "entry": [{"fullUrl": f"{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "match"}}
                            for r in resources]
                  + [{"fullUrl": url, "resource": r, "search": {"mode": "include"}} for r, url in included or []]})


def _includes(values: list[str] | None) -> set[str]:
    unknown = [v for v in values or [] if v not in service.INCLUDES]
    if unknown:
        raise FhirError(400, Issue("error", "not-supported", f"_include {unknown[0]!r} is not supported; supported: "
                                                             f"{', '.join(service.INCLUDES)}", ("_include",)))
    return set(values or [])


def _owner_param(value: str) -> str:
    try:
        return org_token(*parse_org(value.removeprefix("Organization?identifier=")))
    except ValueError as exc:
        raise FhirError(400, Issue("error", "value", f"owner: {exc}", ("owner",))) from exc


def _since(value: str | None) -> datetime | None:
    if not value:
        return None
    raw = value[2:] if value[:2] in ("ge", "gt") else value
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise FhirError(400, Issue("error", "value", "_lastUpdated must be ge<ISO 8601 dateTime>",
                                   ("_lastUpdated",))) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@router.get("/metadata")
async def metadata(request: Request) -> JSONResponse:
    return _fhir({"resourceType": "CapabilityStatement", "status": "active", "date": "2026-11-22", "kind": "instance",
                  "fhirVersion": "4.0.1", "format": [FHIR_JSON],
                  "software": {"name": "Regiozorg coordination"},
                  "rest": [{"mode": "server", "resource": [
                      {"type": "Task", "interaction": [{"code": c} for c in (
                          "read", "vread", "history-instance", "search-type", "patch", "update")],
                       "versioning": "versioned-update", "updateCreate": False,
                       "searchInclude": list(service.INCLUDES),
                       "documentation": "`_include=Task:patient` and `_include=Task:focus` are answered by "
                                        "coordination from what it holds, for the Tasks the caller may see (owner, "
                                        "requester, case manager): the Patient as the front door last sent it "
                                        "(fullUrl on the front door's FHIR base), and the focus ServiceRequest as "
                                        "far as the routing order tells it (tagged SUBSETTED; the front door holds "
                                        "the whole). Every included resource is an audited read.",
                       "searchParam": [{"name": n, "type": t} for n, t in (
                           ("_id", "token"), ("owner", "reference"), ("requester", "reference"), ("status", "token"),
                           ("patient", "reference"), ("focus", "reference"), ("_lastUpdated", "date"),
                           ("_count", "number"), ("_offset", "number"))]},
                      {"type": "Subscription", "interaction": [{"code": c} for c in ("create", "read", "delete")]},
                      {"type": "Encounter", "interaction": [{"code": "search-type"}],
                       "searchParam": [{"name": "patient", "type": "reference"}]}]}]})


@router.get("/Task")
async def search_tasks(request: Request, caller: Caller = require_scope(resource="Task", action="s"),
                       owner: str | None = None, status: str | None = None, patient: str | None = None,
                       requester: str | None = None, focus: str | None = None,
                       ids: Annotated[str | None, Query(alias="_id", max_length=2000)] = None,
                       include: Annotated[list[str] | None, Query(alias="_include")] = None,
                       last_updated: Annotated[str | None, Query(alias="_lastUpdated")] = None,
                       count: Annotated[int, Query(alias="_count", ge=1, le=500)] = 50,
                       offset: Annotated[int, Query(alias="_offset", ge=0)] = 0) -> JSONResponse:
    includes = _includes(include)
    async with request.app.state.runtime.sessions() as session:
        found = await service.search_tasks(session, caller=caller, owner=_owner_param(owner) if owner else None,
                                           status=status, patient=patient, last_updated=_since(last_updated),
                                           count=count, offset=offset, focus=focus, ids=ids,
                                           requester=_owner_param(requester) if requester else None)
        extra = await service.included(session, caller=caller, tasks=found[:count], include=includes,
                                       front_door_fhir_base=request.app.state.settings.front_door_fhir_base) \
            if includes else []
    await audit.for_request(request, subtype="search", entity=f"Task?{request.url.query}",
                            patient=patient.split("|")[-1] if patient else None)
    for resource, _url, pseudonym, task_id in extra:
        await audit.for_request(request, subtype="read", patient=pseudonym,
                                entity=f"{resource['resourceType']}/{resource['id']} (_include of Task/{task_id})")
    page = _searchset(request, found[:count], [(resource, url) for resource, url, *_ in extra])
    if len(found) > count:
        page_body = json.loads(page.body)
        page_body["link"].append({"relation": "next", "url": str(request.url.include_query_params(
            _offset=offset + count))})
        return _fhir(page_body)
    return page


@router.get("/Task/{task_id}/_history")
async def task_history(task_id: str, request: Request,
                       caller: Caller = require_scope(resource="Task", action="r")) -> JSONResponse:
    async with request.app.state.runtime.sessions() as session:
        versions = await service.history(session, task_id=task_id, caller=caller)
    await audit.for_request(request, subtype="read", entity=f"Task/{task_id}/_history",
                            patient=versions[0]["for"]["identifier"]["value"] if versions else None)
    return _fhir({"resourceType": "Bundle", "type": "history", "total": len(versions),
                  "entry": [{"fullUrl": f"Task/{v['id']}/_history/{v['meta']['versionId']}", "resource": v}
                            for v in versions]})


@router.get("/Task/{task_id}/_history/{version_id}")
async def task_version(task_id: str, version_id: int, request: Request,
                       caller: Caller = require_scope(resource="Task", action="r")) -> JSONResponse:
    async with request.app.state.runtime.sessions() as session:
        task = await service.version(session, task_id=task_id, version_id=version_id, caller=caller)
    await audit.for_request(request, subtype="read", entity=f"Task/{task_id}/_history/{version_id}",
                            patient=task["for"]["identifier"]["value"])
    return _fhir(task, headers={"ETag": f'W/"{version_id}"'})


@router.put("/Task/{task_id}")
async def update_task(task_id: str, request: Request,
                      caller: Caller = require_scope(resource="Task", action="u")) -> JSONResponse:
    """A whole Task with If-Match: checked by the same rules as a patch of what differs."""
    if_match = request.headers.get("if-match")
    if not if_match:
        raise FhirError(428, Issue("error", "required", "PUT needs If-Match with the version you read"))
    try:
        body = json.loads(await request.body())
    except ValueError as exc:
        raise FhirError(400, Issue("error", "structure", "the body is not JSON")) from exc
    state = request.app.state
    async with state.runtime.sessions() as session, session.begin():
        current = await service.get_task(session, task_id, caller)
        operations = service.json_patch_for_update(loads(current.content), body if isinstance(body, dict) else {},
                                                   task_id)
        task = await service.patch_task(session, task_id=task_id, operations=operations, if_match=if_match,
                                        caller=caller, codesystem_base=state.settings.codesystem_base,
                                        traceparent=request.headers.get("traceparent"))
        await audit.record(session, service="coordination", caller=caller, subtype="update",
                           entity=f"Task/{task_id} (PUT) → {task['status']}",
                           patient=task["for"]["identifier"]["value"])
    state.runtime.relay.wake()
    return _fhir(task, headers={"ETag": f'W/"{task["meta"]["versionId"]}"'})


@router.get("/Task/{task_id}")
async def read_task(task_id: str, request: Request,
                    caller: Caller = require_scope(resource="Task", action="r")) -> JSONResponse:
    async with request.app.state.runtime.sessions() as session:
        record = await service.get_task(session, task_id, caller)
    await audit.for_request(request, subtype="read", entity=f"Task/{task_id}", patient=record.pseudonym)
    return _fhir(loads(record.content), headers={"ETag": f'W/"{record.version}"'})


@router.patch("/Task/{task_id}")
async def patch_task(task_id: str, request: Request,
                     caller: Caller = require_scope(resource="Task", action="u")) -> JSONResponse:
    content_type = request.headers.get("content-type", "")
    if "json-patch+json" not in content_type and "fhir+json" not in content_type:
        raise FhirError(415, Issue("error", "not-supported", "PATCH takes application/json-patch+json (JSON Patch) "
                                                             "or application/fhir+json (FHIRPath Patch)"))
    try:
        body = json.loads(await request.body())
    except ValueError as exc:
        raise FhirError(400, Issue("error", "structure", "the body is not JSON")) from exc
    if "fhir+json" in content_type:
        operations = service.fhirpath_patch_to_json_patch(body if isinstance(body, dict) else {})
    elif isinstance(body, list):
        operations = body
    else:
        raise FhirError(400, Issue("error", "structure", "a JSON Patch is an array of operations"))
    state = request.app.state
    async with state.runtime.sessions() as session, session.begin():
        task = await service.patch_task(session, task_id=task_id, operations=operations,
                                        if_match=request.headers.get("if-match"), caller=caller,
                                        codesystem_base=state.settings.codesystem_base,
                                        traceparent=request.headers.get("traceparent"))
        await audit.record(session, service="coordination", caller=caller, subtype="update",
                           entity=f"Task/{task_id} → {task['status']}", patient=task["for"]["identifier"]["value"])
    state.runtime.relay.wake()
    return _fhir(task, headers={"ETag": f'W/"{task["meta"]["versionId"]}"'})


@router.post("/Subscription", status_code=201)
async def create_subscription(request: Request,
                              caller: Caller = require_scope(resource="Subscription", action="c")) -> JSONResponse:
    try:
        body = json.loads(await request.body())
    except ValueError as exc:
        raise FhirError(400, Issue("error", "structure", "the body is not JSON")) from exc
    async with request.app.state.runtime.sessions() as session, session.begin():
        record = await notifications.create(session, body=body if isinstance(body, dict) else {}, caller=caller)
    return _fhir(notifications.resource(record), status_code=201,
                 headers={"Location": f"{request.app.state.settings.public_url}/fhir/Subscription/{record.id}"})


@router.get("/Subscription/{subscription_id}")
async def read_subscription(subscription_id: str, request: Request,
                            caller: Caller = require_scope(resource="Subscription", action="r")) -> JSONResponse:
    async with request.app.state.runtime.sessions() as session:
        record = await notifications.get(session, subscription_id=subscription_id, caller=caller)
    return _fhir(notifications.resource(record))


@router.delete("/Subscription/{subscription_id}")
async def delete_subscription(subscription_id: str, request: Request,
                              caller: Caller = require_scope(resource="Subscription", action="d")) -> JSONResponse:
    async with request.app.state.runtime.sessions() as session, session.begin():
        record = await notifications.get(session, subscription_id=subscription_id, caller=caller)
        record.status = "off"
        session.add(record)
    return _fhir(notifications.resource(record))


@router.get("/EpisodeOfCare")
async def search_episodes(request: Request, patient: str,
                          caller: Caller = require_scope(scope="coordination.write")) -> JSONResponse:
    pseudonym = patient.split("|")[-1]
    async with request.app.state.runtime.sessions() as session:
        found = await episodes.episodes_of(session, pseudonym)
    await audit.for_request(request, subtype="search", entity="EpisodeOfCare?patient", patient=pseudonym)
    return _searchset(request, [episodes.episode_resource(e, request.app.state.settings.public_url) for e in found])


@router.get("/Encounter")
async def search_encounters(request: Request, patient: str,
                            caller: Caller = require_scope(resource="Task", action="s")) -> JSONResponse:
    async with request.app.state.runtime.sessions() as session:
        found = await service.encounters_of(session, caller=caller, patient=patient)
    await audit.for_request(request, subtype="search", entity="Encounter?patient", patient=patient.split("|")[-1])
    return _searchset(request, found)
