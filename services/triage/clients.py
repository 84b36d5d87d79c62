"""Machine clients of the authorization server: registration, keys, and authentication at the token endpoint.

Partners authenticate with `private_key_jwt` (SMART Backend Services): a short-lived JWT signed
with their own key (RS384 or ES384), `iss = sub = client_id`, `aud` = the token URL, a unique
`jti`. `client_secret_basic` is accepted only in demo mode, for the demo clients (shared/region.py).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.triage.models import OAuthClient, UsedAssertion
from shared.auth import hash_secret, verify_secret
from shared.region import DEMO_CLIENTS

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGORITHMS = ["RS384", "ES384"]
MAX_ASSERTION_SECONDS = 300
CLOCK_SKEW_SECONDS = 30


class ClientAuthError(Exception):
    """Answered as OAuth `invalid_client`; the description says what was wrong, never a secret."""


@dataclass(frozen=True)
class AuthenticatedClient:
    client_id: str
    org: str
    scopes: tuple[str, ...]


def _client(row: OAuthClient) -> AuthenticatedClient:
    return AuthenticatedClient(row.client_id, row.org, tuple(row.scopes.split()))


def demo_key_path(data_dir: Path, client_id: str) -> Path:
    return data_dir / "keys" / "clients" / f"{client_id}.private.jwk.json"


async def seed_demo_clients(session: AsyncSession, data_dir: Path) -> None:
    """Register the demo clients with their demo secret and a generated RS384 key (private half in the data folder)."""
    for demo in DEMO_CLIENTS:
        if await session.get(OAuthClient, demo.client_id) is not None:
            continue
        path = demo_key_path(data_dir, demo.client_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        key = RSAKey.generate_key(2048, parameters={"kid": f"{demo.client_id}-1", "alg": "RS384", "use": "sig"})
        path.write_text(json.dumps(key.as_dict(private=True)))
        path.chmod(0o600)
        session.add(OAuthClient(client_id=demo.client_id, org=demo.org.token, scopes=" ".join(demo.scopes),
                                jwks=json.dumps({"keys": [key.as_dict(private=False)]}),
                                secret_hash=hash_secret(demo.demo_secret)))


async def authenticate_secret(session: AsyncSession, *, client_id: str, secret: str, demo: bool) -> AuthenticatedClient:
    row = await session.get(OAuthClient, client_id)
    if not demo or row is None or row.secret_hash is None:
        hash_secret(secret)  # same work whether or not the client exists
        raise ClientAuthError("client authentication failed")
    if not verify_secret(secret, row.secret_hash):
        raise ClientAuthError("client authentication failed")
    return _client(row)


def _unverified_claims(assertion: str) -> dict[str, Any]:
    try:
        payload = assertion.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError) as exc:
        raise ClientAuthError("client_assertion is not a JWT") from exc
    if not isinstance(claims, dict):
        raise ClientAuthError("client_assertion is not a JWT")
    return claims


async def _client_keys(row: OAuthClient) -> KeySet:
    if row.jwks_uri:
        try:
            async with httpx.AsyncClient(timeout=5) as http:
                response = await http.get(row.jwks_uri)
                response.raise_for_status()
                return KeySet.import_key_set(response.json())
        except (httpx.HTTPError, ValueError, JoseError) as exc:
            raise ClientAuthError("the client's JWKS URL cannot be read") from exc
    return KeySet.import_key_set(json.loads(row.jwks))


async def authenticate_assertion(session: AsyncSession, *, assertion: str, token_url: str,
                                 now: datetime | None = None) -> AuthenticatedClient:
    """Check a private_key_jwt client assertion and remember its jti until it expires."""
    moment = now or datetime.now(UTC)
    client_id = _unverified_claims(assertion).get("sub")
    if not isinstance(client_id, str):
        raise ClientAuthError("client_assertion has no sub")
    row = await session.get(OAuthClient, client_id)
    if row is None:
        raise ClientAuthError("unknown client")
    keys = await _client_keys(row)
    try:
        decoded = jwt.decode(assertion, keys, algorithms=ASSERTION_ALGORITHMS)
        jwt.JWTClaimsRegistry(
            now=int(moment.timestamp()), leeway=CLOCK_SKEW_SECONDS,
            iss={"essential": True, "value": client_id}, sub={"essential": True, "value": client_id},
            aud={"essential": True, "value": token_url}, exp={"essential": True}, jti={"essential": True},
        ).validate(decoded.claims)
    except (JoseError, ValueError) as exc:
        raise ClientAuthError(f"client_assertion rejected: {exc.__class__.__name__}") from exc
    exp = int(decoded.claims["exp"])
    if exp - moment.timestamp() > MAX_ASSERTION_SECONDS + CLOCK_SKEW_SECONDS:
        raise ClientAuthError("client_assertion lives longer than 5 minutes")
    await session.execute(delete(UsedAssertion).where(UsedAssertion.expires_at < moment))
    try:
        async with session.begin_nested():
            session.add(UsedAssertion(jti=f"{client_id}:{decoded.claims['jti']}", client_id=client_id,
                                      expires_at=datetime.fromtimestamp(exp + CLOCK_SKEW_SECONDS, UTC)))
    except IntegrityError as exc:
        raise ClientAuthError("client_assertion was used before (jti replay)") from exc
    return _client(row)


async def register(session: AsyncSession, *, client_id: str, org: str, scopes: list[str],
                   jwks: dict[str, Any] | None, jwks_uri: str | None) -> OAuthClient:
    if (jwks is None) == (jwks_uri is None):
        raise ValueError("register a client with either a JWKS or a JWKS URL")
    if jwks is not None:
        _check_public_keys(jwks)
    row = OAuthClient(client_id=client_id, org=org, scopes=" ".join(scopes),
                      jwks=json.dumps(jwks or {"keys": []}), jwks_uri=jwks_uri)
    session.add(row)
    return row


def _check_public_keys(jwks: dict[str, Any]) -> None:
    keys = jwks.get("keys")
    if not isinstance(keys, list) or not keys:
        raise ValueError("a JWKS holds a non-empty list 'keys'")
    for key in keys:
        if not key.get("kid"):
            raise ValueError("every key needs a kid, so keys can be rotated one at a time")
        if any(private in key for private in ("d", "p", "q")):
            raise ValueError(f"key {key['kid']} contains private material; register the public key only")
    KeySet.import_key_set(jwks)


async def add_key(session: AsyncSession, *, client_id: str, key: dict[str, Any]) -> OAuthClient:
    """Rotation, step 1: the new key verifies alongside the old one."""
    row = await _require(session, client_id)
    current = json.loads(row.jwks)
    if any(k.get("kid") == key.get("kid") for k in current["keys"]):
        raise ValueError(f"client {client_id} already has a key {key.get('kid')}")
    updated = {"keys": [*current["keys"], key]}
    _check_public_keys(updated)
    row.jwks = json.dumps(updated)
    session.add(row)
    return row


async def remove_key(session: AsyncSession, *, client_id: str, kid: str) -> OAuthClient:
    """Rotation, step 2: once the partner signs with its new key, the old one is removed."""
    row = await _require(session, client_id)
    current = json.loads(row.jwks)
    remaining = [k for k in current["keys"] if k.get("kid") != kid]
    if len(remaining) == len(current["keys"]):
        raise ValueError(f"client {client_id} has no key {kid}")
    if not remaining and not row.jwks_uri:
        raise ValueError("a client keeps at least one key")
    row.jwks = json.dumps({"keys": remaining})
    session.add(row)
    return row


async def _require(session: AsyncSession, client_id: str) -> OAuthClient:
    row = await session.get(OAuthClient, client_id)
    if row is None:
        raise ValueError(f"unknown client {client_id}")
    return row
