"""OpenID Connect for the consoles: authorization code with PKCE, one login for all three consoles (SSO)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.triage import accounts
from shared import audit
from shared.auth import Caller
from shared.region import FRONT_DOOR
from shared.responses import JSONResponse

router = APIRouter(tags=["authorization"], include_in_schema=False)
SSO_COOKIE = "rz_sso"
LOGIN_CSRF_COOKIE = "rz_login_csrf"


def _clients(request: Request) -> dict[str, accounts.ConsoleClient]:
    return accounts.console_clients(request.app.state.settings.public_urls)


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or not request.app.state.settings.demo


def _authorize_params(client_id: str, redirect_uri: str, state: str, code_challenge: str,
                      code_challenge_method: str, nonce: str) -> dict[str, str]:
    return {"client_id": client_id, "redirect_uri": redirect_uri, "state": state, "code_challenge": code_challenge,
            "code_challenge_method": code_challenge_method, "nonce": nonce}


def _check_request(request: Request, params: dict[str, str]) -> accounts.ConsoleClient | HTMLResponse:
    client = _clients(request).get(params["client_id"])
    # An unknown client or redirect URI is never redirected to: that would make us an open redirector.
    if client is None or params["redirect_uri"] != client.redirect_uri:
        return HTMLResponse("Onbekende applicatie of terugkeeradres.", status_code=400)
    if params["code_challenge_method"] != "S256" or len(params["code_challenge"]) < 43:
        return HTMLResponse("PKCE (S256) is verplicht.", status_code=400)
    return client


def _login_page(request: Request, params: dict[str, str], *, error: str | None, status: int) -> Response:
    signer = request.app.state.session_signer
    nonce_value = signer.dumps({"login": True}, max_age=900)
    response = request.app.state.templates.TemplateResponse(request, "login.html", {
        "params": params, "error": error, "csrf": nonce_value}, status_code=status)
    response.set_cookie(LOGIN_CSRF_COOKIE, nonce_value, httponly=True, samesite="strict", secure=_secure(request),
                        max_age=900, path="/oauth")
    response.headers["Cache-Control"] = "no-store"
    return response


async def _sso_session(request: Request) -> dict[str, str] | None:
    """The SSO cookie's login, if its login session still stands (not logged out, account not disabled)."""
    sso = request.app.state.session_signer.loads(request.cookies.get(SSO_COOKIE))
    if sso is None or "sid" not in sso:
        return None
    async with request.app.state.runtime.sessions() as session:
        return sso if await accounts.session_active(session, sso["sid"]) else None


async def _redirect_with_code(request: Request, client: accounts.ConsoleClient, username: str, sid: str,
                              params: dict[str, str]) -> RedirectResponse:
    async with request.app.state.runtime.sessions() as session, session.begin():
        code = await accounts.issue_code(session, client=client, username=username, sid=sid,
                                         code_challenge=params["code_challenge"], nonce=params["nonce"] or None)
    return RedirectResponse(f"{client.redirect_uri}?{urlencode({'code': code, 'state': params['state']})}",
                            status_code=303)


@router.get("/oauth/authorize")
async def authorize(request: Request, client_id: str = "", redirect_uri: str = "", state: str = "",
                    code_challenge: str = "", code_challenge_method: str = "", nonce: str = "",
                    response_type: str = "code") -> Response:
    params = _authorize_params(client_id, redirect_uri, state, code_challenge, code_challenge_method, nonce)
    checked = _check_request(request, params)
    if isinstance(checked, HTMLResponse):
        return checked
    if response_type != "code":
        return HTMLResponse("Alleen response_type=code.", status_code=400)
    sso = await _sso_session(request)
    if sso is not None:
        return await _redirect_with_code(request, checked, sso["sub"], sso["sid"], params)
    response = _login_page(request, params, error=None, status=200)
    response.delete_cookie(SSO_COOKIE, path="/oauth")
    return response


@router.post("/oauth/login")
async def login(request: Request, username: Annotated[str, Form(max_length=60)],
                password: Annotated[str, Form(max_length=200)], csrf_token: Annotated[str, Form()],
                client_id: Annotated[str, Form()], redirect_uri: Annotated[str, Form()],
                state: Annotated[str, Form()], code_challenge: Annotated[str, Form()],
                code_challenge_method: Annotated[str, Form()], nonce: Annotated[str, Form()] = "") -> Response:
    params = _authorize_params(client_id, redirect_uri, state, code_challenge, code_challenge_method, nonce)
    checked = _check_request(request, params)
    if isinstance(checked, HTMLResponse):
        return checked
    signer = request.app.state.session_signer
    if csrf_token != request.cookies.get(LOGIN_CSRF_COOKIE) or signer.loads(csrf_token) is None:
        return _login_page(request, params, error="De sessie van dit formulier is verlopen; probeer opnieuw.",
                           status=403)
    attempt = Caller(subject=username, kind="user", org=FRONT_DOOR.token, scopes=frozenset())
    async with request.app.state.runtime.sessions() as session, session.begin():
        outcome = await accounts.authenticate(session, username=username, password=password)
        sid = await accounts.start_session(session, outcome.account.username) if outcome.account else ""
    account = outcome.account
    if account is None:
        await audit.record_now(request.app.state.runtime.sessions, service="triage", caller=attempt,
                               subtype="login", entity="console login", outcome=audit.OUTCOME_REFUSED,
                               description=outcome.refusal)
        return _login_page(request, params, error=outcome.refusal, status=401)
    await audit.record_now(request.app.state.runtime.sessions, service="triage",
                           caller=Caller(subject=account.username, kind="user", org=account.org or FRONT_DOOR.token,
                                         scopes=frozenset(), role=account.role),
                           subtype="login", entity="console login", purpose=audit.PURPOSE_OPERATIONS)
    response = await _redirect_with_code(request, checked, account.username, sid, params)
    hours = request.app.state.settings.console_session_hours
    response.set_cookie(SSO_COOKIE, signer.dumps({"sub": account.username, "sid": sid}, max_age=hours * 3600),
                        httponly=True,
                        samesite="lax", secure=_secure(request), max_age=hours * 3600, path="/oauth")
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/oauth")
    return response


async def end_login_session(sessions: async_sessionmaker[AsyncSession], sid: str) -> bool:
    """End a login session and audit the logout; False when it was unknown or had already ended."""
    async with sessions() as session, session.begin():
        username = await accounts.end_session(session, sid)
        if username is not None:
            await audit.record(session, service="triage", subtype="login", entity="console logout",
                               caller=Caller(subject=username, kind="user", org=FRONT_DOOR.token, scopes=frozenset()),
                               purpose=audit.PURPOSE_OPERATIONS)
    return username is not None


async def _end(request: Request, sid: str) -> bool:
    return await end_login_session(request.app.state.runtime.sessions, sid)


@router.get("/oauth/logout")
async def logout(request: Request, post_logout_redirect_uri: str = "") -> Response:
    """The end of single sign-on: the SSO cookie's login session ends, and with it every console's session."""
    homes = {c.home for c in _clients(request).values()}
    target = post_logout_redirect_uri if post_logout_redirect_uri in homes else \
        f"{request.app.state.settings.public_url}/console"
    sso = request.app.state.session_signer.loads(request.cookies.get(SSO_COOKIE))
    if sso is not None and "sid" in sso:
        await _end(request, sso["sid"])
    response = RedirectResponse(target, status_code=303)
    response.delete_cookie(SSO_COOKIE, path="/oauth")
    return response


@router.post("/oauth/session")
async def session_status(request: Request, sid: Annotated[str, Form(max_length=64)]) -> JSONResponse:
    """Whether a login session still stands: `{"active": bool}`. The consoles ask on every request (cached for a few
    seconds, shared/console.py); the random 43-character sid, known only to the session's own cookies, is the key."""
    async with request.app.state.runtime.sessions() as session:
        active = await accounts.session_active(session, sid)
    return JSONResponse({"active": active}, headers={"Cache-Control": "no-store"})


@router.post("/oauth/session/end")
async def session_end(request: Request, sid: Annotated[str, Form(max_length=64)]) -> JSONResponse:
    """A console's back-channel logout: ends the login session `sid` (`{"ended": bool}`; false if already ended)."""
    return JSONResponse({"ended": await _end(request, sid)}, headers={"Cache-Control": "no-store"})
