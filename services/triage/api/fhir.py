"""FHIR R4 endpoints of the front door: referral intake, read and vread of what came in, ServiceRequest search,
metadata."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.triage import service
from services.triage.domain.referral import ACCEPTED_TYPES
from shared import audit, audit_views, search
from shared.auth import Caller, CurrentCaller, current_caller, require_scope, scope_allows, scoped
from shared.db import connection_lost
from shared.fhir import FHIR_JSON, FHIR_XML, FhirError, Issue, parse_body, to_xml
from shared.responses import FhirJSONResponse

router = APIRouter(prefix="/fhir", tags=["FHIR"])

PAGE_SIZE, MAX_PAGE_SIZE = 50, 500
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_FORMATS = {"json": FHIR_JSON, "application/json": FHIR_JSON, FHIR_JSON: FHIR_JSON,
            "xml": FHIR_XML, "text/xml": FHIR_XML, "application/xml": FHIR_XML, FHIR_XML: FHIR_XML}


async def response_format(request: Request) -> str:
    """_format wins over Accept (FHIR http), then the format the client posted in; else JSON.

    A coroutine although it awaits nothing: FastAPI runs a plain function dependency in a worker thread, and the
    hand-over cost more than the work (measured with tests/bench/profile_intake.py)."""
    wanted = request.query_params.get("_format")
    if wanted is not None:
        # An unencoded "+" in application/fhir+xml arrives as a space.
        mime = wanted.split(";")[0].strip().replace(" ", "+").lower()
        if mime not in _FORMATS:
            raise FhirError(406, Issue("error", "not-supported", "_format must be json or xml", ("_format",)))
        return _FORMATS[mime]
    for part in [*request.headers.get("accept", "").split(","), request.headers.get("content-type", "")]:
        mime = part.split(";")[0].strip().lower()
        if mime in _FORMATS:
            return _FORMATS[mime]
    return FHIR_JSON


ResponseFormat = Annotated[str, Depends(response_format)]


def fhir_response(body: dict[str, Any], media_type: str, status_code: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    if media_type == FHIR_XML:
        return Response(to_xml(body), status_code=status_code, media_type=FHIR_XML, headers=headers)
    return FhirJSONResponse(body, status_code=status_code, headers=headers)


async def read_body(request: Request) -> dict[str, Any]:
    limit: int = request.app.state.settings.max_body_bytes
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise FhirError(413, Issue("error", "too-long", f"request body exceeds {limit} bytes"))
    return parse_body(bytes(body), request.headers.get("content-type"))


def _base(request: Request) -> str:
    # The configured address, not the Host header: links a client follows must not be steerable by a request.
    return f"{request.app.state.settings.public_url}/fhir"


@router.get("/metadata")
async def metadata(request: Request, media_type: ResponseFormat) -> Response:
    return fhir_response(capability_statement(request.app.state.settings.public_url), media_type)


async def _intake(request: Request, caller: Caller,
                  use_case: Callable[[AsyncSession, service.AuditRow], Awaitable[service.IntakeResult]]
                  ) -> service.IntakeResult:
    """Run an intake use case in a transaction of its own, audited, trying a second time once when a concurrent
    retry of the same referral won the race (the second pass returns its result) or when the database connection
    broke under it (a PostgreSQL restart the pooled connection had not seen yet, shared/db.py): intake is
    idempotent by its receipts, so a second pass after a commit whose answer was lost returns the first result."""
    state = request.app.state
    service_name = state.settings.service_name

    def audit_row(acute_request_id: str, pseudonym: str) -> dict[str, Any]:
        return audit.entry(service=service_name, caller=caller, subtype="create",
                           entity=f"ServiceRequest for acute request {acute_request_id}", patient=pseudonym)

    for attempt in (1, 2):
        try:
            async with state.runtime.sessions() as session, session.begin():
                result = await use_case(session, audit_row)
                if not result.audited:
                    await audit.record(session, service=service_name, caller=caller, subtype="create",
                                       entity=f"ServiceRequest for acute request {result.acute_request_id}"
                                       if result.created else "transaction retry: the first result was returned",
                                       patient=result.pseudonym)
            break
        except IntegrityError:
            if attempt == 2:
                raise FhirError(409, Issue("error", "conflict", "a concurrent transaction stored the same "
                                                                "resources; retry the request")) from None
        except DBAPIError as error:
            if attempt == 2 or not connection_lost(error):
                raise
    if result.created:
        state.runtime.relay.wake()
    return result


@router.post("")
@router.post("/", include_in_schema=False)  # clients such as fhirpy post a transaction to the base with a slash
async def transaction(request: Request) -> Response:
    # The format, then the caller with its scope, as require_scope would, called here rather than declared:
    # FastAPI's dependency solving cost more CPU than the two calls on the path of every referral.
    media_type = await response_format(request)
    caller = scoped(await current_caller(request), resource="ServiceRequest", action="c")
    bundle = await read_body(request)
    settings = request.app.state.settings
    result = await _intake(request, caller, lambda session, audit_row: service.accept_referral(
        session, bundle=bundle, caller=caller, traceparent=request.headers.get("traceparent"),
        pseudonym_key=settings.pseudonym_key_bytes, audit_row=audit_row))
    if result.text is not None and media_type == FHIR_JSON:
        return Response(result.text.encode(), media_type=FHIR_JSON)  # as stored in the receipt: serialised once
    return fhir_response(result.response, media_type)


@router.post("/ServiceRequest")
async def create_service_request(request: Request, media_type: ResponseFormat,
                                 caller: Caller = require_scope(resource="ServiceRequest", action="c")) -> Response:
    resource = await read_body(request)
    settings = request.app.state.settings
    result = await _intake(request, caller, lambda session, audit_row: service.create_service_request(
        session, resource=resource, if_none_exist=request.headers.get("if-none-exist"), caller=caller,
        traceparent=request.headers.get("traceparent"), pseudonym_key=settings.pseudonym_key_bytes,
        audit_row=audit_row))
    async with request.app.state.runtime.sessions() as session:
        stored = (await service.read_resource(session, resource_type="ServiceRequest",
                                              resource_id=result.service_request_id, caller=caller,
                                              treatment_window=settings.treatment_window)).resource
    version = stored["meta"]["versionId"]
    headers = {**_version_headers(stored),
               "Location": f"{_base(request)}/ServiceRequest/{stored['id']}/_history/{version}"}
    return fhir_response(stored, media_type, 201 if result.created else 200, headers)


def _readable(resource_type: str, caller: Caller) -> None:
    """What came in with a referral is read with that type's scope, or with the scope to read referrals."""
    if resource_type not in ACCEPTED_TYPES:
        raise FhirError(404, Issue("error", "not-supported", f"{resource_type} is not served here"))
    if not (scope_allows(caller.scopes, resource=resource_type, action="r")
            or scope_allows(caller.scopes, resource="ServiceRequest", action="r")):
        raise FhirError(403, Issue("error", "forbidden", f"the access token lacks the scope system/{resource_type}.r"))


def _version_headers(resource: dict[str, Any]) -> dict[str, str]:
    meta = resource.get("meta", {})
    headers = {"ETag": f'W/"{meta.get("versionId", "1")}"'}
    if meta.get("lastUpdated"):
        moment = datetime.fromisoformat(meta["lastUpdated"]).astimezone(UTC)
        headers["Last-Modified"] = format_datetime(moment, usegmt=True)
    return headers


def _not_modified(if_none_match: str | None, version: str) -> bool:
    # Weak and strong forms, and a bare version as some clients (fhirpy's refresh) send it, all name the version.
    tags = {tag.strip().removeprefix("W/").strip('"') for tag in (if_none_match or "").split(",")}
    return "*" in tags or version in tags


async def _read(request: Request, media_type: str, caller: Caller, resource_type: str, resource_id: str,
                version: str | None) -> Response:
    _readable(resource_type, caller)
    if not _ID.fullmatch(resource_id) or (version is not None and not _ID.fullmatch(version)):
        # Not a FHIR id, so nothing stored here has it; the database never sees such input.
        raise FhirError(404, Issue("error", "not-found", f"{resource_type}/{resource_id} is not known"))
    async with request.app.state.runtime.sessions() as session:
        found = await service.read_resource(session, resource_type=resource_type, resource_id=resource_id,
                                            caller=caller, version=version,
                                            treatment_window=request.app.state.settings.treatment_window)
    entity = f"{resource_type}/{resource_id}" + (f"/_history/{version}" if version else "")
    # A read on a treatment grant names the Task that granted it; its purpose is treatment (NEN 7513).
    await audit.for_request(request, subtype="read", entity=entity, patient=found.patient,
                            purpose=audit.PURPOSE_TREATMENT, granted_by=[found.grant] if found.grant else [])
    resource = found.resource
    headers = _version_headers(resource)
    if _not_modified(request.headers.get("if-none-match"), resource.get("meta", {}).get("versionId", "1")):
        return Response(status_code=304, headers=headers)
    return fhir_response(resource, media_type, headers=headers)


@router.get("/{resource_type}/{resource_id}")
async def read(resource_type: str, resource_id: str, request: Request, media_type: ResponseFormat,
               caller: CurrentCaller) -> Response:
    return await _read(request, media_type, caller, resource_type, resource_id, None)


@router.get("/{resource_type}/{resource_id}/_history/{version_id}")
async def vread(resource_type: str, resource_id: str, version_id: str, request: Request,
                media_type: ResponseFormat, caller: CurrentCaller) -> Response:
    return await _read(request, media_type, caller, resource_type, resource_id, version_id)


@router.get("/ServiceRequest")
async def search_service_requests(request: Request, media_type: ResponseFormat,
                                  caller: Caller = require_scope(resource="ServiceRequest", action="s")) -> Response:
    wanted = search.read_request(request, service.SERVICE_REQUEST_SEARCH, default_count=PAGE_SIZE,
                                 max_count=MAX_PAGE_SIZE)
    async with request.app.state.runtime.sessions() as session:
        page = await service.search_service_requests(session, caller=caller, request=wanted,
                                                     treatment_window=request.app.state.settings.treatment_window)
        patients = wanted.values("patient")
        pseudonym = await service.pseudonym_of(session, service.patient_key(patients[0])
                                               if len(patients) == 1 else None)
    await audit.for_request(request, subtype="search", entity=f"ServiceRequest?{request.url.query}",
                            patient=pseudonym, purpose=audit.PURPOSE_TREATMENT, granted_by=page.grants)
    return fhir_response(search.searchset(base=_base(request), resource_type="ServiceRequest", search=wanted,
                                          total=page.total, resources=page.resources), media_type)


def capability_statement(base_url: str) -> dict[str, Any]:
    readable = {"interaction": [{"code": "read"}, {"code": "vread"}], "versioning": "versioned",
                "readHistory": False, "updateCreate": False, "conditionalRead": "not-match"}
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-22",
        "kind": "instance",
        "software": {"name": "Regiozorg triage"},
        "implementation": {"description": "Regiozorg front door", "url": f"{base_url}/fhir"},
        "fhirVersion": "4.0.1",
        "format": [FHIR_JSON, FHIR_XML],
        "rest": [{
            "mode": "server",
            "documentation": "A referral is a transaction Bundle (POST [base]) or a ServiceRequest for a Patient "
                             "stored here (POST [base]/ServiceRequest, If-None-Exist: identifier=system|value). "
                             "Responses are JSON unless _format=xml or Accept asks for XML. A partner reads and "
                             "finds what it submitted, and, while its organisation owns a coordination Task for an "
                             "acute request (or owned one that ended less than the treatment window ago, 7 days "
                             "by default), that request's Patient, ServiceRequests, Coverage, Condition, "
                             "Observation and QuestionnaireResponse; each such read is audited with purpose TREAT "
                             "and the Task.",
            "security": {"service": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                                  "code": "SMART-on-FHIR"}]}],
                         "description": "OAuth 2.0 client credentials; token at /oauth/token"},
            "interaction": [{"code": "transaction",
                             "documentation": "All or nothing; idempotent by Bundle.identifier and by "
                                              "ServiceRequest.identifier; only POST entries"}],
            "resource": [{
                "type": "ServiceRequest",
                "interaction": [{"code": "create"}, {"code": "read"}, {"code": "vread"}, {"code": "search-type"}],
                "versioning": "versioned",
                "readHistory": False,
                "updateCreate": False,
                "conditionalCreate": True,
                "conditionalRead": "not-match",
                "referencePolicy": ["literal", "logical", "local"],
                "searchParam": [p.capability() for p in service.SERVICE_REQUEST_SEARCH.values()],
                "documentation": search.paging_documentation(default_count=PAGE_SIZE, max_count=MAX_PAGE_SIZE,
                                                             order="Newest first."),
            }, *({"type": name, **readable,
                  "documentation": "As received in a referral; readable with its own or the ServiceRequest scope"}
                 for name in sorted(ACCEPTED_TYPES - {"ServiceRequest"})), audit_views.capability()],
        }],
    }
