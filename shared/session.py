"""Signed, expiring values for cookies (console sessions, login state): HMAC-SHA256 with a key from the data folder."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from pathlib import Path
from typing import Any


def load_or_create_key(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_bytes(secrets.token_bytes(32))
        path.chmod(0o600)
    return path.read_bytes()


class Signer:
    def __init__(self, key: bytes, purpose: str) -> None:
        # One key, several purposes: a login-state cookie can never pass for a session cookie.
        self._key = hmac.new(key, purpose.encode(), hashlib.sha256).digest()

    def dumps(self, value: dict[str, Any], *, max_age: int) -> str:
        body = base64.urlsafe_b64encode(json.dumps({**value, "exp": int(time.time()) + max_age}).encode()).decode()
        return f"{body}.{self._mac(body)}"

    def loads(self, token: str | None) -> dict[str, Any] | None:
        if not token or "." not in token:
            return None
        body, mac = token.rsplit(".", 1)
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        try:
            value = json.loads(base64.urlsafe_b64decode(body))
        except ValueError:
            return None
        if not isinstance(value, dict) or value.get("exp", 0) < time.time():
            return None
        return value

    def _mac(self, body: str) -> str:
        return hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()
