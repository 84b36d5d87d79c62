"""Partner systems authenticate the SMART Backend Services way, and keys rotate without downtime."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from authlib.oauth2.rfc7523.assertion import private_key_jwt_sign
from joserfc.jwk import RSAKey

from infra.referrals import referral_bundle
from infra.stack import ROOT, Stack
from services.triage.clients import demo_key_path
from tests.conftest import started_stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from started_stack(tmp_path_factory, "auth")


class SmartPrivateKeyJWT(PrivateKeyJWT):
    """authlib signs client assertions valid for an hour; SMART Backend Services allows five minutes."""

    def sign(self, auth, token_endpoint):  # type: ignore[no-untyped-def]
        return private_key_jwt_sign(RSAKey.import_key(auth.client_secret), client_id=auth.client_id,
                                    token_endpoint=token_endpoint, claims=self.claims, header=self.headers,
                                    alg=self.alg, expires_in=240)


def oauth_client(stack: Stack, client_id: str) -> AsyncOAuth2Client:
    token_url = f"{stack.url('triage')}/oauth/token"
    key = json.loads(demo_key_path(stack.data_dir, client_id).read_text())
    return AsyncOAuth2Client(client_id=client_id, client_secret=key,
                             token_endpoint_auth_method=SmartPrivateKeyJWT(token_url, alg="RS384"))


async def test_assertions_valid_for_an_hour_are_refused(stack: Stack) -> None:
    token_url = f"{stack.url('triage')}/oauth/token"
    key = json.loads(demo_key_path(stack.data_dir, "ehr-delinde").read_text())
    async with AsyncOAuth2Client(client_id="ehr-delinde", client_secret=key,
                                 token_endpoint_auth_method=PrivateKeyJWT(token_url, alg="RS384")) as client:
        with pytest.raises(Exception, match="longer than 5 minutes"):
            await client.fetch_token(token_url, grant_type="client_credentials")


async def test_real_oauth_client_with_private_key_jwt_gets_a_token_and_posts_a_referral(stack: Stack) -> None:
    token_url = f"{stack.url('triage')}/oauth/token"
    async with oauth_client(stack, "ehr-delinde") as client:
        token = await client.fetch_token(token_url, grant_type="client_credentials")
        assert token["token_type"] == "Bearer" and token["expires_in"] <= 300
        assert "refresh_token" not in token
        response = await client.post(f"{stack.url('triage')}/fhir", json=referral_bundle(bsn="999990032"),
                                     headers={"Content-Type": "application/fhir+json"})
    assert response.status_code == 200, response.text
    assert response.json()["type"] == "transaction-response"


async def test_discovery_documents_name_the_token_endpoint_and_methods(stack: Stack) -> None:
    smart = httpx.get(f"{stack.url('triage')}/.well-known/smart-configuration").json()
    assert smart["token_endpoint"] == f"{stack.url('triage')}/oauth/token"
    assert "private_key_jwt" in smart["token_endpoint_auth_methods_supported"]
    assert set(smart["token_endpoint_auth_signing_alg_values_supported"]) == {"RS384", "ES384"}
    oidc = httpx.get(f"{stack.url('triage')}/.well-known/openid-configuration").json()
    assert oidc["jwks_uri"] == f"{stack.url('triage')}/.well-known/jwks.json"


def test_rotating_the_signing_key_keeps_issued_tokens_valid_in_every_service(stack: Stack) -> None:
    def token() -> str:
        return httpx.post(f"{stack.url('triage')}/oauth/token", data={"grant_type": "client_credentials"},
                          auth=("ops", "demo-ops")).json()["access_token"]

    before = token()
    kids_before = {k["kid"] for k in httpx.get(f"{stack.url('triage')}/.well-known/jwks.json").json()["keys"]}
    rotated = subprocess.run([sys.executable, "-m", "services.triage.cli", "rotate-signing-key"], cwd=ROOT,
                             env={**os.environ, "REGIOZORG_DATA_DIR": str(stack.data_dir)}, capture_output=True,
                             text=True, check=True)
    assert "new signing key" in rotated.stdout
    kids_after = {k["kid"] for k in httpx.get(f"{stack.url('triage')}/.well-known/jwks.json").json()["keys"]}
    assert kids_before < kids_after and len(kids_after) == 2
    after = token()
    for bearer in (before, after):
        for url in (f"{stack.url('triage')}/api/v1/worklist", f"{stack.url('coordination')}/fhir/Task",
                    f"{stack.url('billing_shadow')}/api/v1/prestations"):
            assert httpx.get(url, headers={"Authorization": f"Bearer {bearer}"}).status_code == 200, url
