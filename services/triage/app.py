"""The triage service process: front door FHIR intake, triage API and console, authorization server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from services.triage import service
from services.triage.api import fhir, oauth, requests
from services.triage.console import views
from services.triage.models import TABLES
from services.triage.settings import TriageSettings
from shared import web
from shared.auth import ClientRegistry, SigningKey, TokenIssuer, TokenVerifier, UserRegistry
from shared.bus.topics import ACUTE_REQUEST_CLOSED
from shared.console import templates
from shared.logs import configure_logging
from shared.runtime import ServiceRuntime, Subscription


def create_app(settings: TriageSettings | None = None) -> FastAPI:
    settings = settings or TriageSettings()
    configure_logging(settings.service_name)
    runtime = ServiceRuntime(settings=settings, tables=TABLES, subscriptions=[
        Subscription("acute-request-closed", [ACUTE_REQUEST_CLOSED], service.close_request)])
    signing_key = SigningKey(settings.data_dir / "keys" / "triage-signing-key.json")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start_database()
        bus = asyncio.create_task(runtime.start_bus())
        yield
        bus.cancel()
        await asyncio.gather(bus, return_exceptions=True)
        await runtime.stop()

    app = FastAPI(title="Regiozorg triage", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.runtime = runtime
    app.state.signing_key = signing_key
    app.state.issuer = TokenIssuer(key=signing_key, issuer=settings.issuer, audience=settings.token_audience)
    app.state.verifier = TokenVerifier(jwks_url=settings.resolved_jwks_url, issuer=settings.issuer,
                                       audience=settings.token_audience, local=signing_key)
    app.state.clients = ClientRegistry(demo=settings.demo)
    app.state.users = UserRegistry(demo=settings.demo)
    app.state.templates = templates(Path(__file__).parent)
    web.install(app, service=settings.service_name, max_body_bytes=settings.max_body_bytes)
    web.add_operations_routes(app, runtime)
    app.include_router(oauth.router)
    app.include_router(fhir.router)
    app.include_router(requests.router)
    app.include_router(views.router)
    return app
