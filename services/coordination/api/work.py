"""JSON API of coordination for case managers and automation."""

from __future__ import annotations

from datetime import UTC

from fastapi import APIRouter, Request

from services.coordination import service
from shared import audit
from shared.auth import Caller, require_scope

router = APIRouter(prefix="/api/v1", tags=["coordination"])


@router.get("/overdue")
async def overdue(request: Request, caller: Caller = require_scope(scope="coordination.write")) -> dict[str, object]:
    async with request.app.state.runtime.sessions() as session:
        rows = await service.overdue(session)
    await audit.for_request(request, subtype="search", entity="overdue Tasks")
    return {"items": [{"task": f"Task/{r.id}", "owner": r.owner, "status": r.status, "patient": r.pseudonym,
                       "due_at": (r.due_at if r.due_at.tzinfo else r.due_at.replace(tzinfo=UTC)).isoformat()}
                      for r in rows]}
