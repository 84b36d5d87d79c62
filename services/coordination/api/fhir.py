"""FHIR R4 endpoints of coordination: Task search, read and PATCH by partners; Encounters per patient."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from services.coordination import episodes, notifications, service
from shared import audit, audit_views, jsontext, search
from shared.auth import Caller, require_scope
from shared.fhir import FHIR_JSON, FHIR_XML, FhirError, Issue, loads, parse_body
from shared.identifiers import searched_pseudonym
from shared.responses import FhirJSONResponse, JSONResponse
from shared.writes import Writes

router = APIRouter(prefix="/fhir", tags=["FHIR"])
_XML_TYPES = {FHIR_XML, "application/xml", "text/xml"}
PAGE_SIZE, MAX_PAGE_SIZE = 50, 500
AUDIT = audit.AuditRecord.__table__  # type: ignore[attr-defined]


def _fhir(body: dict[str, Any], status_code: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return FhirJSONResponse(body, status_code=status_code, headers=headers)


def _searchset(request: Request, resource_type: str, wanted: search.Search, resources: list[dict[str, Any]],
               total: int, included: list[tuple[dict[str, Any], str]] | None = None) -> JSONResponse:
    return _fhir(search.searchset(base=f"{request.app.state.settings.public_url}/fhir", resource_type=resource_type,
                                  search=wanted, total=total, resources=resources, included=included or []))


async def _resource_body(request: Request) -> dict[str, Any]:
    """A FHIR resource sent in JSON, read by the same rules as at the front door (shared.fhir.parse_body: 400 for
    malformed JSON, duplicate properties, control characters or any empty element). Coordination speaks JSON only:
    an XML body is 415."""
    mime = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if mime in _XML_TYPES:
        raise FhirError(415, Issue("error", "not-supported", "coordination takes FHIR resources as "
                                                             "application/fhir+json"))
    return parse_body(await request.body(), mime)


def _single_patient(wanted: search.Search) -> str | None:
    patients = wanted.values("patient")
    return searched_pseudonym(patients[0]) if len(patients) == 1 else None


def _subscription_capabilities() -> dict[str, Any]:
    """Subscription as the R4 Subscriptions Backport IG advertises it: the topic, the profile, $status, $events."""
    return {"type": "Subscription",
            "extension": [{"url": f"{notifications.BACKPORT}/capabilitystatement-subscriptiontopic-canonical",
                           "valueCanonical": notifications.TOPIC}],
            "supportedProfile": [notifications.SUBSCRIPTION_PROFILE],
            "documentation": (f"Topic {notifications.TOPIC}: a Task was created or changed. Filter "
                              "(backport-filter-criteria) `Task?owner=<system>|<value>`, the caller's own "
                              "organisation only (the default). rest-hook, id-only payloads. The older "
                              "`criteria: Task?owner=<system>|<value>` is accepted too."),
            "interaction": [{"code": c} for c in ("create", "read", "delete")],
            "operation": [{"name": "status",
                           "definition": f"{notifications.BACKPORT_OPERATIONS}/backport-subscription-status"},
                          {"name": "events",
                           "definition": f"{notifications.BACKPORT_OPERATIONS}/backport-subscription-events"}]}


@router.get("/metadata")
async def metadata(request: Request) -> JSONResponse:
    return _fhir(capability_statement(request.app.state.settings.public_url))


def capability_statement(public_url: str) -> dict[str, Any]:
    """Coordination's CapabilityStatement: exactly the interactions, search parameters (with their modifiers and
    prefixes) and the subscription topic it serves; `public_url` is the service's configured public address."""
    paging = search.paging_documentation
    return {"resourceType": "CapabilityStatement", "status": "active", "date": "2026-11-22", "kind": "instance",
            "fhirVersion": "4.0.1", "format": [FHIR_JSON],
            "software": {"name": "Regiozorg coordination"},
            "implementation": {"description": "Regiozorg coordination",
                               "url": f"{public_url}/fhir"},
            "rest": [{"mode": "server", "resource": [
                {"type": "Task", "interaction": [{"code": c} for c in (
                    "read", "vread", "history-instance", "search-type", "patch", "update")],
                 "versioning": "versioned-update", "updateCreate": False,
                 "searchInclude": list(service.INCLUDES),
                 "searchParam": [p.capability() for p in service.TASK_SEARCH.values()],
                 "documentation": paging(default_count=PAGE_SIZE, max_count=MAX_PAGE_SIZE,
                                         order="Most recently changed first.") + (
                     " `_include=Task:patient` and `_include=Task:focus` are answered by coordination from what it "
                     "holds, for the Tasks the caller may see (owner, requester, case manager): the Patient as the "
                     "front door last sent it (fullUrl on the front door's FHIR base), and the focus ServiceRequest "
                     "as far as the routing order tells it (tagged SUBSETTED; the front door holds the whole). "
                     "Every included resource is an audited read.")},
                _subscription_capabilities(),
                {"type": "Encounter", "interaction": [{"code": "search-type"}],
                 "searchParam": [p.capability() for p in service.ENCOUNTER_SEARCH.values()],
                 "documentation": paging(default_count=PAGE_SIZE, max_count=MAX_PAGE_SIZE,
                                         order="Earliest first.")},
                {"type": "EpisodeOfCare", "interaction": [{"code": "search-type"}],
                 "searchParam": [p.capability() for p in episodes.SEARCH.values()],
                 "documentation": "With the scope coordination.write. " + paging(
                     default_count=PAGE_SIZE, max_count=MAX_PAGE_SIZE, order="Earliest first.")},
                audit_views.capability()]}]}


@router.get("/Task")
async def search_tasks(request: Request, caller: Caller = require_scope(resource="Task", action="s")) -> JSONResponse:
    wanted = search.read_request(request, service.TASK_SEARCH, default_count=PAGE_SIZE, max_count=MAX_PAGE_SIZE,
                                 includes=service.INCLUDES)
    search.require_json(wanted)
    async with request.app.state.runtime.sessions() as session:
        tasks, total = await service.search_tasks(session, caller=caller, request=wanted)
        extra = await service.included(session, caller=caller, tasks=tasks, include=set(wanted.include),
                                       front_door_fhir_base=request.app.state.settings.front_door_fhir_base) \
            if wanted.include else []
    await audit.for_request(request, subtype="search", entity=f"Task?{request.url.query}",
                            patient=_single_patient(wanted))
    for resource, _url, pseudonym, task_id in extra:
        await audit.for_request(request, subtype="read", patient=pseudonym,
                                entity=f"{resource['resourceType']}/{resource['id']} (_include of Task/{task_id})")
    return _searchset(request, "Task", wanted, tasks, total, [(resource, url) for resource, url, *_ in extra])


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
    body = await _resource_body(request)
    state = request.app.state
    async with state.runtime.sessions() as session, session.begin():
        current = await service.get_task(session, task_id, caller)
        operations = service.json_patch_for_update(loads(current.content), body, task_id)
        writes = Writes()
        task = await service.patch_task(session, task_id=task_id, operations=operations, if_match=if_match,
                                        caller=caller, codesystem_base=state.settings.codesystem_base,
                                        clock_tolerance=state.settings.clock_tolerance,
                                        traceparent=request.headers.get("traceparent"), writes=writes)
        writes.insert(AUDIT, **audit.entry(service="coordination", caller=caller, subtype="update",
                                           entity=f"Task/{task_id} (PUT) → {task['status']}",
                                           patient=task["for"]["identifier"]["value"]))
        await writes.flush(session)
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
    mime = content_type.split(";")[0].strip().lower()
    operations, fhirpath_patch = None, None
    if mime == "application/json-patch+json":
        try:
            # As a resource body is read: decimals exact (a patched value keeps its precision), no NaN, no name twice.
            operations = jsontext.parse_object(await request.body())
        except (ValueError, RecursionError) as exc:
            raise FhirError(400, Issue("error", "structure", "the body is not JSON")) from exc
        if not isinstance(operations, list):
            raise FhirError(400, Issue("error", "structure", "a JSON Patch is an array of operations"))
    elif mime == FHIR_JSON:
        fhirpath_patch = await _resource_body(request)
    else:
        raise FhirError(415, Issue("error", "not-supported", "PATCH takes application/json-patch+json (JSON Patch) "
                                                             "or application/fhir+json (FHIRPath Patch)"))
    state = request.app.state
    async with state.runtime.sessions() as session, session.begin():
        writes = Writes()  # the Task's writes and its audit row: one statement on PostgreSQL
        task = await service.patch_task(session, task_id=task_id, operations=operations,
                                        fhirpath_patch=fhirpath_patch, if_match=request.headers.get("if-match"),
                                        caller=caller, codesystem_base=state.settings.codesystem_base,
                                        clock_tolerance=state.settings.clock_tolerance,
                                        traceparent=request.headers.get("traceparent"), writes=writes)
        writes.insert(AUDIT, **audit.entry(service="coordination", caller=caller, subtype="update",
                                           entity=f"Task/{task_id} → {task['status']}",
                                           patient=task["for"]["identifier"]["value"]))
        await writes.flush(session)
    state.runtime.relay.wake()
    return _fhir(task, headers={"ETag": f'W/"{task["meta"]["versionId"]}"'})


@router.post("/Subscription", status_code=201)
async def create_subscription(request: Request,
                              caller: Caller = require_scope(resource="Subscription", action="c")) -> JSONResponse:
    body = await _resource_body(request)
    async with request.app.state.runtime.sessions() as session, session.begin():
        record = await notifications.create(session, body=body, caller=caller)
    return _fhir(notifications.resource(record), status_code=201,
                 headers={"Location": f"{request.app.state.settings.public_url}/fhir/Subscription/{record.id}"})


@router.get("/Subscription/{subscription_id}")
async def read_subscription(subscription_id: str, request: Request,
                            caller: Caller = require_scope(resource="Subscription", action="r")) -> JSONResponse:
    async with request.app.state.runtime.sessions() as session:
        record = await notifications.get(session, subscription_id=subscription_id, caller=caller)
    return _fhir(notifications.resource(record))


@router.get("/Subscription/{subscription_id}/$status")
async def subscription_status(subscription_id: str, request: Request,
                              caller: Caller = require_scope(resource="Subscription", action="r")) -> JSONResponse:
    """The backport IG's `$status` on one Subscription: a searchset Bundle with its status Parameters."""
    async with request.app.state.runtime.sessions() as session:
        record = await notifications.get(session, subscription_id=subscription_id, caller=caller)
    await audit.for_request(request, subtype="read", entity=f"Subscription/{subscription_id}/$status")
    return _fhir(notifications.status_bundle(record, base_url=request.app.state.settings.public_url))


@router.get("/Subscription/{subscription_id}/$events")
async def subscription_events(subscription_id: str, request: Request,
                              caller: Caller = require_scope(resource="Subscription", action="r"),
                              events_since: Annotated[str | None, Query(alias="eventsSinceNumber")] = None,
                              events_until: Annotated[str | None, Query(alias="eventsUntilNumber")] = None,
                              content: str | None = None) -> JSONResponse:
    """The backport IG's `$events`: the events numbered eventsSinceNumber..eventsUntilNumber (inclusive) as an
    id-only `history` Bundle (status Parameters of type query-event first), at most 100, then a `next` link."""
    first, last = notifications.event_range(events_since, events_until)
    if content not in (None, "", "id-only", "empty", "full-resource"):
        raise FhirError(400, Issue("error", "invalid", "content is empty, id-only or full-resource", ("content",)))
    settings = request.app.state.settings
    async with request.app.state.runtime.sessions() as session:
        record = await notifications.get(session, subscription_id=subscription_id, caller=caller)
        found = await notifications.events(session, record=record, first=first, last=last)
    await audit.for_request(request, subtype="read",
                            entity=f"Subscription/{subscription_id}/$events?{request.url.query}")
    # content is a hint the IG lets a server ignore: notified pull always names the Task and no more.
    body = notifications.bundle(record, kind="query-event", base_url=settings.public_url, notifications=found)
    if len(found) == notifications.EVENTS_PER_PAGE and (last is None or found[-1].event_number < last):
        body["link"] = [{"relation": "next", "url": str(request.url.include_query_params(
            eventsSinceNumber=found[-1].event_number + 1))}]
    return _fhir(body)


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
