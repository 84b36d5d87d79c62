"""Treatment grants: which organisation held a coordination Task for an acute request, from when until when.

Pure functions over the versions of a Task as `task-changed` reports them (SPEC §10, treatment
relationship): the owner of a Task that is still being worked holds a grant; reassignment to
another owner ends the old owner's grant and starts the new owner's at the moment of that version;
a status that ends the work (completed, failed, rejected, cancelled, entered-in-error) ends it too.
What a grant opens, and for how long after it ended, is decided in services/triage/access.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

ACUTE_REQUEST_SYSTEM = "https://regiozorg.example/fhir/NamingSystem/acute-request"
# FHIR Task.status values in which the owner is (still) asked to do the work: its grant runs. The others end
# it; a draft has not been handed to its owner yet, so it grants nothing at all.
WORKING = frozenset({"requested", "received", "accepted", "ready", "in-progress", "on-hold"})
ENDING = frozenset({"completed", "failed", "rejected", "cancelled", "entered-in-error"})
STATUSES = WORKING | ENDING | {"draft"}


@dataclass(frozen=True)
class TaskVersion:
    """One version of a Task: its owner (`system|value`), status and the moment it was written (UTC)."""

    version: int
    owner: str
    status: str
    at: datetime


@dataclass(frozen=True)
class TaskChange:
    """What the front door keeps of a `task-changed` value."""

    task_id: str
    acute_request_id: str
    version: TaskVersion


@dataclass(frozen=True)
class Grant:
    """An organisation's ownership of one Task: from `since` until `ended_at` (None: it still owns it)."""

    org: str
    since: datetime
    ended_at: datetime | None


def read_task_change(task: Any) -> TaskChange:
    """The Task id, acute request (`basedOn[0].identifier`), owner (`owner.identifier` as `system|value`),
    status, version (`meta.versionId`, a positive whole number) and moment (`meta.lastUpdated`, ISO 8601 with
    a zone, stored in UTC) of a `task-changed` value.

    Raises ValueError naming what is missing or malformed: such a value can never be used (poison).
    """
    if not isinstance(task, dict) or task.get("resourceType") != "Task":
        raise ValueError("the value is not a FHIR Task")
    task_id = task.get("id")
    if not isinstance(task_id, str) or not task_id:
        raise ValueError("Task.id is missing")
    based_on = task.get("basedOn")
    request = based_on[0].get("identifier") if isinstance(based_on, list) and based_on \
        and isinstance(based_on[0], dict) else None
    if not isinstance(request, dict) or request.get("system") != ACUTE_REQUEST_SYSTEM \
            or not isinstance(request.get("value"), str) or not request["value"]:
        raise ValueError("Task.basedOn[0].identifier does not name an acute request")
    owner = (task.get("owner") or {}).get("identifier") if isinstance(task.get("owner"), dict) else None
    if not isinstance(owner, dict) or not isinstance(owner.get("system"), str) \
            or not isinstance(owner.get("value"), str) or not owner["system"] or not owner["value"]:
        raise ValueError("Task.owner.identifier needs a system and a value")
    status = task.get("status")
    if status not in STATUSES:
        raise ValueError(f"Task.status {status!r} is not a FHIR Task status")
    meta = task.get("meta") if isinstance(task.get("meta"), dict) else {}
    raw_version = meta.get("versionId")
    if not isinstance(raw_version, str) or not raw_version.isascii() or not raw_version.isdigit() \
            or int(raw_version) < 1 or len(raw_version) > 9:
        raise ValueError("Task.meta.versionId must be a positive whole number")
    try:
        at = datetime.fromisoformat(str(meta.get("lastUpdated")))
    except ValueError:
        raise ValueError("Task.meta.lastUpdated is not an ISO 8601 dateTime") from None
    if at.tzinfo is None:
        raise ValueError("Task.meta.lastUpdated has no time zone")
    return TaskChange(task_id=task_id, acute_request_id=request["value"],
                      version=TaskVersion(version=int(raw_version), owner=f"{owner['system']}|{owner['value']}",
                                          status=status, at=at.astimezone(UTC)))


def grants_of(versions: Iterable[TaskVersion]) -> list[Grant]:
    """The grants one Task gave, oldest first, from the versions known of it, in any order and with repeats.

    Versions are taken in `version` order, so a late or repeated older version never undoes a newer one;
    a version missing in between only makes a grant end at the next version known. A first known version
    that already ended the work (its earlier versions lost) still grants its owner, from that moment: the
    owner did hold the Task.
    """
    grants: list[Grant] = []
    running: Grant | None = None  # the grant of the current owner, while the work goes on
    for version in sorted({v.version: v for v in versions}.values(), key=lambda v: v.version):
        working = version.status in WORKING
        ended_for = None
        if running is not None and (version.owner != running.org or not working):
            grants.append(Grant(org=running.org, since=running.since, ended_at=version.at))
            ended_for, running = running.org, None
        if working:
            if running is None:
                running = Grant(org=version.owner, since=version.at, ended_at=None)
        elif version.status in ENDING and version.owner != ended_for:
            # This owner ended work it was never seen to hold (its earlier versions are not known here).
            grants.append(Grant(org=version.owner, since=version.at, ended_at=version.at))
    if running is not None:
        grants.append(running)
    return grants

