"""private_key_jwt client authentication (SMART Backend Services) on both database backends."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.triage import clients
from shared import migrations
from shared.db import make_engine, session_factory

pytestmark = pytest.mark.integration
TOKEN_URL = "https://regiozorg.example/oauth/token"
RSA = RSAKey.generate_key(2048, parameters={"kid": "rsa-1", "alg": "RS384"})
EC = ECKey.generate_key("P-384", parameters={"kid": "ec-1", "alg": "ES384"})


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(database_url)
    await migrations.migrate(engine, "triage")
    factory = session_factory(engine)
    async with factory() as session, session.begin():
        await clients.register(session, client_id="ehr-test", org="http://fhir.nl/fhir/NamingSystem/ura|90000010",
                               scopes=["system/Task.rs"], jwks={"keys": [RSA.as_dict(private=False),
                                                                         EC.as_dict(private=False)]}, jwks_uri=None)
    yield factory
    await engine.dispose()


def assertion(key: Any, alg: str, **overrides: Any) -> str:
    now = int(time.time())
    claims = {"iss": "ehr-test", "sub": "ehr-test", "aud": TOKEN_URL, "exp": now + 240, "iat": now,
              "jti": uuid.uuid4().hex, **overrides}
    return jwt.encode({"alg": alg, "kid": key.kid, "typ": "JWT"}, claims, key, algorithms=[alg])


async def authenticate(sessions: async_sessionmaker[AsyncSession], token: str) -> clients.AuthenticatedClient:
    async with sessions() as session, session.begin():
        return await clients.authenticate_assertion(session, assertion=token, token_url=TOKEN_URL)


@pytest.mark.parametrize(("key", "alg"), [(RSA, "RS384"), (EC, "ES384")])
async def test_assertion_signed_with_a_registered_key_authenticates(sessions, key: Any, alg: str) -> None:
    client = await authenticate(sessions, assertion(key, alg))
    assert client.client_id == "ehr-test"
    assert client.org.endswith("|90000010") and client.scopes == ("system/Task.rs",)


async def test_replayed_assertion_is_refused(sessions) -> None:
    token = assertion(RSA, "RS384")
    await authenticate(sessions, token)
    with pytest.raises(clients.ClientAuthError, match="replay"):
        await authenticate(sessions, token)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"aud": "https://elsewhere.example/token"}, "rejected"),
    ({"exp": int(time.time()) - 120}, "rejected"),
    ({"exp": int(time.time()) + 3600}, "longer than 5 minutes"),
    ({"iss": "someone-else"}, "rejected"),
    ({"jti": None}, "rejected"),
    ({"sub": "ehr-unknown", "iss": "ehr-unknown"}, "unknown client"),
])
async def test_assertion_with_wrong_claims_is_refused(sessions, overrides: dict[str, Any], message: str) -> None:
    claims = {k: v for k, v in overrides.items() if v is not None}
    token = assertion(RSA, "RS384", **claims)
    if overrides.get("jti", "") is None:
        token = jwt.encode({"alg": "RS384", "kid": RSA.kid}, {
            "iss": "ehr-test", "sub": "ehr-test", "aud": TOKEN_URL, "exp": int(time.time()) + 60}, RSA,
            algorithms=["RS384"])
    with pytest.raises(clients.ClientAuthError, match=message):
        await authenticate(sessions, token)


async def test_assertion_signed_with_an_unregistered_key_or_another_algorithm_is_refused(sessions) -> None:
    stranger = RSAKey.generate_key(2048, parameters={"kid": "rsa-1", "alg": "RS384"})
    with pytest.raises(clients.ClientAuthError):
        await authenticate(sessions, assertion(stranger, "RS384"))
    same_key_no_alg = RSAKey.import_key({k: v for k, v in RSA.as_dict(private=True).items() if k != "alg"})
    with pytest.raises(clients.ClientAuthError):
        await authenticate(sessions, assertion(same_key_no_alg, "RS256"))


async def test_key_rotation_adds_the_new_key_then_removes_the_old_one(sessions) -> None:
    new = RSAKey.generate_key(2048, parameters={"kid": "rsa-2", "alg": "RS384"})
    async with sessions() as session, session.begin():
        await clients.add_key(session, client_id="ehr-test", key=new.as_dict(private=False))
    await authenticate(sessions, assertion(new, "RS384"))
    await authenticate(sessions, assertion(RSA, "RS384"))
    async with sessions() as session, session.begin():
        await clients.remove_key(session, client_id="ehr-test", kid="rsa-1")
    with pytest.raises(clients.ClientAuthError):
        await authenticate(sessions, assertion(RSA, "RS384"))
    await authenticate(sessions, assertion(new, "RS384"))


async def test_registering_private_key_material_is_refused(sessions) -> None:
    async with sessions() as session:
        with pytest.raises(ValueError, match="private material"):
            await clients.add_key(session, client_id="ehr-test", key=RSAKey.generate_key(
                2048, parameters={"kid": "leaky"}).as_dict(private=True))
