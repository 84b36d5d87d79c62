"""FHIR R4 endpoints of the front door: transaction intake, ServiceRequest read and search, metadata."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.exc import IntegrityError

from services.triage import service
from shared import audit
from shared.auth import Caller, require_scope
from shared.fhir import FHIR_JSON, FHIR_XML, FhirError, Issue, parse_body, to_xml
from shared.responses import FhirJSONResponse

router = APIRouter(prefix="/fhir", tags=["FHIR"])


def fhir_response(request: Request, body: dict[str, Any], status_code: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    """JSON by default; XML when the client asks for it by _format or Accept."""
    wanted = request.query_params.get("_format", "") or request.headers.get("accept", "")
    if "xml" in wanted:
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


@router.get("/metadata")
async def metadata(request: Request) -> Response:
    return fhir_response(request, capability_statement(request.app.state.settings.public_url))


@router.post("")
async def transaction(request: Request,
                      caller: Caller = require_scope(resource="ServiceRequest", action="c")) -> Response:
    bundle = await read_body(request)
    state = request.app.state
    for attempt in (1, 2):
        try:
            async with state.runtime.sessions() as session, session.begin():
                result = await service.accept_referral(session, bundle=bundle, caller=caller,
                                                       traceparent=request.headers.get("traceparent"),
                                                       pseudonym_key=state.settings.pseudonym_key_bytes)
                await audit.record(session, service=state.settings.service_name, caller=caller, subtype="create",
                                   entity=f"ServiceRequest for acute request {result.acute_request_id}"
                                   if result.created else "transaction retry: the first result was returned",
                                   patient=result.pseudonym)
            break
        except IntegrityError:
            # A concurrent retry of the same referral won the race; the second pass returns its result.
            if attempt == 2:
                raise FhirError(409, Issue("error", "conflict", "a concurrent transaction stored the same "
                                                                "resources; retry the request")) from None
    if result.created:
        state.runtime.relay.wake()
    return fhir_response(request, result.response)


@router.get("/ServiceRequest/{resource_id}")
async def read_service_request(resource_id: str, request: Request,
                               caller: Caller = require_scope(resource="ServiceRequest", action="r")) -> Response:
    async with request.app.state.runtime.sessions() as session:
        resource, patient = await service.read_resource(session, resource_type="ServiceRequest",
                                                        resource_id=resource_id, caller=caller)
    await audit.for_request(request, subtype="read", entity=f"ServiceRequest/{resource_id}", patient=patient)
    version = resource.get("meta", {}).get("versionId", "1")
    return fhir_response(request, resource, headers={"ETag": f'W/"{version}"'})


@router.get("/ServiceRequest")
async def search_service_requests(
        request: Request, caller: Caller = require_scope(resource="ServiceRequest", action="s"),
        patient: str | None = None, status: str | None = None,
        last_updated: Annotated[str | None, Query(alias="_lastUpdated")] = None,
        count: Annotated[int, Query(alias="_count", ge=1, le=500)] = 50) -> Response:
    async with request.app.state.runtime.sessions() as session:
        found = await service.search_service_requests(session, caller=caller, patient=patient, status=status,
                                                      last_updated=last_updated, count=count)
        pseudonym = await service.pseudonym_of(session, patient.rsplit("/", 1)[-1]) if patient else None
    await audit.for_request(request, subtype="search", entity=f"ServiceRequest?{request.url.query}",
                            patient=pseudonym)
    bundle = {"resourceType": "Bundle", "type": "searchset", "total": len(found),
              "link": [{"relation": "self", "url": str(request.url)}],
              "entry": [{"fullUrl": f"ServiceRequest/{r['id']}", "resource": r, "search": {"mode": "match"}}
                        for r in found]}
    return fhir_response(request, bundle)


def capability_statement(base_url: str) -> dict[str, Any]:
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
            "security": {"service": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                                  "code": "SMART-on-FHIR"}]}],
                         "description": "OAuth 2.0 client credentials; token at /oauth/token"},
            "interaction": [{"code": "transaction"}],
            "resource": [{
                "type": "ServiceRequest",
                "interaction": [{"code": "read"}, {"code": "search-type"}],
                "conditionalCreate": True,
                "searchParam": [{"name": "patient", "type": "reference"}, {"name": "status", "type": "token"},
                                {"name": "_lastUpdated", "type": "date"}, {"name": "_count", "type": "number"}],
            }],
        }],
    }
