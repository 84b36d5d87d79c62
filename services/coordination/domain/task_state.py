"""Decide which FHIR Task status changes each role may make, and record who made them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

ALL_STATUSES = frozenset(
    {
        "draft", "requested", "received", "accepted", "rejected", "ready",
        "cancelled", "in-progress", "on-hold", "failed", "completed", "entered-in-error",
    }
)
TERMINAL = frozenset({"completed", "failed", "rejected", "cancelled"})
ROLES = frozenset({"owner", "requester", "case-manager"})
REASON_REQUIRED = frozenset({"rejected", "failed"})

# Each move belongs to exactly one role: the owner (fulfiller) runs the work, the requester can only withdraw it.
_MOVES: dict[tuple[str, str], str] = {
    ("requested", "received"): "owner",
    ("requested", "accepted"): "owner",
    ("received", "accepted"): "owner",
    ("accepted", "in-progress"): "owner",
    ("in-progress", "completed"): "owner",
    ("requested", "rejected"): "owner",
    ("received", "rejected"): "owner",
    ("in-progress", "failed"): "owner",
    ("in-progress", "on-hold"): "owner",
    ("on-hold", "in-progress"): "owner",
    ("requested", "cancelled"): "requester",
    ("received", "cancelled"): "requester",
    ("accepted", "cancelled"): "requester",
}
# A case manager coordinates on the requester's behalf, so inherits exactly the requester's rights.
_ACTS_AS = {"owner": "owner", "requester": "requester", "case-manager": "requester"}


class TransitionError(ValueError):
    """A requested Task status change is not allowed."""


@dataclass(frozen=True)
class Transition:
    """An accepted Task status change, attributed to the actor and role that made it."""

    from_status: str
    to_status: str
    role: str
    actor: str
    reason: str | None
    at: datetime


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise TransitionError(f"unknown role {role!r}; expected one of {', '.join(sorted(ROLES))}")


def _check_status(status: str) -> None:
    if status not in ALL_STATUSES:
        raise TransitionError(f"unknown Task status {status!r}")


def allowed_targets(current: str, role: str) -> frozenset[str]:
    """Return the statuses the given role may move a Task to from `current`."""
    _check_role(role)
    _check_status(current)
    return frozenset(to for (frm, to), owner in _MOVES.items() if frm == current and owner == _ACTS_AS[role])


def decide_transition(
    *, current: str, target: str, role: str, actor: str, reason: str | None, at: datetime
) -> Transition:
    """Validate a status change and return it as a Transition; raise TransitionError if it is not allowed."""
    _check_role(role)
    _check_status(current)
    _check_status(target)
    if not actor.strip():
        raise TransitionError("a Task transition must name the actor who made it")
    if at.tzinfo is None or at.utcoffset() is None:
        raise TransitionError("a Task transition time must be timezone-aware")
    if current == target:
        raise TransitionError(f"the Task is already {current}")
    if current in TERMINAL:
        raise TransitionError(f"a Task that is {current} is final and cannot move to {target}")
    if target not in allowed_targets(current, role):
        article = "an" if role[0] in "aeiou" else "a"
        raise TransitionError(f"{article} {role} cannot move a Task from {current} to {target}")
    if target in REASON_REQUIRED and not (reason and reason.strip()):
        raise TransitionError(f"a reason is required to move a Task to {target}")
    return Transition(from_status=current, to_status=target, role=role, actor=actor, reason=reason, at=at)
