"""The coordination service process: Tasks across organisations and the case manager's console."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from services.coordination import service
from services.coordination.api import fhir, work
from services.coordination.console import views
from services.coordination.models import TABLES
from services.coordination.settings import CoordinationSettings
from shared import web
from shared.auth import TokenVerifier, UserRegistry
from shared.bus.topics import TRIAGE_COMPLETED
from shared.console import templates
from shared.logs import configure_logging
from shared.runtime import ServiceRuntime, Subscription


def create_app(settings: CoordinationSettings | None = None) -> FastAPI:
    settings = settings or CoordinationSettings()
    configure_logging(settings.service_name)
    runtime = ServiceRuntime(settings=settings, tables=TABLES, subscriptions=[
        Subscription("triage-completed", [TRIAGE_COMPLETED], service.on_triage_completed)])

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start_database()
        bus = asyncio.create_task(runtime.start_bus())
        yield
        bus.cancel()
        await asyncio.gather(bus, return_exceptions=True)
        await runtime.stop()

    app = FastAPI(title="Regiozorg coordination", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.runtime = runtime
    app.state.verifier = TokenVerifier(jwks_url=settings.resolved_jwks_url, issuer=settings.issuer,
                                       audience=settings.token_audience)
    app.state.users = UserRegistry(demo=settings.demo)
    app.state.templates = templates(Path(__file__).parent)
    web.install(app, service=settings.service_name, max_body_bytes=settings.max_body_bytes)
    web.add_operations_routes(app, runtime)
    app.include_router(fhir.router)
    app.include_router(work.router)
    app.include_router(views.router)
    return app
