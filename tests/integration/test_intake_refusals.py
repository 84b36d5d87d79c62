"""POST /fhir resolves its response format and caller without FastAPI dependencies (services/triage/api/fhir.py):
it still refuses, in this order, an unknown _format (406), a missing token (401) and a token without the scope to
create a ServiceRequest (403), each as an OperationOutcome, and stores nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from infra.referrals import referral_bundle
from services.triage.models import AcuteRequest
from shared.region import DEMO_CLIENTS
from tests.integration.conftest import front_door_app

BODY = json.dumps(referral_bundle(bsn="111222333", referral_id="refused-1", bundle_id="refused-b1")).encode()
FHIR = {"Content-Type": "application/fhir+json"}


@pytest.fixture
async def triage(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    database = None if database_url.startswith("sqlite") else database_url
    async with front_door_app(database, tmp_path) as app, httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://triage.test") as http:
        yield http, app


def _token(app: Any, client_id: str) -> dict[str, str]:
    client = next(c for c in DEMO_CLIENTS if c.client_id == client_id)
    token = app.state.issuer.issue(client_id=client.client_id, org=client.org.token, scopes=client.scopes)
    return {"Authorization": f"Bearer {token}"}


async def test_a_referral_is_refused_for_its_format_then_its_token_then_its_scope(
        triage: tuple[httpx.AsyncClient, Any]) -> None:
    http, app = triage
    refusals = [
        (await http.post("/fhir?_format=text/csv", content=BODY, headers=FHIR), 406, "not-supported"),
        (await http.post("/fhir", content=BODY, headers=FHIR), 401, "login"),
        (await http.post("/fhir", content=BODY, headers={**FHIR, **_token(app, "insurer-9001")}), 403, "forbidden"),
    ]
    for response, status, code in refusals:
        assert response.status_code == status, response.text
        assert response.json()["resourceType"] == "OperationOutcome"
        assert response.json()["issue"][0]["code"] == code
    async with app.state.runtime.sessions() as session:
        assert (await session.execute(select(func.count()).select_from(AcuteRequest))).scalar_one() == 0
    accepted = await http.post("/fhir", content=BODY, headers={**FHIR, **_token(app, "ehr-delinde")})
    assert accepted.status_code == 200, accepted.text
