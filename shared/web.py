"""HTTP plumbing shared by the services: OperationOutcome errors, body limits, trace context, health, metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import audit, audit_views, console, metrics, statements, tracing
from shared.auth import TokenVerifier
from shared.console import ConsoleAuth, ConsoleRefused, FormRefused, LoginRequired, templates
from shared.db import database_unavailable
from shared.fhir import FhirError, Issue, operation_outcome
from shared.i18n import LANG_COOKIE, LANGUAGES
from shared.responses import FhirJSONResponse, JSONResponse
from shared.runtime import ServiceRuntime

log = logging.getLogger(__name__)

_HTTP_ISSUE_CODES = {401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported", 409: "conflict",
                     412: "conflict", 413: "too-long", 415: "not-supported", 422: "processing"}


def outcome_response(status_code: int, issues: list[Issue], headers: dict[str, str] | None = None) -> JSONResponse:
    return FhirJSONResponse(operation_outcome(issues), status_code=status_code, headers=headers)


def install(app: FastAPI, *, service: str, max_body_bytes: int) -> None:
    """Every error, of any route, is answered with an OperationOutcome; none is a bare 500 for client input."""

    @app.exception_handler(FhirError)
    async def _fhir_error(request: Request, exc: FhirError) -> JSONResponse:
        await _audit_refusal(request, exc.status_code, "; ".join(i.diagnostics for i in exc.issues))
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return outcome_response(exc.status_code, exc.issues, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        issues = [Issue("error", "invalid", str(err.get("msg", "invalid input")),
                        (".".join(str(p) for p in err.get("loc", ())),)) for err in exc.errors()]
        await _audit_refusal(request, 400, "invalid request parameters")
        return outcome_response(400, issues)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code != 404 or getattr(request.state, "caller", None) is not None:
            await _audit_refusal(request, exc.status_code, str(exc.detail))
        code = _HTTP_ISSUE_CODES.get(exc.status_code, "processing")
        return outcome_response(exc.status_code, [Issue("error", code, str(exc.detail))],
                                dict(exc.headers) if exc.headers else None)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Answered outside the middleware, so the request's trace is passed along by hand.
        traceparent = getattr(request.state, "traceparent", None)
        headers = {"traceparent": traceparent} if traceparent else {}
        if database_unavailable(exc):
            # Nothing was applied and nothing is wrong with the request: the client should try again.
            log.warning("database unavailable: %s", exc.__class__.__name__, extra={"traceparent": traceparent})
            return outcome_response(503, [Issue("error", "transient", "the database is unavailable; the request "
                                                "was not applied, retry it shortly")],
                                    {**headers, "Retry-After": "2"})
        log.exception("unexpected error: %s", exc.__class__.__name__, extra={"traceparent": traceparent})
        return outcome_response(500, [Issue("fatal", "exception", "internal error; the request was not applied")],
                                headers or None)

    app.add_middleware(TraceLimitsAndMetrics, service=service, max_body_bytes=max_body_bytes)


class TraceLimitsAndMetrics:
    """Every HTTP request: the caller's trace continued (a new one without a valid header) and echoed in the
    `traceparent` response header, so the caller can find this request's log lines and the events it caused by
    trace id; a body announced larger than `max_body_bytes` refused with 413; count and duration per route in
    the metrics; `?lang=` remembered in a cookie.

    A plain ASGI middleware: Starlette's BaseHTTPMiddleware (what `@app.middleware("http")` makes) runs the
    route in a task of its own with streams between, about 1,500 Python calls per request
    (tests/bench/profile_intake.py).
    """

    def __init__(self, app: ASGIApp, *, service: str, max_body_bytes: int) -> None:
        self.app = app
        self.service = service
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        with tracing.continued(request.headers.get("traceparent")) as traceparent:
            request.state.traceparent = traceparent
            extra = [(b"traceparent", traceparent.encode("latin-1"))]
            status = 500

            async def send_with_headers(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    message["headers"] = [*(h for h in message.get("headers", []) if h[0] != b"traceparent"),
                                          *extra]
                await send(message)

            length = request.headers.get("content-length")
            if length and length.isdigit() and int(length) > self.max_body_bytes:
                refusal = outcome_response(413, [Issue("error", "too-long",
                                                       f"request body exceeds {self.max_body_bytes} bytes")])
                await refusal(scope, receive, send_with_headers)
                return
            chosen = request.query_params.get("lang")
            if chosen in LANGUAGES:
                cookie = Response()
                cookie.set_cookie(LANG_COOKIE, chosen, max_age=365 * 86400, samesite="lax", httponly=True)
                extra += [(name, value) for name, value in cookie.raw_headers if name == b"set-cookie"]
            started = time.perf_counter()
            with statements.request_tally() as tally:
                await self.app(scope, receive, send_with_headers)
            path = getattr(scope.get("route"), "path", "unmatched")
            statements.book_request(tally, f"{scope['method']} {path}")
            metrics.HTTP_REQUESTS.labels(self.service, scope["method"], path, str(status)).inc()
            metrics.HTTP_SECONDS.labels(self.service, scope["method"], path).observe(time.perf_counter() - started)


FAVICON = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" '
           'fill="#0b5cad"/><path d="M10 8h7a6 6 0 0 1 1.5 11.8L23 25h-4.2l-4-5H14v5h-4zm4 3.5V16h3a2.25 2.25 0 0 0 '
           '0-4.5z" fill="#fff"/></svg>')


async def _audit_refusal(request: Request, status_code: int, description: str) -> None:
    """Every refused or failed request is audited with whoever was (or claimed to be) calling."""
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is None:
        return
    await audit.record_now(runtime.sessions, service=request.app.state.settings.service_name,
                           caller=getattr(request.state, "caller", None), subtype=audit.subtype_of(request.method),
                           entity=f"{request.method} {request.url.path}",
                           outcome=audit.OUTCOME_ERROR if status_code >= 500 else audit.OUTCOME_REFUSED,
                           description=f"{status_code}: {description}"[:1000])


def add_operations_routes(app: FastAPI, runtime: ServiceRuntime) -> None:
    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    async def readyz() -> JSONResponse:
        checks = await runtime.ready()
        return JSONResponse({"ready": all(checks.values()), "checks": checks},
                            status_code=200 if all(checks.values()) else 503)

    @app.get("/favicon.svg", include_in_schema=False)
    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        # The consoles' icon (base.html links the SVG; /favicon.ico for browsers that ask for it regardless).
        return Response(FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})

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
        async with runtime.startup_lock():
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
    app.state.console_auth = ConsoleAuth(data_dir=settings.data_dir, service=settings.service_name,
                                         demo=settings.demo)
    app.state.templates = templates(service_dir)
    install(app, service=settings.service_name, max_body_bytes=settings.max_body_bytes)
    add_operations_routes(app, runtime)
    for router in [*routers, console.router, audit_views.router]:
        app.include_router(router)

    @app.exception_handler(ConsoleRefused)
    async def _console_refused(request: Request, exc: ConsoleRefused) -> Response:
        await _audit_refusal(request, 403, f"the role {exc.caller.role} cannot open this console")
        return app.state.templates.TemplateResponse(request, "refused.html", {"user": exc.caller},
                                                    status_code=403, headers={"Cache-Control": "no-store"})

    @app.exception_handler(FormRefused)
    async def _form_refused(request: Request, exc: FormRefused) -> Response:
        await _audit_refusal(request, exc.status_code, str(exc.detail))
        return app.state.templates.TemplateResponse(request, "login_problem.html", {
            "message": exc.message, "title": "Formulier niet verwerkt"}, status_code=exc.status_code,
            headers={"Cache-Control": "no-store"})

    @app.exception_handler(LoginRequired)
    async def _login_required(_request: Request, exc: LoginRequired) -> RedirectResponse:
        return RedirectResponse(f"/console/login?{urlencode({'next': exc.next_path})}", status_code=303)

    return app
