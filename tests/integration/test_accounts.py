"""Console accounts: lockout after repeated failures, and single-use authorization codes bound by PKCE."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.triage import accounts
from shared import migrations
from shared.db import make_engine, session_factory

pytestmark = pytest.mark.integration
CLIENTS = accounts.console_clients({"triage": "http://t", "coordination": "http://c", "billing_shadow": "http://b"})


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(database_url)
    await migrations.migrate(engine, "triage")
    factory = session_factory(engine)
    async with factory() as session, session.begin():
        await accounts.create_account(session, username="nurse.jansen", display_name="N. Jansen", role="triagist",
                                      password="correct horse battery", created_by="beheer")
    yield factory
    await engine.dispose()


async def login(sessions, password: str, now: datetime | None = None) -> accounts.LoginOutcome:  # type: ignore[no-untyped-def]
    async with sessions() as session, session.begin():
        return await accounts.authenticate(session, username="nurse.jansen", password=password, now=now)


async def test_five_failures_lock_the_account_for_fifteen_minutes_even_for_the_right_password(sessions) -> None:
    now = datetime.now(UTC)
    for _ in range(5):
        refused = await login(sessions, "guess", now)
        assert refused.account is None and refused.refusal == "unknown user or wrong password"
    locked = await login(sessions, "correct horse battery", now + timedelta(minutes=1))
    assert locked.account is None and "too many failed attempts" in str(locked.refusal)
    later = await login(sessions, "correct horse battery", now + timedelta(minutes=16))
    assert later.account is not None and later.account.role == "triagist"


async def test_unknown_user_and_wrong_password_get_the_same_answer(sessions) -> None:
    async with sessions() as session, session.begin():
        unknown = await accounts.authenticate(session, username="nobody", password="x")
    wrong = await login(sessions, "x")
    assert unknown.account is None and wrong.account is None
    assert unknown.refusal == wrong.refusal


@pytest.mark.parametrize("bad", [{"role": "root"}, {"password": "short"}, {"username": "a b"}])
async def test_account_rules_are_enforced(sessions, bad: dict[str, str]) -> None:
    fields = {"username": "cm.de.boer", "display_name": "C. de Boer", "role": "casemanager",
              "password": "a long enough password", **bad}
    async with sessions() as session:
        with pytest.raises(ValueError):
            await accounts.create_account(session, created_by="beheer", **fields)


def challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


async def test_code_is_single_use_and_bound_to_client_redirect_and_verifier(sessions) -> None:
    client = CLIENTS["console-coordination"]
    verifier = "v" * 50

    async def new_code() -> str:
        async with sessions() as session, session.begin():
            return await accounts.issue_code(session, client=client, username="nurse.jansen",
                                             code_challenge=challenge(verifier), nonce="n1")

    async def redeem(code: str, **overrides: str) -> tuple[accounts.ConsoleAccount, str | None]:
        args = {"client_id": client.client_id, "redirect_uri": client.redirect_uri, "code_verifier": verifier,
                **overrides}
        async with sessions() as session, session.begin():
            return await accounts.redeem_code(session, code=code, **args)

    account, nonce = await redeem(await new_code())
    assert account.username == "nurse.jansen" and nonce == "n1"
    code = await new_code()
    await redeem(code)
    with pytest.raises(accounts.CodeRefused, match="already used"):
        await redeem(code)
    for overrides, message in (({"code_verifier": "w" * 50}, "PKCE"), ({"client_id": "console-triage"}, "another"),
                               ({"redirect_uri": "http://evil/console/callback"}, "another")):
        with pytest.raises(accounts.CodeRefused, match=message):
            await redeem(await new_code(), **overrides)
