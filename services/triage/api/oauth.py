"""OAuth 2.0 authorization server endpoints: client-credentials tokens, JWKS and discovery documents."""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Form, Request

from services.triage import accounts, clients
from shared.auth import TOKEN_LIFETIME_SECONDS, TokenIssuer
from shared.console import ROLE_SCOPES
from shared.region import FRONT_DOOR
from shared.responses import JSONResponse

router = APIRouter(tags=["authorization"])


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="Regiozorg"'
    return JSONResponse({"error": error, "error_description": description}, status_code=status, headers=headers)


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
    except ValueError:
        return None
    return client_id, secret


def token_url(request: Request) -> str:
    return f"{request.app.state.settings.issuer}/oauth/token"


@router.post("/oauth/token")
async def token(request: Request, grant_type: Annotated[str, Form()] = "",
                scope: Annotated[str | None, Form()] = None,
                client_assertion_type: Annotated[str | None, Form()] = None,
                client_assertion: Annotated[str | None, Form()] = None,
                code: Annotated[str | None, Form()] = None, redirect_uri: Annotated[str | None, Form()] = None,
                client_id: Annotated[str | None, Form()] = None,
                code_verifier: Annotated[str | None, Form()] = None) -> JSONResponse:
    state = request.app.state
    if grant_type == "authorization_code":
        return await _console_login(request, code=code or "", redirect_uri=redirect_uri or "",
                                    client_id=client_id or "", code_verifier=code_verifier or "")
    if grant_type != "client_credentials":
        return _oauth_error(400, "unsupported_grant_type", "only client_credentials is supported")
    try:
        async with state.runtime.sessions() as session, session.begin():
            if client_assertion_type is not None or client_assertion is not None:
                if client_assertion_type != clients.ASSERTION_TYPE or not client_assertion:
                    return _oauth_error(400, "invalid_request", f"client_assertion_type must be "
                                                                f"{clients.ASSERTION_TYPE} with a client_assertion")
                client = await clients.authenticate_assertion(session, assertion=client_assertion,
                                                              token_url=token_url(request))
            else:
                credentials = _basic_credentials(request)
                if credentials is None:
                    return _oauth_error(401, "invalid_client", "authenticate with private_key_jwt")
                client = await clients.authenticate_secret(session, client_id=credentials[0],
                                                           secret=credentials[1], demo=state.settings.demo)
    except clients.ClientAuthError as exc:
        return _oauth_error(401, "invalid_client", str(exc))
    requested = tuple(scope.split()) if scope else client.scopes
    refused = [s for s in requested if s not in client.scopes]
    if refused:
        return _oauth_error(400, "invalid_scope", f"not granted to this client: {' '.join(refused)}")
    issuer: TokenIssuer = state.issuer
    return JSONResponse({"access_token": issuer.issue(client_id=client.client_id, org=client.org, scopes=requested),
                         "token_type": "Bearer", "expires_in": TOKEN_LIFETIME_SECONDS, "scope": " ".join(requested)},
                        headers={"Cache-Control": "no-store"})


async def _console_login(request: Request, *, code: str, redirect_uri: str, client_id: str,
                         code_verifier: str) -> JSONResponse:
    """The console exchanges its code (public client, PKCE) for an id_token naming the person, role and, for a
    partner, organisation; the access token acts for that organisation (the front door for the other roles)."""
    state = request.app.state
    if client_id not in accounts.console_clients(state.settings.public_urls):
        return _oauth_error(401, "invalid_client", "unknown console client")
    try:
        async with state.runtime.sessions() as session, session.begin():
            account, nonce, sid = await accounts.redeem_code(
                session, code=code, client_id=client_id, redirect_uri=redirect_uri, code_verifier=code_verifier)
    except accounts.CodeRefused as exc:
        return _oauth_error(400, "invalid_grant", str(exc))
    scopes = tuple(sorted(ROLE_SCOPES[account.role]))
    return JSONResponse({
        "access_token": state.issuer.issue(client_id=account.username, org=account.org or FRONT_DOOR.token,
                                           scopes=scopes),
        "id_token": accounts.id_token(keys=state.signing_keys, issuer=state.settings.issuer, client_id=client_id,
                                      account=account, nonce=nonce, sid=sid),
        "token_type": "Bearer", "expires_in": TOKEN_LIFETIME_SECONDS, "scope": " ".join(scopes)},
        headers={"Cache-Control": "no-store"})


@router.get("/.well-known/jwks.json")
async def jwks(request: Request) -> JSONResponse:
    return JSONResponse(request.app.state.signing_keys.jwks(), headers={"Cache-Control": "max-age=60"})


def _discovery(request: Request) -> dict[str, object]:
    settings = request.app.state.settings
    issuer = settings.issuer
    methods = ["private_key_jwt", *(["client_secret_basic"] if settings.demo else [])]
    return {"issuer": issuer, "token_endpoint": f"{issuer}/oauth/token", "jwks_uri": f"{issuer}/.well-known/jwks.json",
            "grant_types_supported": ["client_credentials", "authorization_code"],
            "authorization_endpoint": f"{issuer}/oauth/authorize", "end_session_endpoint": f"{issuer}/oauth/logout",
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": methods,
            "token_endpoint_auth_signing_alg_values_supported": clients.ASSERTION_ALGORITHMS,
            "scopes_supported": ["system/ServiceRequest.cruds", "system/Task.cruds", "system/Subscription.cruds",
                                 "system/AuditEvent.rs", "triage.write", "coordination.write", "billing.read",
                                 "feed.read"],
            "capabilities": ["client-confidential-asymmetric", "permission-v2"]}


@router.get("/.well-known/smart-configuration")
async def smart_configuration(request: Request) -> JSONResponse:
    return JSONResponse(_discovery(request))


@router.get("/.well-known/openid-configuration")
async def openid_configuration(request: Request) -> JSONResponse:
    return JSONResponse({**_discovery(request), "response_types_supported": ["code"],
                         "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["RS256"]})
