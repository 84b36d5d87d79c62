"""CSRF tokens for console forms: an HMAC of the user and a per-process secret."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import HTTPException

_SECRET = secrets.token_bytes(32)


def token_for(user: str) -> str:
    return hmac.new(_SECRET, user.encode(), hashlib.sha256).hexdigest()


def check(user: str, presented: str | None) -> None:
    if not presented or not hmac.compare_digest(token_for(user), presented):
        raise HTTPException(403, "the form's CSRF token is missing or wrong; reload the page")
