"""The shadow billing service process: prestations, shadow lines, insurer feeds and the billing console."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from functools import partial
from pathlib import Path

from fastapi import FastAPI

from services.billing_shadow import evaluation, service
from services.billing_shadow.api import evaluation as evaluation_api
from services.billing_shadow.api import feeds, measures
from services.billing_shadow.console import evaluation as evaluation_console
from services.billing_shadow.console import views
from services.billing_shadow.settings import BillingSettings
from shared.bus.topics import ACUTE_REQUEST_CLOSED, CONTACT_DELIVERED, CONTACT_LINKED, TRIAGE_COMPLETED
from shared.logs import configure_logging
from shared.runtime import ServiceRuntime, Subscription
from shared.web import service_app


def create_app(settings: BillingSettings | None = None) -> FastAPI:
    settings = settings or BillingSettings()
    settings.experiment()  # a malformed experiment configuration fails the start, not the first request
    configure_logging(settings.service_name)

    async def feed_publisher(runtime: ServiceRuntime) -> None:
        # Debounced: changes within one interval become one revision.
        await asyncio.sleep(settings.feed_debounce_seconds)
        async with runtime.sessions() as session, session.begin():
            published = await service.publish_dirty_feeds(session, inclusion_target=settings.inclusion_target)
        if published:
            runtime.relay.wake()

    async def seed(runtime: ServiceRuntime) -> None:
        async with runtime.sessions() as session, session.begin():
            await service.seed_tariffs(session)

    grace = timedelta(hours=settings.lock_grace_hours)
    runtime = ServiceRuntime(settings=settings, background=[feed_publisher], subscriptions=[
        Subscription("triage-completed", [TRIAGE_COMPLETED], partial(service.on_triage_completed, grace=grace)),
        Subscription("contact-delivered", [CONTACT_DELIVERED], partial(service.on_contact_delivered, grace=grace)),
        Subscription("acute-request-closed", [ACUTE_REQUEST_CLOSED],
                     partial(service.on_acute_request_closed, grace=grace)),
        # The evaluation's read model, a consumer of its own: replaying it alone rebuilds the figures.
        Subscription("evaluation", [TRIAGE_COMPLETED, CONTACT_LINKED, CONTACT_DELIVERED, ACUTE_REQUEST_CLOSED],
                     evaluation.on_event),
    ])
    routers = [feeds.router, evaluation_api.router, measures.router, evaluation_console.router, views.router]
    return service_app(title="Regiozorg shadow billing", runtime=runtime, service_dir=Path(__file__).parent,
                       routers=routers, on_start=seed)
