"""The triage service process: front door FHIR intake, triage API and console, authorization server."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.triage import access, accounts, clients, configuration, patient_names, service
from services.triage.api import fhir, oauth, oidc, requests
from services.triage.console import billing as billing_console
from services.triage.console import present, views
from services.triage.settings import TriageSettings
from shared.auth import SigningKeys, TokenIssuer, TokenVerifier
from shared.bus.topics import ACUTE_REQUEST_CLOSED, TASK_CHANGED
from shared.logs import configure_logging
from shared.runtime import ServiceRuntime, Subscription
from shared.session import Signer
from shared.web import service_app


def create_app(settings: TriageSettings | None = None) -> FastAPI:
    settings = settings or TriageSettings()
    configure_logging(settings.service_name)
    runtime = ServiceRuntime(settings=settings, subscriptions=[
        Subscription("acute-request-closed", [ACUTE_REQUEST_CLOSED], service.close_request),
        # Who owns which Task: the treatment grants of the access rule (access.py).
        Subscription("task-changed", [TASK_CHANGED], access.on_task_changed)])
    signing_keys = SigningKeys(settings.data_dir / "keys" / "signing")
    verifier = TokenVerifier(jwks_url=settings.resolved_jwks_url, issuer=settings.issuer,
                             audience=settings.token_audience, local=signing_keys)

    async def seed(runtime: ServiceRuntime) -> None:
        async with runtime.sessions() as session, session.begin():
            await configuration.seed(session)
            await configuration.announce_earlier_changes(session, codesystem_base=settings.codesystem_base)
        if settings.demo:
            async with runtime.sessions() as session, session.begin():
                await clients.seed_demo_clients(session, settings.data_dir)
                await accounts.seed_demo_accounts(session)

    app = service_app(title="Regiozorg triage", runtime=runtime, service_dir=Path(__file__).parent,
                      routers=[oauth.router, oidc.router, fhir.router, requests.router, views.router,
                               billing_console.router],
                      verifier=verifier,
                      on_start=seed)
    app.state.signing_keys = signing_keys
    app.state.patient_names = patient_names.NAMES  # the audit page finds patients by name here
    # The triage console's words for codes (channels, statuses) and its due times with their day.
    app.state.templates.env.globals.update(channel_labels=present.CHANNEL_LABELS, status_labels=present.STATUS_LABELS,
                                           task_status_labels=present.TASK_STATUS_LABELS, due=present.due_label,
                                           priority_labels=present.PRIORITY_LABELS)
    app.state.session_signer = Signer(app.state.console_auth.key, "sso")

    # The authorization server checks and ends its own login sessions in its database (single logout).
    async def session_active(sid: str) -> bool:
        async with runtime.sessions() as session:
            return await accounts.session_active(session, sid)

    async def end_session(sid: str) -> None:
        await oidc.end_login_session(runtime.sessions, sid)

    app.state.console_auth.local_check = session_active
    app.state.console_auth.local_end = end_session
    app.state.issuer = TokenIssuer(keys=signing_keys, issuer=settings.issuer, audience=settings.token_audience)
    return app
