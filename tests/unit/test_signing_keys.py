"""Rotation of the authorization server's signing key without downtime, and verified tokens remembered until they
expire."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from shared.auth import SigningKeys, TokenIssuer, TokenVerifier
from shared.fhir import FhirError


@pytest.fixture
def keys(tmp_path: Path) -> SigningKeys:
    return SigningKeys(tmp_path / "signing", retire_after=360)


def _verifier(keys: SigningKeys) -> TokenVerifier:
    return TokenVerifier(jwks_url="http://unused.invalid/jwks", issuer="https://issuer", audience="regiozorg",
                         local=keys)


async def test_old_key_verifies_its_tokens_after_rotation_and_new_tokens_use_the_new_key(keys: SigningKeys) -> None:
    issuer = TokenIssuer(keys=keys, issuer="https://issuer", audience="regiozorg")
    old_token = issuer.issue(client_id="ops", org="http://fhir.nl/fhir/NamingSystem/ura|90000001", scopes=("a",))
    old_kid = keys.current.kid
    new_kid = keys.rotate()
    assert keys.current.kid == new_kid != old_kid
    assert {k["kid"] for k in keys.jwks()["keys"]} == {old_kid, new_kid}
    assert (await _verifier(keys).verify(old_token)).subject == "ops"
    new_token = issuer.issue(client_id="ops", org="x|1", scopes=("a",))
    assert (await _verifier(keys).verify(new_token)).scopes == frozenset({"a"})


def test_the_newest_key_signs_even_after_several_rotations_within_one_second(keys: SigningKeys) -> None:
    for _ in range(5):
        kid = keys.rotate()
        assert keys.current.kid == kid


def test_old_key_leaves_the_jwks_once_its_tokens_have_expired(keys: SigningKeys) -> None:
    old_kid = keys.current.kid
    new_kid = keys.rotate()
    # Age both files: the new key has been signing for longer than a token lives (retire_after).
    now = time.time_ns()
    for kid, age in ((old_kid, 800), (new_kid, 400)):
        (keys.folder / f"{kid}.json").rename(keys.folder / f"{now - age * 10**9}-{kid.split('-', 1)[1]}.json")
    os.utime(keys.folder)
    assert {k["kid"] for k in keys.jwks()["keys"]} == {new_kid}


def test_jwks_never_publishes_private_key_material(keys: SigningKeys) -> None:
    for key in keys.jwks()["keys"]:
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)


async def test_a_verified_token_is_remembered_until_it_expires_and_refused_after(
        keys: SigningKeys, monkeypatch: pytest.MonkeyPatch) -> None:
    issuer = TokenIssuer(keys=keys, issuer="https://issuer", audience="regiozorg")
    token = issuer.issue(client_id="ops", org="x|1", scopes=("a",))
    verifier = _verifier(keys)
    first = await verifier.verify(token)
    # Remembered: the signature is not checked again while the token is valid.
    monkeypatch.setattr("shared.auth.jwt.decode", lambda *_a, **_k: pytest.fail("a remembered token was decoded"))
    assert await verifier.verify(token) is first
    monkeypatch.undo()
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 301)  # past exp (300 s lifetime)
    with pytest.raises(FhirError) as refused:
        await verifier.verify(token)
    assert refused.value.status_code == 401


async def test_a_remembered_token_is_refused_once_its_signing_key_is_withdrawn(keys: SigningKeys) -> None:
    issuer = TokenIssuer(keys=keys, issuer="https://issuer", audience="regiozorg")
    token = issuer.issue(client_id="ops", org="x|1", scopes=("a",))
    verifier = _verifier(keys)
    assert (await verifier.verify(token)).subject == "ops"
    withdrawn = keys.current.kid
    keys.rotate()
    (keys.folder / f"{withdrawn}.json").unlink()  # e.g. a leaked key, removed by the operator
    with pytest.raises(FhirError) as refused:
        await verifier.verify(token)
    assert refused.value.status_code == 401


async def test_a_token_with_a_tampered_signature_is_refused_although_its_twin_was_verified(
        keys: SigningKeys) -> None:
    issuer = TokenIssuer(keys=keys, issuer="https://issuer", audience="regiozorg")
    token = issuer.issue(client_id="ops", org="x|1", scopes=("a",))
    verifier = _verifier(keys)
    await verifier.verify(token)
    head, body, signature = token.split(".")
    forged = f"{head}.{body}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}"
    with pytest.raises(FhirError) as refused:
        await verifier.verify(forged)
    assert refused.value.status_code == 401
