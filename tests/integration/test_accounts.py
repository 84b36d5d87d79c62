"""Console accounts: lockout after repeated failures, single-use authorization codes bound by PKCE, and partner
accounts bound to one organisation of the region, whose console session acts for that organisation."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import HTTPException
from joserfc import jwt
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.triage import accounts
from shared import migrations
from shared.auth import Caller, SigningKeys
from shared.console import session_caller, session_claims
from shared.db import make_engine, session_factory
from shared.region import FRONT_DOOR

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
        assert refused.account is None and refused.refusal == accounts.WRONG_PASSWORD
    locked = await login(sessions, "correct horse battery", now + timedelta(minutes=1))
    assert locked.account is None and locked.refusal == accounts.TOO_MANY_FAILURES
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

    async def redeem(code: str, **overrides: str) -> tuple[accounts.ConsoleAccount, str | None, str | None]:
        args = {"client_id": client.client_id, "redirect_uri": client.redirect_uri, "code_verifier": verifier,
                **overrides}
        async with sessions() as session, session.begin():
            return await accounts.redeem_code(session, code=code, **args)

    account, nonce, _sid = await redeem(await new_code())
    assert account.username == "nurse.jansen" and nonce == "n1"
    code = await new_code()
    await redeem(code)
    with pytest.raises(accounts.CodeRefused, match="already used"):
        await redeem(code)
    for overrides, message in (({"code_verifier": "w" * 50}, "PKCE"), ({"client_id": "console-triage"}, "another"),
                               ({"redirect_uri": "http://evil/console/callback"}, "another")):
        with pytest.raises(accounts.CodeRefused, match=message):
            await redeem(await new_code(), **overrides)


RTP = "http://fhir.nl/fhir/NamingSystem/ura|90000030"


@pytest.mark.parametrize(("role", "org", "refusal"), [
    ("partner", None, "choose its organisation"),
    ("partner", "http://fhir.nl/fhir/NamingSystem/uzovi|9001", "choose its organisation"),  # an insurer treats no one
    ("partner", "http://fhir.nl/fhir/NamingSystem/ura|12345678", "choose its organisation"),  # not in the region
    ("casemanager", RTP, "acts for the front door")])
async def test_only_a_partner_belongs_to_an_organisation_and_only_to_a_care_provider_of_the_region(
        sessions, role: str, org: str | None, refusal: str) -> None:
    async with sessions() as session:
        with pytest.raises(ValueError, match=refusal):
            await accounts.create_account(session, username="rtp.de.wit", display_name="R. de Wit", role=role,
                                          org=org, password="a long enough password", created_by="beheer")


async def test_a_partner_account_logs_in_as_its_organisation(sessions, tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with sessions() as session, session.begin():
        await accounts.create_account(session, username="rtp.de.wit", display_name="R. de Wit", role="partner",
                                      org=RTP, password="a long enough password", created_by="beheer")
    async with sessions() as session, session.begin():
        outcome = await accounts.authenticate(session, username="rtp.de.wit", password="a long enough password")
        assert outcome.account is not None
        code = await accounts.issue_code(session, client=CLIENTS["console-coordination"], username="rtp.de.wit",
                                         code_challenge=challenge("v" * 50), nonce="n1")
    async with sessions() as session, session.begin():
        account, nonce, _sid = await accounts.redeem_code(session, code=code, client_id="console-coordination",
                                                    redirect_uri="http://c/console/callback", code_verifier="v" * 50)
    keys = SigningKeys(tmp_path / "signing")
    token = accounts.id_token(keys=keys, issuer="http://t", client_id="console-coordination", account=account,
                              nonce=nonce)
    claims = jwt.decode(token, keys.key_set()).claims
    assert (claims["role"], claims["org"]) == ("partner", RTP)
    caller = session_caller(session_claims(claims, role_claim="role", org_claim="org"))
    assert caller == Caller(subject="rtp.de.wit", kind="user", org=RTP, scopes=frozenset({"user/Task.rus"}),
                            role="partner")
    nurse = session_caller(session_claims({"sub": "nurse.jansen", "role": "triagist", "org": RTP},
                                          role_claim="role", org_claim="org"))
    assert nurse.org == FRONT_DOOR.token  # only a partner role is bound to an organisation, whatever a token says


@pytest.mark.parametrize("org", [None, "", "http://fhir.nl/fhir/NamingSystem/uzovi|9002", "URA 90000030"])
def test_a_partner_login_without_a_care_provider_of_the_region_is_refused(org: str | None) -> None:
    claims = {"sub": "someone", "role": "partner", **({"org": org} if org is not None else {})}
    with pytest.raises(HTTPException) as refused:
        session_claims(claims, role_claim="role", org_claim="org")
    assert refused.value.status_code == 403


async def active(sessions, sid: str) -> bool:  # type: ignore[no-untyped-def]
    async with sessions() as session:
        return await accounts.session_active(session, sid)


async def test_a_login_session_ends_at_logout_and_its_codes_stop_working(sessions) -> None:
    async with sessions() as session, session.begin():
        sid = await accounts.start_session(session, "nurse.jansen")
        code = await accounts.issue_code(session, client=CLIENTS["console-triage"], username="nurse.jansen",
                                         code_challenge=challenge("v" * 50), nonce=None, sid=sid)
    assert await active(sessions, sid) and not await active(sessions, "no-such-sid")
    async with sessions() as session, session.begin():
        assert await accounts.end_session(session, sid) == "nurse.jansen"
        assert await accounts.end_session(session, sid) is None  # already ended
    assert not await active(sessions, sid)
    with pytest.raises(accounts.CodeRefused, match="session has ended"):
        async with sessions() as session, session.begin():
            await accounts.redeem_code(session, code=code, client_id="console-triage",
                                       redirect_uri="http://t/console/callback", code_verifier="v" * 50)


async def test_a_disabled_account_cannot_log_in_and_its_sessions_end(sessions) -> None:
    async with sessions() as session, session.begin():
        sid = await accounts.start_session(session, "nurse.jansen")
    async with sessions() as session, session.begin():
        with pytest.raises(ValueError, match="your own"):
            await accounts.set_disabled(session, username="nurse.jansen", disabled=True, by="nurse.jansen")
        with pytest.raises(LookupError):
            await accounts.set_disabled(session, username="nobody", disabled=True, by="beheer")
        await accounts.set_disabled(session, username="nurse.jansen", disabled=True, by="beheer")
    assert not await active(sessions, sid)
    assert (await login(sessions, "correct horse battery")).refusal == accounts.DISABLED
    assert (await login(sessions, "wrong")).refusal == accounts.WRONG_PASSWORD  # says nothing without the password
    async with sessions() as session, session.begin():
        await accounts.set_disabled(session, username="nurse.jansen", disabled=False, by="beheer")
    assert (await login(sessions, "correct horse battery")).account is not None


async def test_a_reset_sets_the_password_lifts_the_lockout_and_ends_sessions(sessions) -> None:
    for _ in range(5):
        await login(sessions, "guess")
    async with sessions() as session, session.begin():
        assert await accounts.locked_usernames(session) == {"nurse.jansen"}
        sid = await accounts.start_session(session, "nurse.jansen")
        with pytest.raises(ValueError, match="12 characters"):
            await accounts.reset_password(session, username="nurse.jansen", password="short")
        await accounts.reset_password(session, username="nurse.jansen", password="a brand new password")
        assert await accounts.locked_usernames(session) == set()
    assert not await active(sessions, sid)
    assert (await login(sessions, "correct horse battery")).refusal == accounts.WRONG_PASSWORD
    assert (await login(sessions, "a brand new password")).account is not None
    assert len(accounts.generated_password()) >= 12


async def test_unlock_clears_the_failures(sessions) -> None:
    for _ in range(5):
        await login(sessions, "guess")
    async with sessions() as session, session.begin():
        assert await accounts.unlock(session, username="nurse.jansen") == 5
    assert (await login(sessions, "correct horse battery")).account is not None
