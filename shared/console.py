"""Console plumbing: the logged-in user (HTTP Basic until the login issue lands) and Jinja2 templates."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

from shared.auth import Caller, UserRegistry
from shared.region import FRONT_DOOR

_basic = HTTPBasic(realm="Regiozorg", auto_error=False)

ROLE_SCOPES = {
    "triagist": frozenset({"triage.write"}),
    "casemanager": frozenset({"coordination.write"}),
    "declaratie": frozenset({"billing.read"}),
    "beheer": frozenset({"triage.write", "coordination.write", "billing.read"}),
}


def templates(service_dir: Path) -> Jinja2Templates:
    env = Environment(loader=ChoiceLoader([FileSystemLoader(service_dir / "console" / "templates"),
                                           FileSystemLoader(Path(__file__).parent / "templates")]),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    return Jinja2Templates(env=env)


def console_user(*roles: str):  # type: ignore[no-untyped-def]
    """A dependency admitting console users with one of these roles (`beheer` may open every console)."""

    async def dependency(request: Request,
                         credentials: Annotated[HTTPBasicCredentials | None, Depends(_basic)]) -> Caller:
        challenge = {"WWW-Authenticate": 'Basic realm="Regiozorg"'}
        if credentials is None:
            raise HTTPException(401, "log in to use the console", headers=challenge)
        registry: UserRegistry = request.app.state.users
        user = registry.authenticate(credentials.username, credentials.password)
        if user is None:
            # Same answer for unknown user and wrong password; constant-time compare inside.
            secrets.compare_digest(credentials.password, credentials.password)
            raise HTTPException(401, "unknown user or wrong password", headers=challenge)
        caller = Caller(subject=user.username, kind="user", org=FRONT_DOOR.token, scopes=ROLE_SCOPES[user.role],
                        role=user.role)
        request.state.caller = caller
        if user.role not in roles and user.role != "beheer":
            raise HTTPException(403, f"the role {user.role} cannot open this console")
        return caller

    return Depends(dependency)
