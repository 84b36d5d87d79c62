"""The triage service process: front door FHIR intake, triage API and console, authorization server."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.triage import service
from services.triage.api import fhir, oauth, requests
from services.triage.console import views
from services.triage.models import TABLES
from services.triage.settings import TriageSettings
from shared.auth import ClientRegistry, SigningKey, TokenIssuer, TokenVerifier
from shared.bus.topics import ACUTE_REQUEST_CLOSED
from shared.logs import configure_logging
from shared.runtime import ServiceRuntime, Subscription
from shared.web import service_app


def create_app(settings: TriageSettings | None = None) -> FastAPI:
    settings = settings or TriageSettings()
    configure_logging(settings.service_name)
    runtime = ServiceRuntime(settings=settings, tables=TABLES, subscriptions=[
        Subscription("acute-request-closed", [ACUTE_REQUEST_CLOSED], service.close_request)])
    signing_key = SigningKey(settings.data_dir / "keys" / "triage-signing-key.json")
    verifier = TokenVerifier(jwks_url=settings.resolved_jwks_url, issuer=settings.issuer,
                             audience=settings.token_audience, local=signing_key)
    app = service_app(title="Regiozorg triage", runtime=runtime, service_dir=Path(__file__).parent,
                      routers=[oauth.router, fhir.router, requests.router, views.router], verifier=verifier)
    app.state.signing_key = signing_key
    app.state.issuer = TokenIssuer(key=signing_key, issuer=settings.issuer, audience=settings.token_audience)
    app.state.clients = ClientRegistry(demo=settings.demo)
    return app
