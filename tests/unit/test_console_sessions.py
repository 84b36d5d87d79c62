"""Single logout in a console: the login session (`sid`) travels from the id_token into the console session, and a
console asks the authorization server whether it still stands at most once per SESSION_CHECK_SECONDS."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from services.triage.console.views import ACCOUNT_NOTICES
from shared.console import SESSION_CHECK_SECONDS, ConsoleAuth, session_claims
from shared.i18n import ENGLISH


def test_the_login_session_of_the_id_token_goes_into_the_console_session() -> None:
    claims = {"sub": "triagist", "role": "triagist", "name": "T", "sid": "abc"}
    assert session_claims(claims, role_claim="role", org_claim="org")["sid"] == "abc"
    assert "sid" not in session_claims({**claims, "sid": ""}, role_claim="role", org_claim="org")


def request_with(endpoint: str | None):  # type: ignore[no-untyped-def]
    return SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(settings=SimpleNamespace(
        session_endpoint=endpoint))))


async def test_a_console_asks_once_per_interval_and_refuses_a_session_without_sid(tmp_path: Path,
                                                                                  monkeypatch) -> None:  # type: ignore[no-untyped-def]
    auth = ConsoleAuth(data_dir=tmp_path, service="coordination", demo=True)
    answers = {"s1": True}
    asked: list[str] = []

    async def check(sid: str) -> bool:
        asked.append(sid)
        return answers.get(sid, False)

    auth.local_check = check
    request = request_with("http://triage/oauth/session")
    clock = [100.0]
    monkeypatch.setattr("shared.console.time.monotonic", lambda: clock[0])
    assert await auth.session_active(request, "s1") is True
    answers["s1"] = False  # logged out elsewhere
    assert await auth.session_active(request, "s1") is True  # still the cached answer
    clock[0] += SESSION_CHECK_SECONDS + 0.1
    assert await auth.session_active(request, "s1") is False
    assert asked == ["s1", "s1"]
    assert await auth.session_active(request, None) is False
    assert await auth.session_active(request, "") is False


async def test_without_a_session_endpoint_sessions_are_not_checked(tmp_path: Path) -> None:
    auth = ConsoleAuth(data_dir=tmp_path, service="coordination", demo=True)
    assert await auth.session_active(request_with(None), None) is True


async def test_an_unreachable_authorization_server_is_a_503_not_a_silent_pass(tmp_path: Path) -> None:
    from fastapi import HTTPException
    auth = ConsoleAuth(data_dir=tmp_path, service="coordination", demo=True)
    with pytest.raises(HTTPException) as refused:
        await auth.session_active(request_with("http://127.0.0.1:9/oauth/session"), "s1")
    assert refused.value.status_code == 503


async def test_ending_a_session_here_is_seen_here_at_once(tmp_path: Path) -> None:
    auth = ConsoleAuth(data_dir=tmp_path, service="triage", demo=True)
    ended: list[str] = []

    async def check(sid: str) -> bool:
        return sid not in ended

    async def end(sid: str) -> None:
        ended.append(sid)

    auth.local_check, auth.local_end = check, end
    request = request_with("http://triage/oauth/session")
    assert await auth.session_active(request, "s1") is True
    await auth.end_session(request, "s1")
    assert ended == ["s1"] and await auth.session_active(request, "s1") is False


def test_every_account_notice_has_english_with_the_same_placeholder() -> None:
    for text in ACCOUNT_NOTICES.values():
        assert "{username}" in ENGLISH[text], text
