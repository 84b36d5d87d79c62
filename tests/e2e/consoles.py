"""Logging in to a console the way a browser does: redirects to the authorization server, the login form, back."""

from __future__ import annotations

import html
import re

import httpx

from infra.stack import Stack

HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def login_form_fields(page: str) -> dict[str, str]:
    return {name: html.unescape(value) for name, value in HIDDEN.findall(page)}


def open_console(stack: Stack, service: str, *, username: str, password: str,
                 browser: httpx.Client | None = None) -> tuple[httpx.Client, httpx.Response]:
    """Open /console of a service as this user; returns the cookie-keeping client and the console page."""
    client = browser or httpx.Client(follow_redirects=True, timeout=15)
    page = client.get(f"{stack.url(service)}/console")
    if 'name="password"' in page.text:
        page = client.post(f"{stack.url('triage')}/oauth/login",
                           data={**login_form_fields(page.text), "username": username, "password": password})
    return client, page
