"""Unit and property tests for the FHIR Task state machine."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.coordination.domain.task_state import (
    ALL_STATUSES,
    TERMINAL,
    Transition,
    TransitionError,
    allowed_targets,
    decide_transition,
)

AT = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
ROLES = ["owner", "requester", "case-manager"]

# The SPEC written out independently of the module, as (from, to) -> roles allowed.
REQUESTER_SIDE = {"requester", "case-manager"}
SPEC: dict[tuple[str, str], set[str]] = {
    ("requested", "received"): {"owner"},
    ("received", "accepted"): {"owner"},
    ("requested", "accepted"): {"owner"},
    ("accepted", "in-progress"): {"owner"},
    ("in-progress", "completed"): {"owner"},
    ("requested", "rejected"): {"owner"},
    ("received", "rejected"): {"owner"},
    ("in-progress", "failed"): {"owner"},
    ("in-progress", "on-hold"): {"owner"},
    ("on-hold", "in-progress"): {"owner"},
    ("requested", "cancelled"): REQUESTER_SIDE,
    ("received", "cancelled"): REQUESTER_SIDE,
    ("accepted", "cancelled"): REQUESTER_SIDE,
}


def move(current: str, target: str, role: str, reason: str | None = "clinical reason") -> Transition:
    return decide_transition(current=current, target=target, role=role, actor="Practitioner/42", reason=reason, at=AT)


def test_owner_walks_the_happy_path_to_completed() -> None:
    status = "requested"
    for target in ["received", "accepted", "in-progress", "completed"]:
        status = move(status, target, "owner").to_status
    assert status == "completed"


def test_owner_may_accept_without_marking_received() -> None:
    assert move("requested", "accepted", "owner").to_status == "accepted"


def test_transition_records_who_did_what_when_and_why() -> None:
    transition = move("received", "rejected", "owner", reason="no capacity")
    assert transition == Transition("received", "rejected", "owner", "Practitioner/42", "no capacity", AT)


@pytest.mark.parametrize("current", ["requested", "received", "accepted"])
@pytest.mark.parametrize("role", ["requester", "case-manager"])
def test_requester_and_case_manager_may_cancel_before_work_starts(current: str, role: str) -> None:
    assert move(current, "cancelled", role, reason=None).to_status == "cancelled"


def test_requester_cannot_cancel_once_in_progress() -> None:
    with pytest.raises(TransitionError, match="a requester cannot move a Task from in-progress to cancelled"):
        move("in-progress", "cancelled", "requester")


def test_owner_cannot_cancel_on_the_requesters_behalf() -> None:
    with pytest.raises(TransitionError, match="an owner cannot move a Task from accepted to cancelled"):
        move("accepted", "cancelled", "owner")


def test_requester_cannot_do_the_owners_work() -> None:
    with pytest.raises(TransitionError, match="a requester cannot move"):
        move("requested", "accepted", "requester")


def test_owner_may_pause_and_resume_work() -> None:
    assert move("in-progress", "on-hold", "owner").to_status == "on-hold"
    assert move("on-hold", "in-progress", "owner").to_status == "in-progress"


@pytest.mark.parametrize("target", ["rejected", "failed"])
@pytest.mark.parametrize("reason", [None, "", "   "])
def test_rejecting_or_failing_without_a_reason_is_refused(target: str, reason: str | None) -> None:
    current = "requested" if target == "rejected" else "in-progress"
    with pytest.raises(TransitionError, match=f"a reason is required to move a Task to {target}"):
        move(current, target, "owner", reason=reason)


def test_moving_to_the_same_status_is_refused() -> None:
    with pytest.raises(TransitionError, match="already accepted"):
        move("accepted", "accepted", "owner")


@pytest.mark.parametrize("kwargs", [{"current": "bogus"}, {"target": "bogus"}])
def test_unknown_status_is_refused(kwargs: dict[str, str]) -> None:
    args = {"current": "requested", "target": "received", **kwargs}
    with pytest.raises(TransitionError, match="unknown Task status 'bogus'"):
        decide_transition(**args, role="owner", actor="a", reason=None, at=AT)


def test_unknown_role_is_refused() -> None:
    with pytest.raises(TransitionError, match="unknown role 'admin'"):
        move("requested", "received", "admin")
    with pytest.raises(TransitionError, match="unknown role"):
        allowed_targets("requested", "admin")


def test_transition_without_actor_or_with_naive_time_is_refused() -> None:
    with pytest.raises(TransitionError, match="actor"):
        decide_transition(current="requested", target="received", role="owner", actor=" ", reason=None, at=AT)
    with pytest.raises(TransitionError, match="timezone-aware"):
        decide_transition(
            current="requested", target="received", role="owner", actor="a", reason=None, at=datetime(2024, 5, 1)
        )


def test_fhir_statuses_without_a_rule_cannot_be_entered() -> None:
    with pytest.raises(TransitionError, match="cannot move a Task from requested to draft"):
        move("requested", "draft", "owner")


def test_transition_error_is_a_value_error() -> None:
    assert issubclass(TransitionError, ValueError)


def test_status_sets_follow_fhir_r4() -> None:
    assert len(ALL_STATUSES) == 12
    assert {"completed", "failed", "rejected", "cancelled"} == TERMINAL and TERMINAL <= ALL_STATUSES


@pytest.mark.parametrize("current", sorted(ALL_STATUSES))
@pytest.mark.parametrize("role", ROLES)
def test_allowed_targets_match_the_spec_table(current: str, role: str) -> None:
    expected = {to for (frm, to), roles in SPEC.items() if frm == current and role in roles}
    assert allowed_targets(current, role) == expected


@pytest.mark.parametrize("current", sorted(TERMINAL))
def test_terminal_states_offer_no_way_out(current: str) -> None:
    assert all(allowed_targets(current, role) == frozenset() for role in ROLES)


REQUESTS = st.tuples(
    st.sampled_from(sorted(ALL_STATUSES) + ["bogus"]), st.sampled_from(ROLES), st.sampled_from([None, "", "because"])
)


@given(st.lists(REQUESTS, max_size=30))
def test_any_request_sequence_only_makes_spec_moves_and_never_leaves_terminal(
    requests: list[tuple[str, str, str | None]],
) -> None:
    status = "requested"
    for target, role, reason in requests:
        actor = f"{role}-actor"
        allowed = role in SPEC.get((status, target), set()) and (target not in {"rejected", "failed"} or bool(reason))
        try:
            transition = decide_transition(current=status, target=target, role=role, actor=actor, reason=reason, at=AT)
        except TransitionError:
            assert not allowed
            continue
        assert allowed and status not in TERMINAL
        assert (transition.from_status, transition.to_status) == (status, target)
        assert (transition.actor, transition.role, transition.reason, transition.at) == (actor, role, reason, AT)
        status = transition.to_status
