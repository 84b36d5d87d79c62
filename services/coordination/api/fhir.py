"""FHIR R4 endpoints of coordination: Task search, read and PATCH by partners; Encounters per patient."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.coordination import episodes, notifications, service
from shared import audit, audit_views, search
from shared.auth import Caller, require_scope
from shared.fhir import FHIR_JSON, FhirError, Issue, loads
from shared.identifiers import searched_pseudonym
from shared.responses import FhirJSONResponse

router = APIRouter(prefix="/fhir", tags=["FHIR"])
PAGE_SIZE, MAX_PAGE_SIZE = 50, 500


def _fhir(body: dict[str, Any], status_code: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return FhirJSONResponse(body, status_code=status_code, headers=headers)


def _searchset(request: Request, resource_type: str, wanted: search.Search, resources: list[dict[str, Any]],
               total: int) -> JSONResponse:
    return _fhir(search.searchset(base=f"{request.app.state.settings.public_url}/fhir", resource_type=resource_type,
                                  search=wanted, total=total, resources=resources))


def _single_patient(wanted: search.Search) -> str | None:
    patients = wanted.values("patient")
    return searched_pseudonym(patients[0]) if len(patients) == 1 else None


@router.get("/metadata")
async def metadata(request: Request) -> JSONResponse:
    paging = search.paging_documentation
    return _fhir({"resourceType": "CapabilityStatement", "status": "active", "date": "2026-11-22", "kind": "instance",
                  "fhirVersion": "4.0.1", "format": [FHIR_JSON],
                  "software": {"name": "Regiozorg coordination"},
                  "implementation": {"description": "Regiozorg coordination",
                                     "url": f"{request.app.state.settings.public_url}/fhir"},
                  "rest": [{"mode": "server", "resource": [
                      {"type": "Task", "interaction": [{"code": c} for c in (
                          "read", "vread", "history-instance", "search-type", "patch", "update")],
                       "versioning": "versioned-update", "updateCreate": False,
                       "searchParam": [p.capability() for p in service.TASK_SEARCH.values()],
                       "documentation": paging(default_count=PAGE_SIZE, max_count=MAX_PAGE_SIZE,
                                               order="Most recently changed first.")},
                      {"type": "Subscription", "interaction": [{"code": c} for c in ("create", "read", "delete")]},
                      {"type": "Encounter", "interaction": [{"code": "search-type"}],
                       "searchParam": [p.capability() for p in service.ENCOUNTER_SEARCH.values()],
                       "documentation": paging(default_count=PAGE_SIZE, max_count=MAX_PAGE_SIZE,
                                               order="Earliest first.")},
                      {"type": "EpisodeOfCare", "interaction": [{"code": "search-type"}],
                       "searchParam": [p.capability() for p in episodes.SEARCH.values()],
                       "documentation": "With the scope coordination.write. " + paging(
                           default_count=PAGE_SIZE, max_count=MAX_PAGE_SIZE, order="Earliest first.")},
                      audit_views.capability()]}]})


@router.get("/Task")
async def search_tasks(request: Request, caller: Caller = require_scope(resource="Task", action="s")) -> JSONResponse:
    wanted = search.read_request(request, service.TASK_SEARCH, default_count=PAGE_SIZE, max_count=MAX_PAGE_SIZE)
    search.require_json(wanted)
    async with request.app.state.runtime.sessions() as session:
        tasks, total = await service.search_tasks(session, caller=caller, request=wanted)
    await audit.for_request(request, subtype="search", entity=f"Task?{request.url.query}",
                            patient=_single_patient(wanted))
    return _searchset(request, "Task", wanted, tasks, total)


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
async def search_episodes(request: Request,
                          caller: Caller = require_scope(scope="coordination.write")) -> JSONResponse:
    wanted = search.read_request(request, episodes.SEARCH, default_count=PAGE_SIZE, max_count=MAX_PAGE_SIZE)
    search.require_json(wanted)
    async with request.app.state.runtime.sessions() as session:
        found, total = await episodes.search_episodes(session, request=wanted)
    await audit.for_request(request, subtype="search", entity=f"EpisodeOfCare?{request.url.query}",
                            patient=_single_patient(wanted))
    base_url = request.app.state.settings.public_url
    return _searchset(request, "EpisodeOfCare", wanted, [episodes.episode_resource(e, base_url) for e in found], total)


@router.get("/Encounter")
async def search_encounters(request: Request,
                            caller: Caller = require_scope(resource="Task", action="s")) -> JSONResponse:
    wanted = search.read_request(request, service.ENCOUNTER_SEARCH, default_count=PAGE_SIZE, max_count=MAX_PAGE_SIZE)
    search.require_json(wanted)
    async with request.app.state.runtime.sessions() as session:
        found, total = await service.search_encounters(session, caller=caller, request=wanted)
    await audit.for_request(request, subtype="search", entity=f"Encounter?{request.url.query}",
                            patient=_single_patient(wanted))
    return _searchset(request, "Encounter", wanted, found, total)
