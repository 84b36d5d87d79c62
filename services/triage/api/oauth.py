"""OAuth 2.0 authorization server endpoints: client-credentials tokens, JWKS and discovery documents."""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse

from shared.auth import TOKEN_LIFETIME_SECONDS, ClientRegistry, TokenIssuer

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
        client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
    except ValueError:
        return None
    return client_id, secret


@router.post("/oauth/token")
async def token(request: Request, grant_type: Annotated[str, Form()] = "",
                scope: Annotated[str | None, Form()] = None) -> JSONResponse:
    state = request.app.state
    registry: ClientRegistry = state.clients
    if grant_type != "client_credentials":
        return _oauth_error(400, "unsupported_grant_type", "only client_credentials is supported")
    credentials = _basic_credentials(request)
    if credentials is None or not registry.demo:
        return _oauth_error(401, "invalid_client", "client authentication failed")
    client = registry.authenticate(*credentials)
    if client is None:
        return _oauth_error(401, "invalid_client", "client authentication failed")
    requested = tuple(scope.split()) if scope else client.scopes
    refused = [s for s in requested if s not in client.scopes]
    if refused:
        return _oauth_error(400, "invalid_scope", f"not granted to this client: {' '.join(refused)}")
    issuer: TokenIssuer = state.issuer
    return JSONResponse({"access_token": issuer.issue(client, requested), "token_type": "Bearer",
                         "expires_in": TOKEN_LIFETIME_SECONDS, "scope": " ".join(requested)},
                        headers={"Cache-Control": "no-store"})


@router.get("/.well-known/jwks.json")
async def jwks(request: Request) -> JSONResponse:
    return JSONResponse(request.app.state.signing_key.jwks())


def _discovery(request: Request) -> dict[str, object]:
    issuer = request.app.state.settings.issuer
    return {"issuer": issuer, "token_endpoint": f"{issuer}/oauth/token", "jwks_uri": f"{issuer}/.well-known/jwks.json",
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "scopes_supported": sorted({s for c in request.app.state.clients._clients.values() for s in c[0].scopes}),
            "capabilities": ["client-confidential-symmetric"]}


@router.get("/.well-known/smart-configuration")
async def smart_configuration(request: Request) -> JSONResponse:
    return JSONResponse(_discovery(request))


@router.get("/.well-known/openid-configuration")
async def openid_configuration(request: Request) -> JSONResponse:
    return JSONResponse({**_discovery(request), "response_types_supported": ["token"],
                         "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["RS256"]})
