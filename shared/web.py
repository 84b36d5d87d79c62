"""HTTP plumbing shared by the services: OperationOutcome errors, body limits, health, metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared import metrics
from shared.auth import TokenVerifier, UserRegistry
from shared.console import templates
from shared.fhir import FHIR_JSON, FhirError, Issue, dumps, operation_outcome
from shared.runtime import ServiceRuntime

log = logging.getLogger(__name__)

_HTTP_ISSUE_CODES = {401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported", 409: "conflict",
                     412: "conflict", 413: "too-long", 415: "not-supported", 422: "processing"}


class FhirJSONResponse(JSONResponse):
    """JSON that keeps FHIR decimals exact."""

    media_type = FHIR_JSON

    def render(self, content: object) -> bytes:
        return dumps(content).encode()


def outcome_response(status_code: int, issues: list[Issue], headers: dict[str, str] | None = None) -> JSONResponse:
    return FhirJSONResponse(operation_outcome(issues), status_code=status_code, headers=headers)


def install(app: FastAPI, *, service: str, max_body_bytes: int) -> None:
    """Every error, of any route, is answered with an OperationOutcome; none is a bare 500 for client input."""

    @app.exception_handler(FhirError)
    async def _fhir_error(_request: Request, exc: FhirError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return outcome_response(exc.status_code, exc.issues, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        issues = [Issue("error", "invalid", str(err.get("msg", "invalid input")),
                        (".".join(str(p) for p in err.get("loc", ())),)) for err in exc.errors()]
        return outcome_response(400, issues)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_ISSUE_CODES.get(exc.status_code, "processing")
        return outcome_response(exc.status_code, [Issue("error", code, str(exc.detail))],
                                dict(exc.headers) if exc.headers else None)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error: %s", exc.__class__.__name__)
        return outcome_response(500, [Issue("fatal", "exception", "internal error; the request was not applied")])

    @app.middleware("http")
    async def _limits_and_metrics(request: Request, call_next):  # type: ignore[no-untyped-def]
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > max_body_bytes:
            return outcome_response(413, [Issue("error", "too-long",
                                                f"request body exceeds {max_body_bytes} bytes")])
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        metrics.HTTP_REQUESTS.labels(service, request.method, path, str(response.status_code)).inc()
        metrics.HTTP_SECONDS.labels(service, request.method, path).observe(time.perf_counter() - started)
        return response


def add_operations_routes(app: FastAPI, runtime: ServiceRuntime) -> None:
    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    async def readyz() -> JSONResponse:
        checks = await runtime.ready()
        return JSONResponse({"ready": all(checks.values()), "checks": checks},
                            status_code=200 if all(checks.values()) else 503)

    @app.get("/metrics", tags=["operations"])
    async def prometheus() -> Response:
        try:
            await runtime.refresh_gauges()
        except Exception as exc:  # metrics must answer even while the database is away
            log.warning("refreshing gauges failed: %s", exc.__class__.__name__)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def service_app(*, title: str, runtime: ServiceRuntime, service_dir: Path, routers: list[APIRouter],
                verifier: TokenVerifier | None = None,
                on_start: Callable[[ServiceRuntime], Awaitable[None]] | None = None) -> FastAPI:
    """One service process: schema at start, the bus in the background (so /healthz answers while the
    broker is still away), tokens verified against the issuer, errors as OperationOutcomes."""
    settings = runtime.settings

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await runtime.start_database()
        if on_start is not None:
            await on_start(runtime)
        bus = asyncio.create_task(runtime.start_bus())
        yield
        bus.cancel()
        await asyncio.gather(bus, return_exceptions=True)
        await runtime.stop()

    app = FastAPI(title=title, version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.runtime = runtime
    app.state.verifier = verifier or TokenVerifier(jwks_url=settings.resolved_jwks_url, issuer=settings.issuer,
                                                   audience=settings.token_audience)
    app.state.users = UserRegistry(demo=settings.demo)
    app.state.templates = templates(service_dir)
    install(app, service=settings.service_name, max_body_bytes=settings.max_body_bytes)
    add_operations_routes(app, runtime)
    for router in routers:
        app.include_router(router)
    return app
