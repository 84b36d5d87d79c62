"""Access tokens: issuing (client credentials, served by triage) and checking them in every service.

Tokens are short-lived RS256 JWTs; services verify them against the issuer's JWKS and
check SMART v2 style scopes (`system/Task.rs`) or product scopes (`feed.read`) per route.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import httpx
from fastapi import Depends, Request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey

from shared.fhir import FhirError, Issue

TOKEN_LIFETIME_SECONDS = 300
FOLDER_CHECK_SECONDS = 1.0
# A client secret verified once is taken on its word for this long (scrypt costs ~40 ms of CPU per check).
VERIFIED_SECRET_SECONDS = 300
VERIFIED_SECRET_LIMIT = 1024
# A verified access token is taken on its word until it expires (an RS256 check and the claims cost ~0.3 ms of CPU
# per request); bounded, since every client renews its token every few minutes.
VERIFIED_TOKEN_LIMIT = 4096


@dataclass(frozen=True)
class Caller:
    """Who is calling, resolved once per request from the token or console login."""

    subject: str
    kind: str  # "client" or "user"
    org: str  # "system|value" of the organisation acted for
    scopes: frozenset[str]
    role: str | None = None

    @property
    def org_value(self) -> str:
        return self.org.split("|", 1)[1]


def scope_allows(scopes: frozenset[str], *, resource: str, action: str) -> bool:
    """SMART v2: `system/Task.rs` grants read and search of Task; v1 `.read`/`.write`/`.*` also understood."""
    for scope in scopes:
        context, _, rest = scope.partition("/")
        if context not in ("system", "user") or "." not in rest:
            continue
        kind, _, perms = rest.partition(".")
        if kind not in (resource, "*"):
            continue
        if perms == "*" or (perms == "read" and action in "rs") or (perms == "write" and action in "cud"):
            return True
        if action in perms and set(perms) <= set("cruds"):
            return True
    return False


class SigningKeys:
    """The authorization server's signing keys, one file each in a folder of the data directory.

    The newest key signs; an older key stays in the JWKS until every token it signed has expired,
    so a rotation (a new file, see `python -m services.triage.keys`) needs no downtime.
    """

    def __init__(self, folder: Path, *, retire_after: int = TOKEN_LIFETIME_SECONDS + 60) -> None:
        self.folder = folder
        self.retire_after = retire_after
        self._stamp: tuple[int, int] | None = None
        self._keys: list[tuple[int, RSAKey]] = []
        self._set: KeySet | None = None
        self._set_kids: tuple[str | None, ...] = ()
        self._checked_at = float("-inf")  # monotonic time the folder was last looked at by key_set
        folder.mkdir(parents=True, exist_ok=True)
        if not any(folder.glob("*.json")):
            self.rotate()

    def rotate(self) -> str:
        """Add a new signing key; it signs from now on. Returns its key id."""
        # Nanoseconds, strictly increasing: the newest key must sort last even within one second.
        newest = max((self._created(p) for p in self.folder.glob("*.json")), default=0)
        created = max(time.time_ns(), newest + 1)
        kid = f"{created}-{uuid.uuid4().hex[:8]}"
        key = RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})
        path = self.folder / f"{kid}.json"
        # Written aside and renamed into place: other worker processes read the folder at any moment.
        draft = self.folder / f".{kid}.draft"
        draft.touch(0o600)
        draft.write_text(json.dumps(key.as_dict(private=True)))
        draft.rename(path)
        self._checked_at = float("-inf")
        return kid

    @staticmethod
    def _created(path: Path) -> int:
        return int(path.name.split("-", 1)[0])

    def _current_keys(self) -> list[tuple[int, RSAKey]]:
        stat = self.folder.stat()
        stamp = (stat.st_mtime_ns, len(list(self.folder.glob("*.json"))))
        if stamp != self._stamp:
            files = sorted(self.folder.glob("*.json"), key=self._created)
            loaded = [(self._created(p), RSAKey.import_key(json.loads(p.read_text()))) for p in files]
            self._keys, self._stamp = loaded, stamp
        return self._retire(self._keys)

    def _retire(self, keys: list[tuple[int, RSAKey]]) -> list[tuple[int, RSAKey]]:
        now = time.time_ns()
        # A key is retired once its successor has been signing for longer than a token lives.
        return [(created, key) for i, (created, key) in enumerate(keys)
                if i == len(keys) - 1 or keys[i + 1][0] + self.retire_after * 10**9 > now]

    @property
    def current(self) -> RSAKey:
        return self._current_keys()[-1][1]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.as_dict(private=False) for _, key in self._current_keys()]}

    def key_set(self, kid: str | None = None) -> KeySet:
        """The verifying keys, rebuilt only when the folder changed or a key retired.

        Every token check asks, so the folder is looked at once per second at most, and at once for a key id
        not seen yet (another worker may just have rotated).
        """
        now = time.monotonic()
        if (self._set is not None and now - self._checked_at < FOLDER_CHECK_SECONDS
                and (kid is None or kid in self._set_kids)):
            current = self._retire(self._keys)
        else:
            current, self._checked_at = self._current_keys(), now
        kids = tuple(key.kid for _, key in current)
        if self._set is None or self._set_kids != kids:
            self._set, self._set_kids = KeySet([key for _, key in current]), kids
        return self._set


def hash_secret(secret: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


_verified: dict[bytes, float] = {}  # sha256 of (stored hash, secret) -> monotonic time it stops counting


def verify_secret(secret: str, stored: str) -> bool:
    """Check a secret against its scrypt hash; a secret that matched recently is not hashed again.

    Only matches are remembered, under a digest of the stored hash and the secret (never the secret), so a
    changed secret or hash misses, and every wrong guess still pays the full scrypt cost.
    """
    remembered = hashlib.sha256(f"{stored}\0{secret}".encode()).digest()
    now = time.monotonic()
    if _verified.get(remembered, 0.0) > now:
        return True
    _, salt, _digest = stored.split("$")
    if not hmac.compare_digest(hash_secret(secret, base64.b64decode(salt)), stored):
        return False
    if len(_verified) >= VERIFIED_SECRET_LIMIT:
        for key in [k for k, until in _verified.items() if until <= now] or list(_verified)[:1]:
            del _verified[key]
    _verified[remembered] = now + VERIFIED_SECRET_SECONDS
    return True


class TokenIssuer:
    def __init__(self, *, keys: SigningKeys, issuer: str, audience: str) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience

    def issue(self, *, client_id: str, org: str, scopes: tuple[str, ...]) -> str:
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": client_id, "aud": self.audience, "iat": now,
                  "exp": now + TOKEN_LIFETIME_SECONDS, "jti": uuid.uuid4().hex, "scope": " ".join(scopes),
                  "org": org, "client_id": client_id}
        key = self.keys.current
        return jwt.encode({"alg": "RS256", "kid": key.kid, "typ": "JWT"}, claims, key)


class TokenVerifier:
    """Checks bearer tokens against the issuer's JWKS, fetched once and again for an unknown key id."""

    def __init__(self, *, jwks_url: str, issuer: str, audience: str, local: SigningKeys | None = None) -> None:
        self.jwks_url = jwks_url
        self.issuer = issuer
        self.audience = audience
        self.local = local
        self._keys: KeySet | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()
        self._verified: dict[str, tuple[float, str, Caller]] = {}  # token -> (exp, kid, caller)

    async def key_set(self, kid: str | None) -> KeySet:
        if self.local is not None:  # the issuer itself reads its key folder, no HTTP round trip
            return self.local.key_set(kid)
        known = self._keys is not None and any(k.kid == kid for k in self._keys.keys)
        if known:
            assert self._keys is not None
            return self._keys
        async with self._lock:
            if self._keys is None or time.monotonic() - self._fetched_at > 10:
                try:
                    async with httpx.AsyncClient(timeout=5) as client:
                        response = await client.get(self.jwks_url)
                        response.raise_for_status()
                        self._keys = KeySet.import_key_set(response.json())
                        self._fetched_at = time.monotonic()
                except (httpx.HTTPError, ValueError, JoseError) as exc:
                    if self._keys is None:
                        raise FhirError(503, Issue("error", "transient",
                                                   "the token issuer's keys cannot be fetched")) from exc
            assert self._keys is not None
            return self._keys

    async def verify(self, token: str) -> Caller:
        """The caller a bearer token names; FhirError 401 for a token that is malformed, not signed by a current key
        of the issuer, for another issuer or audience, or expired (503 when the issuer's keys cannot be fetched).

        A token verified before is answered from memory until its `exp`, as long as the key that signed it is
        still one of the issuer's keys (a key withdrawn from the JWKS or the key folder ends its tokens at once).
        Nothing else about a token can change while it is valid: access tokens are not revocable here (RFC 7009
        is not offered), and a client's scopes and organisation are read from the token, not from its record.
        """
        remembered = self._verified.get(token)
        if remembered is not None:
            expires, kid, caller = remembered
            if time.time() < expires and any(key.kid == kid for key in (await self.key_set(kid)).keys):
                return caller
            del self._verified[token]
        try:
            header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
            keys = await self.key_set(header.get("kid"))
            decoded = jwt.decode(token, keys, algorithms=["RS256"])
            jwt.JWTClaimsRegistry(iss={"essential": True, "value": self.issuer},
                                  aud={"essential": True, "value": self.audience},
                                  exp={"essential": True}, sub={"essential": True}).validate(decoded.claims)
        except FhirError:
            raise
        except (JoseError, ValueError, IndexError, KeyError, TypeError, AttributeError) as exc:
            raise FhirError(401, Issue("error", "login", f"invalid access token ({exc.__class__.__name__})")) from exc
        claims = decoded.claims
        caller = Caller(subject=str(claims["sub"]), kind="client", org=str(claims.get("org", "")),
                        scopes=frozenset(str(claims.get("scope", "")).split()))
        kid = decoded.header.get("kid")
        if isinstance(kid, str) and isinstance(claims.get("exp"), int | float):
            self._remember(token, float(claims["exp"]), kid, caller)
        return caller

    def _remember(self, token: str, expires: float, kid: str, caller: Caller) -> None:
        if len(self._verified) >= VERIFIED_TOKEN_LIMIT:
            now = time.time()
            expired = [t for t, (until, _, _) in self._verified.items() if until <= now]
            for old in expired or list(self._verified)[:VERIFIED_TOKEN_LIMIT // 8]:  # else the oldest eighth
                del self._verified[old]
        self._verified[token] = (expires, kid, caller)


async def current_caller(request: Request) -> Caller:
    """The single place where a request's identity is resolved (bearer token)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise FhirError(401, Issue("error", "login", "a bearer access token is required"))
    verifier: TokenVerifier = request.app.state.verifier
    caller = await verifier.verify(token.strip())
    request.state.caller = caller  # for the audit of whatever this request does or is refused
    return caller


CurrentCaller = Annotated[Caller, Depends(current_caller)]


def require_scope(*, scope: str | None = None, resource: str | None = None, action: str | None = None):  # type: ignore[no-untyped-def]
    """A dependency that resolves the caller and refuses (403) when the scope is missing."""

    async def dependency(caller: CurrentCaller) -> Caller:
        return scoped(caller, scope=scope, resource=resource, action=action)

    return Depends(dependency)


def scoped(caller: Caller, *, scope: str | None = None, resource: str | None = None,
           action: str | None = None) -> Caller:
    """`caller`, when its scopes hold `scope` or allow `action` on `resource`; else FhirError 403."""
    allowed = (scope is not None and scope in caller.scopes) or (
        resource is not None and action is not None and scope_allows(caller.scopes, resource=resource, action=action))
    if not allowed:
        wanted = scope or f"system/{resource}.{action}"
        raise FhirError(403, Issue("error", "forbidden", f"the access token lacks the scope {wanted}"))
    return caller
