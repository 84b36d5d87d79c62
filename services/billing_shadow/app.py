"""The shadow billing service process: prestations, shadow lines, insurer feeds and the billing console."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from services.billing_shadow import service
from services.billing_shadow.api import feeds
from services.billing_shadow.console import views
from services.billing_shadow.models import TABLES
from services.billing_shadow.settings import BillingSettings
from shared import web
from shared.auth import TokenVerifier, UserRegistry
from shared.bus.topics import ACUTE_REQUEST_CLOSED, CONTACT_DELIVERED, TRIAGE_COMPLETED
from shared.console import templates
from shared.logs import configure_logging
from shared.runtime import ServiceRuntime, Subscription


def create_app(settings: BillingSettings | None = None) -> FastAPI:
    settings = settings or BillingSettings()
    configure_logging(settings.service_name)

    async def feed_publisher(runtime: ServiceRuntime) -> None:
        # Debounced: changes within one interval become one revision.
        await asyncio.sleep(settings.feed_debounce_seconds)
        async with runtime.sessions() as session, session.begin():
            published = await service.publish_dirty_feeds(session)
        if published:
            runtime.relay.wake()

    runtime = ServiceRuntime(settings=settings, tables=TABLES, background=[feed_publisher], subscriptions=[
        Subscription("triage-completed", [TRIAGE_COMPLETED], service.on_triage_completed),
        Subscription("contact-delivered", [CONTACT_DELIVERED], service.on_contact_delivered),
        Subscription("acute-request-closed", [ACUTE_REQUEST_CLOSED], service.on_acute_request_closed),
    ])

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start_database()
        async with runtime.sessions() as session, session.begin():
            await service.seed_tariffs(session)
        bus = asyncio.create_task(runtime.start_bus())
        yield
        bus.cancel()
        await asyncio.gather(bus, return_exceptions=True)
        await runtime.stop()

    app = FastAPI(title="Regiozorg shadow billing", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.runtime = runtime
    app.state.verifier = TokenVerifier(jwks_url=settings.resolved_jwks_url, issuer=settings.issuer,
                                       audience=settings.token_audience)
    app.state.users = UserRegistry(demo=settings.demo)
    app.state.templates = templates(Path(__file__).parent)
    web.install(app, service=settings.service_name, max_body_bytes=settings.max_body_bytes)
    web.add_operations_routes(app, runtime)
    app.include_router(feeds.router)
    app.include_router(views.router)
    return app
