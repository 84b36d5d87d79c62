"""The coordination service process: Tasks across organisations, the case manager's and the partner console."""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path

from fastapi import FastAPI

from services.coordination import directory, episodes, notifications, patients, service
from services.coordination.api import fhir, work
from services.coordination.console import partner, views
from services.coordination.settings import CoordinationSettings
from shared.bus.topics import (
    DIRECTORY_CHANGED,
    LINKED_CONTACT_RECORDED,
    PATIENT_CHANGED,
    REFERRAL_RECEIVED,
    TRIAGE_COMPLETED,
)
from shared.logs import configure_logging
from shared.runtime import ServiceRuntime, Subscription
from shared.web import service_app


def create_app(settings: CoordinationSettings | None = None) -> FastAPI:
    settings = settings or CoordinationSettings()
    configure_logging(settings.service_name)
    runtime = ServiceRuntime(settings=settings, subscriptions=[
        Subscription("triage-completed", [TRIAGE_COMPLETED], partial(
            service.on_triage_completed, front_door_fhir_base=settings.front_door_fhir_base,
            codesystem_base=settings.codesystem_base)),
        Subscription("referral-received", [REFERRAL_RECEIVED], episodes.on_referral_received),
        Subscription("patient-changed", [PATIENT_CHANGED], partial(
            service.on_patient_changed, codesystem_base=settings.codesystem_base)),
        Subscription("linked-contact-recorded", [LINKED_CONTACT_RECORDED], service.on_linked_contact_recorded),
        Subscription("directory-changed", [DIRECTORY_CHANGED], partial(
            directory.on_directory_changed, codesystem_base=settings.codesystem_base))])
    sender = notifications.Sender(sessions=runtime.sessions, engine=runtime.engine, base_url=settings.public_url,
                                  policy=notifications.RetryPolicy(settings.notify_base_seconds,
                                                                   settings.notify_max_backoff_seconds,
                                                                   settings.notify_give_up_seconds),
                                  fallback_seconds=settings.notify_fallback_seconds)

    async def deliver_notifications(_runtime: ServiceRuntime) -> None:
        await sender.serve_forever()  # woken by the commits that add notifications (issue #17)

    async def check_deadlines(runtime: ServiceRuntime) -> None:
        async with runtime.sessions() as session, session.begin():
            flagged = await service.flag_overdue(session)
        if flagged:
            runtime.relay.wake()
        await asyncio.sleep(settings.overdue_check_seconds)

    runtime.background += [deliver_notifications, check_deadlines]
    app = service_app(title="Regiozorg coordination", runtime=runtime, service_dir=Path(__file__).parent,
                      routers=[fhir.router, work.router, views.router, partner.router])
    app.state.patient_names = patients.AUDIT_NAMES  # the audit page finds patients by name here
    return app
