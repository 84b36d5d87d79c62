"""The case manager's console (minimal): open Tasks across organisations, overdue first."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from services.coordination.models import TaskRecord
from shared import audit
from shared.auth import Caller
from shared.console import console_user
from shared.region import ORGANISATIONS

router = APIRouter(prefix="/console", include_in_schema=False)
CaseManager = Annotated[Caller, console_user("casemanager")]


@router.get("", response_class=HTMLResponse)
async def tasks(request: Request, user: CaseManager) -> Response:
    async with request.app.state.runtime.sessions() as session:
        rows = list((await session.execute(select(TaskRecord).order_by(TaskRecord.due_at).limit(500))).scalars())
    await audit.for_request(request, subtype="search", entity="console Tasks")
    now = datetime.now(UTC)
    names = {o.token: o.name for o in ORGANISATIONS}
    items = [{"t": t, "owner": names.get(t.owner, t.owner),
              "overdue": t.status not in ("completed", "failed", "rejected", "cancelled")
              and (t.due_at if t.due_at.tzinfo else t.due_at.replace(tzinfo=UTC)) < now} for t in rows]
    return request.app.state.templates.TemplateResponse(request, "tasks.html", {"user": user, "items": items})
