"""Console plumbing: login through the authorization server (OIDC code flow with PKCE), the session cookie,
CSRF tokens for forms, and Jinja2 templates. One login serves all three consoles (single sign-on)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import httpx
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from joserfc import jwt
from joserfc.errors import JoseError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Caller
from shared.i18n import language, translator
from shared.region import FRONT_DOOR, care_provider
from shared.session import Signer, load_or_create_key

ROLE_SCOPES = {
    "triagist": frozenset({"triage.write"}),
    "casemanager": frozenset({"coordination.write"}),
    "declaratie": frozenset({"billing.read", "billing.write"}),
    "beheer": frozenset({"triage.write", "coordination.write", "billing.read", "billing.write"}),
    # Read, search and update the Tasks of its own organisation (the partner console), nothing else.
    "partner": frozenset({"user/Task.rus"}),
    # The regulator or a researcher: the evaluation page of the billing console, region-wide, small cells hidden.
    "evaluator": frozenset({"evaluation.read"}),
}
# What each role is called on screen (Dutch; English through shared.i18n).
ROLE_NAMES = {"triagist": "triagist", "casemanager": "casemanager", "declaratie": "declaratiemedewerker",
              "beheer": "beheerder", "partner": "zorgaanbieder", "evaluator": "evaluator"}
# What each service is called on screen (Dutch; English through shared.i18n).
SERVICE_NAMES = {"triage": "triage", "coordination": "coördinatie", "billing_shadow": "schaduwdeclaratie"}
# The way back to each console's start page (/console), as its pages word it: the link of the shared error page.
HOME_LINKS = {"triage": "Terug naar de werklijst", "coordination": "Terug naar de werklijsten",
              "billing_shadow": "Terug naar het overzicht"}
# Roles that act for one organisation of the region (the `org` claim) instead of the front door.
ORG_ROLES = frozenset({"partner"})


AMSTERDAM = ZoneInfo("Europe/Amsterdam")
# How long a console trusts its last answer on whether a login session stands: a logout elsewhere, or an admin
# disabling the account, reaches every console within this many seconds.
SESSION_CHECK_SECONDS = 5.0


def local_time(moment: datetime | None, fmt: str = "%d-%m %H:%M") -> str:
    """Times are stored in UTC and shown as Dutch staff read them: Europe/Amsterdam."""
    if moment is None:
        return ""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(AMSTERDAM).strftime(fmt)


def birth_date(value: str | None) -> str:
    """A FHIR birth date as Dutch staff write it: "1950-01-31" → "31-01-1950"; a partial date ("1950",
    "1950-01") stays as given, none is ""."""
    if value and len(value) == 10 and value[4] == "-" and value[7] == "-":
        return f"{value[8:]}-{value[5:7]}-{value[:4]}"
    return value or ""


def duration(minutes: int, t: Callable[[str], str]) -> str:
    """A span of whole minutes as staff read it at a glance, in the words of translator `t`: "45 min",
    "2 u 05 min", "1 d 3 u" (English "2 h 05 min", "1 d 3 h"); a negative span counts as its size."""
    minutes = abs(int(minutes))
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} {t('u')} {rest:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} {t('d')} {hours} {t('u')}"


def templates(service_dir: Path) -> Jinja2Templates:
    """The console's Jinja templates: the service's own (services/<name>/console/templates) before the shared ones
    (shared/templates: base, error, refusal and login pages), with the consoles' filters and globals; the
    service is named by the folder (`home_link`: its way back, HOME_LINKS)."""
    env = Environment(loader=ChoiceLoader([FileSystemLoader(service_dir / "console" / "templates"),
                                           FileSystemLoader(Path(__file__).parent / "templates")]),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    env.filters["local"] = local_time
    env.filters["birth_date"] = birth_date
    env.globals["role_names"] = ROLE_NAMES
    env.globals["service_names"] = SERVICE_NAMES
    env.globals["session_check_ms"] = int(SESSION_CHECK_SECONDS * 1000)
    env.globals["duration"] = duration
    env.globals["home_link"] = HOME_LINKS[service_dir.name]
    return Jinja2Templates(env=env, context_processors=[_language])


def _language(request: Request) -> dict[str, object]:
    lang = language(request)
    return {"lang": lang, "t": translator(lang)}


class ConsoleAuth:
    """The service's side of console login: its session cookie and the state of a login in progress."""

    def __init__(self, *, data_dir: Path, service: str, demo: bool) -> None:
        self.service = service
        self.key = load_or_create_key(data_dir / "keys" / f"{service}-session.key")
        self.sessions = Signer(self.key, f"console-session:{service}")
        self.login_state = Signer(self.key, f"console-login:{service}")
        self.cookie = f"rz_console_{service}"
        self.state_cookie = f"rz_login_{service}"
        self.demo = demo
        # The authorization server itself (triage) answers from its own database instead of over HTTP.
        self.local_check: Callable[[str], Awaitable[bool]] | None = None
        self.local_end: Callable[[str], Awaitable[object]] | None = None
        self._checked: dict[str, tuple[bool, float]] = {}

    async def session_active(self, request: Request, sid: str | None) -> bool:
        """Whether the login session `sid` of a console session still stands (single logout). Asks the
        authorization server at most once per SESSION_CHECK_SECONDS per sid. A session without sid stands only when
        the issuer offers no session endpoint. Raises HTTPException 503 when the authorization server is away."""
        endpoint = request.app.state.settings.session_endpoint
        if self.local_check is None and endpoint is None:
            return True
        if not sid:
            return False
        now = time.monotonic()
        cached = self._checked.get(sid)
        if cached is not None and now - cached[1] < SESSION_CHECK_SECONDS:
            return cached[0]
        if self.local_check is not None:
            active = await self.local_check(sid)
        else:
            try:
                async with httpx.AsyncClient(timeout=5) as http:
                    answer = await http.post(endpoint, data={"sid": sid})
                answer.raise_for_status()
                active = bool(answer.json().get("active"))
            except (httpx.HTTPError, ValueError) as exc:
                raise HTTPException(503, "the login service cannot be reached") from exc
        if len(self._checked) > 10_000:
            self._checked.clear()
        self._checked[sid] = (active, now)
        return active

    async def end_session(self, request: Request, sid: str) -> None:
        """Back-channel logout: tell the authorization server this login session ended (best effort: the browser
        is sent on to its logout page as well)."""
        self._checked[sid] = (False, time.monotonic())
        endpoint = request.app.state.settings.session_endpoint
        if self.local_end is not None:
            await self.local_end(sid)
        elif endpoint is not None:
            try:
                async with httpx.AsyncClient(timeout=5) as http:
                    await http.post(f"{endpoint}/end", data={"sid": sid})
            except httpx.HTTPError:
                pass

    @property
    def client_id(self) -> str:
        return f"console-{self.service}"

    def secure(self, request: Request) -> bool:
        # Browsers treat http://127.0.0.1 as secure, HTTP clients do not; production always sets Secure.
        return request.url.scheme == "https" or not self.demo

    def csrf_token(self, request: Request) -> str:
        session = request.cookies.get(self.cookie, "")
        return hmac.new(self.key, f"csrf:{session}".encode(), hashlib.sha256).hexdigest()

    def check_csrf(self, request: Request, presented: str | None) -> None:
        if not presented or not hmac.compare_digest(self.csrf_token(request), presented):
            raise FormRefused(403, "the form's CSRF token is missing or wrong; reload the page", FORM_EXPIRED)


def change_stream(request: Request, marker: Callable[[AsyncSession], Awaitable[object]],
                  interval: float) -> StreamingResponse:
    """Server-sent events for a live console list: 'changed' whenever `marker` reads something new. The stream ends
    when its login session ends (a logout elsewhere, a disabled account): the page's reconnect is answered 401 and
    the page reloads itself to the login."""
    sessions = request.app.state.runtime.sessions
    auth: ConsoleAuth = request.app.state.console_auth
    login = auth.sessions.loads(request.cookies.get(auth.cookie)) or {}

    async def changes() -> AsyncIterator[str]:
        last = None
        while not await request.is_disconnected():
            try:
                if not await auth.session_active(request, login.get("sid")):
                    return
            except HTTPException:
                pass  # the login service is away for a moment: keep the list live, ask again next time
            async with sessions() as session:
                current = json.dumps(await marker(session), default=str)
            if last is not None and current != last:
                yield "event: changed\ndata: {}\n\n"
            last = current
            yield ": keep-alive\n\n"
            await asyncio.sleep(interval)

    return StreamingResponse(changes(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


# Why a console form was not accepted before it was read, as the page says it (English in shared/i18n.py).
FORM_EXPIRED = "Dit formulier is verlopen en niet verwerkt. Open de pagina opnieuw en probeer het nog eens."
FORM_LOGGED_OUT = "U bent niet (meer) ingelogd; het formulier is niet verwerkt. Log in en probeer het opnieuw."


class FormRefused(HTTPException):
    """A console form refused before it was read (its CSRF token, or no login any more): answered as an HTML page
    in the console's language (shared/web.py), with `message` the Dutch text; the detail stays English for the
    audit record."""

    def __init__(self, status_code: int, detail: str, message: str) -> None:
        super().__init__(status_code, detail)
        self.message = message


class LoginRequired(Exception):
    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class ConsoleRefused(Exception):
    """A logged-in user whose role may not open this console: answered with an HTML page in the console's
    language, offering to log in as another user (shared/web.py)."""

    def __init__(self, caller: Caller) -> None:
        self.caller = caller


def session_claims(claims: dict[str, Any], *, role_claim: str, org_claim: str) -> dict[str, str]:
    """The console session made from a verified id_token's claims: `sub`, `name`, `role` and, for a role bound to an
    organisation, `org` ("system|value" of a care provider of the region). Raises HTTPException 403 when the role is
    not a console role or a partner's organisation is missing or not in the region."""
    role = claims.get(role_claim)
    if role not in ROLE_SCOPES:
        raise HTTPException(403, "this account has no console role")
    session = {"sub": str(claims["sub"]), "role": str(role), "name": str(claims.get("name", ""))}
    if claims.get("sid"):
        session["sid"] = str(claims["sid"])
    if role in ORG_ROLES:
        org = care_provider(str(claims.get(org_claim, "")))
        if org is None:
            raise HTTPException(403, f"a {role} account must belong to a care provider of the region")
        session["org"] = org.token
    return session


def session_caller(session: dict[str, Any]) -> Caller:
    """Who a console session acts as: its person and role, for its organisation (the front door unless the role
    is bound to one). Tenancy for console users is decided here, as `current_caller` does for tokens."""
    role = session["role"]
    org = session.get("org") if role in ORG_ROLES else FRONT_DOOR.token
    if not org:
        raise HTTPException(403, f"this {role} session names no organisation; log in again")
    return Caller(subject=session["sub"], kind="user", org=org, scopes=ROLE_SCOPES[role], role=role)


def console_user(*roles: str, admin: bool = True):  # type: ignore[no-untyped-def]
    """A dependency admitting logged-in console users with one of these roles; `beheer` may open every console
    unless `admin` is False (the partner console: the admin treats no patients)."""

    async def dependency(request: Request) -> Caller:
        auth: ConsoleAuth = request.app.state.console_auth
        session = auth.sessions.loads(request.cookies.get(auth.cookie))
        if session is not None and not await auth.session_active(request, session.get("sid")):
            session = None  # logged out in another console, or the account was disabled
        if session is None or session.get("role") not in ROLE_SCOPES:
            # A page the browser navigates to goes to the login; a page's own fetch or live stream is answered 401
            # (the page reloads itself to log in), never redirected to the authorization server's origin.
            if request.method == "GET" and request.headers.get("sec-fetch-mode", "navigate") == "navigate":
                raise LoginRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
            raise FormRefused(401, "log in to use the console", FORM_LOGGED_OUT)
        caller = session_caller(session)
        request.state.caller = caller
        if caller.role not in roles and not (admin and caller.role == "beheer"):
            raise ConsoleRefused(caller)
        return caller

    return Depends(dependency)


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


def _safe_next(value: str | None) -> str:
    """Only a path of this console: never an open redirect."""
    return value if value and value.startswith("/console") and not value.startswith("//") else "/console"


router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/login")
async def login(request: Request, next: str | None = None) -> Response:
    auth: ConsoleAuth = request.app.state.console_auth
    settings = request.app.state.settings
    verifier, state, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    query = urlencode({"response_type": "code", "client_id": auth.client_id, "scope": "openid",
                       "redirect_uri": f"{settings.public_url}/console/callback", "state": state, "nonce": nonce,
                       "code_challenge": _s256(verifier), "code_challenge_method": "S256"})
    response = RedirectResponse(f"{settings.authorization_endpoint}?{query}", status_code=303)
    response.set_cookie(auth.state_cookie, auth.login_state.dumps(
        {"state": state, "verifier": verifier, "nonce": nonce, "next": _safe_next(next)}, max_age=600),
        httponly=True, samesite="lax", secure=auth.secure(request), max_age=600, path="/console")
    return response


# Why a login could not be completed, as the console's login-problem page says it (English in shared/i18n.py).
LOGIN_UNKNOWN = "Deze inlogpoging is onbekend of verlopen. Begin opnieuw vanuit de console."
LOGIN_SERVICE_AWAY = "De inlogdienst is nu niet bereikbaar. Probeer het over een minuut opnieuw."
LOGIN_REFUSED = ("Het inloggen is geweigerd: het account is uitgeschakeld, de inlogsessie is beëindigd of de "
                 "inlogpoging is al gebruikt. Log opnieuw in.")
LOGIN_UNVERIFIED = "Het antwoord van de inlogdienst kon niet worden gecontroleerd. Log opnieuw in."
LOGIN_NO_ROLE = "Dit account heeft geen rol voor de consoles. Vraag beheer om een rol."
LOGIN_NO_ORGANISATION = ("Dit partneraccount hoort niet bij een zorgaanbieder van de regio. Vraag beheer de "
                         "organisatie in te stellen.")
LOGIN_PROBLEMS = (LOGIN_UNKNOWN, LOGIN_SERVICE_AWAY, LOGIN_REFUSED, LOGIN_UNVERIFIED, LOGIN_NO_ROLE,
                  LOGIN_NO_ORGANISATION, FORM_EXPIRED, FORM_LOGGED_OUT)


def _login_problem(request: Request, status_code: int, message: str) -> Response:
    """A login that cannot be completed answers an HTML page in the console's language with a way to log in again,
    never the raw JSON of an error (a reused callback after the browser's back button, a disabled account)."""
    response = request.app.state.templates.TemplateResponse(request, "login_problem.html", {"message": message},
                                                            status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/callback")
async def callback(request: Request, code: str = "", state: str = "") -> Response:
    auth: ConsoleAuth = request.app.state.console_auth
    settings = request.app.state.settings
    pending = auth.login_state.loads(request.cookies.get(auth.state_cookie))
    if pending is None or not code or not hmac.compare_digest(pending["state"], state):
        return _login_problem(request, 400, LOGIN_UNKNOWN)
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            answer = await http.post(settings.token_endpoint, data={
                "grant_type": "authorization_code", "code": code, "client_id": auth.client_id,
                "redirect_uri": f"{settings.public_url}/console/callback", "code_verifier": pending["verifier"]})
    except httpx.HTTPError:
        return _login_problem(request, 503, LOGIN_SERVICE_AWAY)
    if answer.status_code != 200:
        return _login_problem(request, 400, LOGIN_REFUSED)
    id_token = answer.json()["id_token"]
    keys = await request.app.state.verifier.key_set(_kid(id_token))
    try:
        claims = jwt.decode(id_token, keys, algorithms=["RS256"]).claims
        jwt.JWTClaimsRegistry(iss={"essential": True, "value": settings.issuer},
                              aud={"essential": True, "value": auth.client_id}, exp={"essential": True},
                              nonce={"essential": True, "value": pending["nonce"]}).validate(claims)
    except (JoseError, ValueError):
        return _login_problem(request, 400, LOGIN_UNVERIFIED)
    hours = settings.console_session_hours
    response = RedirectResponse(pending["next"], status_code=303)
    try:
        session = session_claims(claims, role_claim=settings.oidc_role_claim, org_claim=settings.oidc_org_claim)
    except HTTPException:
        return _login_problem(request, 403, LOGIN_NO_ROLE if claims.get(settings.oidc_role_claim) not in ROLE_SCOPES
                              else LOGIN_NO_ORGANISATION)
    response.set_cookie(auth.cookie, auth.sessions.dumps(session, max_age=hours * 3600),
                        httponly=True, samesite="lax", secure=auth.secure(request), max_age=hours * 3600)
    response.delete_cookie(auth.state_cookie, path="/console")
    return response


@router.get("/session")
async def session_check(request: Request, _user: Caller = console_user(*ROLE_SCOPES)) -> Response:
    """Whether this console's login session stands: 204, else 401 (as for every page's own fetch). Every console
    page asks it every SESSION_CHECK_SECONDS (shared/templates/base.html), so a page left open after a logout in
    another console, or after the admin disabled the account, leaves the screen for the login (single logout)."""
    return Response(status_code=204, headers={"Cache-Control": "no-store"})


@router.get("/logout")
async def logout(request: Request) -> Response:
    """Single logout: this console's login session ends at the authorization server (so every other console asks
    for a login within SESSION_CHECK_SECONDS), then the browser goes to its logout page, which ends the SSO cookie."""
    auth: ConsoleAuth = request.app.state.console_auth
    settings = request.app.state.settings
    session = auth.sessions.loads(request.cookies.get(auth.cookie))
    if session is not None and session.get("sid"):
        await auth.end_session(request, str(session["sid"]))
    query = urlencode({"post_logout_redirect_uri": f"{settings.public_url}/console"})
    response = RedirectResponse(f"{settings.logout_endpoint}?{query}", status_code=303)
    response.delete_cookie(auth.cookie)
    return response


def _kid(token: str) -> str | None:
    try:
        header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    except (ValueError, IndexError):
        return None
    return header.get("kid")

