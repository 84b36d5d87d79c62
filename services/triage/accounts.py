"""Console accounts and the authorization-code flow (with PKCE) that logs people in to all three consoles."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from joserfc import jwt
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.triage.models import AuthorizationCode, ConsoleAccount, LoginFailure, LoginSession
from shared.auth import SigningKeys, hash_secret, verify_secret
from shared.console import ORG_ROLES, ROLE_SCOPES
from shared.region import DEMO_USERS, care_provider

ROLES = tuple(ROLE_SCOPES)  # triagist, casemanager, declaratie, beheer, partner (bound to an organisation)
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
CODE_LIFETIME = timedelta(seconds=60)
ID_TOKEN_SECONDS = 300
_DUMMY_HASH = hash_secret("no such account")
# Refusals shown on the (Dutch) login page; the English texts are in shared/i18n.py.
TOO_MANY_FAILURES = "Te veel mislukte pogingen; probeer het over 15 minuten opnieuw."
WRONG_PASSWORD = "Onbekende gebruiker of verkeerd wachtwoord."
DISABLED = "Dit account is uitgeschakeld; neem contact op met beheer."
MIN_PASSWORD = 12


@dataclass(frozen=True)
class LoginOutcome:
    """Either the account or why the login was refused (shown to the person; never says if the user exists)."""

    account: ConsoleAccount | None
    refusal: str | None = None


class CodeRefused(Exception):
    pass


class AccountRefused(ValueError):
    """An account change the rules refuse: str() in English (command line, logs); `dutch`, a Dutch text with
    {placeholders} filled from `values`, is what the admin's console shows (English in shared/i18n.py)."""

    def __init__(self, english: str, dutch: str, **values: str) -> None:
        super().__init__(english)
        self.dutch = dutch
        self.values = values


class AccountMissing(LookupError):
    """No console account by this name (the console says so in Dutch, with `username`)."""

    dutch = "Er is geen account {username}."

    def __init__(self, username: str) -> None:
        super().__init__(f"there is no console account {username}")
        self.values = {"username": username}


@dataclass(frozen=True)
class ConsoleClient:
    client_id: str
    redirect_uri: str
    home: str


def console_clients(public_urls: dict[str, str]) -> dict[str, ConsoleClient]:
    """The three consoles are public OIDC clients (PKCE, no secret), each with one exact redirect URI."""
    return {f"console-{name}": ConsoleClient(f"console-{name}", f"{url}/console/callback", f"{url}/console")
            for name, url in public_urls.items()}


async def seed_demo_accounts(session: AsyncSession) -> None:
    for user in DEMO_USERS:
        if await session.get(ConsoleAccount, user.username) is None:
            session.add(ConsoleAccount(username=user.username, display_name=user.display_name, role=user.role,
                                       org=user.org.token if user.org else None,
                                       password_hash=hash_secret(user.demo_password), created_by="demo"))


async def create_account(session: AsyncSession, *, username: str, display_name: str, role: str, password: str,
                         created_by: str, org: str | None = None) -> ConsoleAccount:
    """A new console account; raises ValueError (shown to the admin) when a rule is broken.

    `org` ("system|value") is required for a partner and must be a care provider of the region (shared/region.py),
    and is refused for every other role: those act for the front door.
    """
    if role not in ROLES:
        raise AccountRefused(f"role must be one of {', '.join(ROLES)}", "Kies een rol uit: {roles}.",
                             roles=", ".join(ROLES))
    if role in ORG_ROLES and care_provider(org) is None:
        raise AccountRefused(f"a {role} account belongs to one care provider of the region: choose its organisation",
                             "Een account met de rol {role} hoort bij één zorgaanbieder van de regio: kies de "
                             "organisatie.", role=role)
    if role not in ORG_ROLES and org:
        raise AccountRefused(f"a {role} account acts for the front door and belongs to no other organisation",
                             "Een account met de rol {role} werkt voor de voordeur en hoort bij geen andere "
                             "organisatie.", role=role)
    if not username.isascii() or not username.replace(".", "").replace("-", "").isalnum() or len(username) > 60:
        raise AccountRefused("a username is letters, digits, dots and dashes",
                             "Een gebruikersnaam bestaat uit letters, cijfers, punten en streepjes.")
    if len(password) < MIN_PASSWORD:
        raise AccountRefused(f"a password has at least {MIN_PASSWORD} characters",
                             "Een wachtwoord heeft minstens {count} tekens.", count=str(MIN_PASSWORD))
    if await session.get(ConsoleAccount, username) is not None:
        raise AccountRefused(f"the username {username} is taken", "De gebruikersnaam {username} is al in gebruik.",
                             username=username)
    account = ConsoleAccount(username=username, display_name=display_name, role=role,
                             org=org if role in ORG_ROLES else None, password_hash=hash_secret(password),
                             created_by=created_by)
    session.add(account)
    return account


async def accounts(session: AsyncSession) -> list[ConsoleAccount]:
    return list((await session.execute(select(ConsoleAccount).order_by(ConsoleAccount.username))).scalars())


async def authenticate(session: AsyncSession, *, username: str, password: str,
                       now: datetime | None = None) -> LoginOutcome:
    """Check a password; after five failures in fifteen minutes the account is locked for fifteen minutes.

    A refusal is returned, not raised, so that the edge commits the recorded failure. A disabled account is refused
    (saying so only to someone who knows its password)."""
    moment = now or datetime.now(UTC)
    recent = (await session.execute(select(func.count()).select_from(LoginFailure).where(
        LoginFailure.username == username, LoginFailure.at > moment - LOCKOUT))).scalar_one()
    if recent >= MAX_FAILURES:
        return LoginOutcome(None, TOO_MANY_FAILURES)
    account = await session.get(ConsoleAccount, username)
    # Hash even for an unknown user, so the answer takes as long either way.
    valid = verify_secret(password, account.password_hash if account else _DUMMY_HASH)
    if account is None or not valid:
        session.add(LoginFailure(username=username, at=moment))
        return LoginOutcome(None, WRONG_PASSWORD)
    if account.disabled:
        return LoginOutcome(None, DISABLED)
    await session.execute(delete(LoginFailure).where(LoginFailure.username == username))
    return LoginOutcome(account)


async def start_session(session: AsyncSession, username: str) -> str:
    """A new login session for this person: its `sid` (random, 43 characters) goes in the SSO cookie and in every
    id_token issued under it, so that one logout can end all the consoles it opened."""
    sid = secrets.token_urlsafe(32)
    session.add(LoginSession(sid=sid, username=username))
    return sid


async def session_active(session: AsyncSession, sid: str) -> bool:
    """Whether the login session `sid` still stands: not logged out, and its account exists and is not disabled."""
    row = await session.get(LoginSession, sid)
    if row is None or row.ended_at is not None:
        return False
    account = await session.get(ConsoleAccount, row.username)
    return account is not None and not account.disabled


async def end_session(session: AsyncSession, sid: str) -> str | None:
    """End one login session (logout); returns its username, or None when it was unknown or already ended."""
    row = await session.get(LoginSession, sid)
    if row is None or row.ended_at is not None:
        return None
    row.ended_at = datetime.now(UTC)
    session.add(row)
    return row.username


async def end_sessions_of(session: AsyncSession, username: str) -> int:
    """End every open login session of an account (disabled, or its password reset); returns how many."""
    result = await session.execute(update(LoginSession).where(
        LoginSession.username == username, LoginSession.ended_at.is_(None)).values(ended_at=datetime.now(UTC)))  # type: ignore[union-attr]
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def _existing(session: AsyncSession, username: str) -> ConsoleAccount:
    account = await session.get(ConsoleAccount, username)
    if account is None:
        raise AccountMissing(username)
    return account


async def set_disabled(session: AsyncSession, *, username: str, disabled: bool, by: str) -> ConsoleAccount:
    """Disable (or enable again) an account. Disabling ends its open login sessions, so every console it has open
    asks for a login within seconds. Raises LookupError for an unknown account, ValueError when admins would disable
    themselves (nobody would be left to undo it)."""
    account = await _existing(session, username)
    if disabled and username == by:
        raise AccountRefused("you cannot disable your own account", "U kunt uw eigen account niet uitschakelen.")
    account.disabled = disabled
    session.add(account)
    if disabled:
        await end_sessions_of(session, username)
    return account


def generated_password() -> str:
    """A password to hand over once: 16 URL-safe characters (96 random bits)."""
    return secrets.token_urlsafe(12)


async def reset_password(session: AsyncSession, *, username: str, password: str) -> ConsoleAccount:
    """Set a new password (at least 12 characters), clear the lockout and end the account's open sessions.
    Raises LookupError for an unknown account, ValueError for a short password."""
    if len(password) < MIN_PASSWORD:
        raise AccountRefused(f"a password has at least {MIN_PASSWORD} characters",
                             "Een wachtwoord heeft minstens {count} tekens.", count=str(MIN_PASSWORD))
    account = await _existing(session, username)
    account.password_hash = hash_secret(password)
    session.add(account)
    await unlock(session, username=username)
    await end_sessions_of(session, username)
    return account


async def unlock(session: AsyncSession, *, username: str) -> int:
    """Clear the failed logins of an account, which lifts a lockout; returns how many failures were cleared."""
    await _existing(session, username)
    result = await session.execute(delete(LoginFailure).where(LoginFailure.username == username))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def locked_usernames(session: AsyncSession, now: datetime | None = None) -> set[str]:
    """The accounts locked right now (five or more failures in the last fifteen minutes)."""
    moment = now or datetime.now(UTC)
    rows = await session.execute(select(LoginFailure.username).where(LoginFailure.at > moment - LOCKOUT)
                                 .group_by(LoginFailure.username).having(func.count() >= MAX_FAILURES))
    return set(rows.scalars())


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


async def issue_code(session: AsyncSession, *, client: ConsoleClient, username: str, code_challenge: str,
                     nonce: str | None, sid: str | None = None) -> str:
    code = secrets.token_urlsafe(32)
    session.add(AuthorizationCode(code_hash=_digest(code), client_id=client.client_id,
                                  redirect_uri=client.redirect_uri, code_challenge=code_challenge,
                                  username=username, nonce=nonce, sid=sid,
                                  expires_at=datetime.now(UTC) + CODE_LIFETIME))
    return code


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


async def redeem_code(session: AsyncSession, *, code: str, client_id: str, redirect_uri: str,
                      code_verifier: str) -> tuple[ConsoleAccount, str | None, str | None]:
    """A code works once, for its own client and redirect URI, with the verifier of its PKCE challenge, while its
    account is enabled and its login session stands. Returns the account, the nonce and the login session's sid."""
    row = await session.get(AuthorizationCode, _digest(code), with_for_update=True)
    if row is None or row.used:
        raise CodeRefused("unknown or already used code")
    row.used = True
    session.add(row)
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
    if expires < datetime.now(UTC):
        raise CodeRefused("the code has expired")
    if row.client_id != client_id or row.redirect_uri != redirect_uri:
        raise CodeRefused("the code was issued to another client or redirect URI")
    if not hmac.compare_digest(_s256(code_verifier), row.code_challenge):
        raise CodeRefused("code_verifier does not match the PKCE challenge")
    account = await session.get(ConsoleAccount, row.username)
    if account is None or account.disabled:
        raise CodeRefused("the account no longer exists or is disabled")
    if row.sid is not None and not await session_active(session, row.sid):
        raise CodeRefused("the login session has ended")
    return account, row.nonce, row.sid


def id_token(*, keys: SigningKeys, issuer: str, client_id: str, account: ConsoleAccount, nonce: str | None,
             sid: str | None = None) -> str:
    """The OpenID Connect id_token of a console login: the person (`sub`, `name`), the console `role`, for an
    account bound to an organisation that organisation as `org` ("system|value", as in access tokens), and the
    login session as `sid` (the claim of OpenID Connect Front-/Back-Channel Logout) for single logout."""
    now = int(time.time())
    claims = {"iss": issuer, "sub": account.username, "aud": client_id, "iat": now, "exp": now + ID_TOKEN_SECONDS,
              "jti": uuid.uuid4().hex, "name": account.display_name, "role": account.role}
    if account.org:
        claims["org"] = account.org
    if nonce:
        claims["nonce"] = nonce
    if sid:
        claims["sid"] = sid
    key = keys.current
    return jwt.encode({"alg": "RS256", "kid": key.kid, "typ": "JWT"}, claims, key)
