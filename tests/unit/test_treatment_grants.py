"""Treatment grants from the versions of a coordination Task: who held it from when until when, whatever order and
how often the versions arrive."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.triage.domain.grants import (
    ACUTE_REQUEST_SYSTEM,
    ENDING,
    WORKING,
    Grant,
    TaskVersion,
    grants_of,
    read_task_change,
)

WIJK, ZUIDRAND, RTP = (f"http://fhir.nl/fhir/NamingSystem/ura|{v}" for v in ("90000020", "90000010", "90000030"))
T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def history(*steps: tuple[str, str]) -> list[TaskVersion]:
    """Versions 1, 2, … of a Task, one minute apart: (owner, status) each."""
    return [TaskVersion(version=i, owner=owner, status=status, at=at(i)) for i, (owner, status) in
            enumerate(steps, start=1)]


def test_owner_holds_a_grant_while_working_and_it_ends_when_the_task_completes() -> None:
    versions = history((WIJK, "requested"), (WIJK, "accepted"), (WIJK, "in-progress"), (WIJK, "completed"))
    assert grants_of(versions) == [Grant(org=WIJK, since=at(1), ended_at=at(4))]
    assert grants_of(versions[:3]) == [Grant(org=WIJK, since=at(1), ended_at=None)]


@pytest.mark.parametrize("ending", sorted(ENDING))
def test_every_status_that_ends_the_work_ends_the_grant_at_that_version(ending: str) -> None:
    assert grants_of(history((WIJK, "requested"), (WIJK, ending))) == [Grant(WIJK, at(1), at(2))]


def test_reassignment_ends_the_old_owners_grant_and_starts_the_new_owners_at_that_moment() -> None:
    versions = history((WIJK, "requested"), (WIJK, "rejected"), (ZUIDRAND, "requested"), (ZUIDRAND, "accepted"))
    assert grants_of(versions) == [Grant(WIJK, at(1), at(2)), Grant(ZUIDRAND, at(3), None)]
    # Handed on before anyone acted on it: the old grant ends where the new one starts.
    assert grants_of(history((WIJK, "requested"), (RTP, "requested"))) == [Grant(WIJK, at(1), at(2)),
                                                                          Grant(RTP, at(2), None)]


def test_an_organisation_that_gets_the_task_back_gets_a_new_grant() -> None:
    versions = history((WIJK, "requested"), (RTP, "requested"), (WIJK, "requested"))
    assert grants_of(versions) == [Grant(WIJK, at(1), at(2)), Grant(RTP, at(2), at(3)), Grant(WIJK, at(3), None)]


def test_repeated_and_out_of_order_versions_give_the_grants_of_the_versions_in_order() -> None:
    versions = history((WIJK, "requested"), (WIJK, "rejected"), (ZUIDRAND, "requested"))
    late_and_twice = [versions[2], versions[0], versions[2], versions[1], versions[0]]
    assert grants_of(late_and_twice) == grants_of(versions)


def test_a_lost_version_makes_the_grant_end_at_the_next_version_known() -> None:
    v1, _, v3 = history((WIJK, "requested"), (WIJK, "rejected"), (ZUIDRAND, "requested"))
    assert grants_of([v3, v1]) == [Grant(WIJK, at(1), at(3)), Grant(ZUIDRAND, at(3), None)]


def test_a_first_known_version_that_already_ended_still_grants_its_owner_from_that_moment() -> None:
    completed = TaskVersion(version=4, owner=WIJK, status="completed", at=at(4))
    assert grants_of([completed]) == [Grant(WIJK, at(4), at(4))]
    # Another owner ending work it was never seen to start (versions in between lost).
    v1 = TaskVersion(version=1, owner=WIJK, status="requested", at=at(1))
    assert grants_of([v1, TaskVersion(version=5, owner=ZUIDRAND, status="completed", at=at(5))]) == [
        Grant(WIJK, at(1), at(5)), Grant(ZUIDRAND, at(5), at(5))]


def test_a_draft_grants_nothing() -> None:
    assert grants_of(history((WIJK, "draft"))) == []
    assert grants_of(history((WIJK, "draft"), (WIJK, "requested"))) == [Grant(WIJK, at(2), None)]


OWNERS = st.sampled_from([WIJK, ZUIDRAND, RTP])
STATUSES = st.sampled_from(sorted(WORKING | ENDING))


@given(steps=st.lists(st.tuples(OWNERS, STATUSES), min_size=1, max_size=12), data=st.data())
def test_any_order_and_any_repeats_of_the_versions_give_the_same_grants(
        steps: list[tuple[str, str]], data: st.DataObject) -> None:
    versions = history(*steps)
    shuffled = data.draw(st.permutations(versions + data.draw(st.lists(st.sampled_from(versions), max_size=6))))
    grants = grants_of(versions)
    assert grants_of(shuffled) == grants
    # At most one grant runs, the last one, and it belongs to the owner of the last version while it works.
    assert all(g.ended_at is not None for g in grants[:-1])
    last = versions[-1]
    assert (grants[-1].ended_at is None) == (last.status in WORKING)
    if last.status in WORKING:
        assert grants[-1].org == last.owner
    # Grants follow each other in time and never end before they start.
    for earlier, later in zip(grants, grants[1:], strict=False):
        assert earlier.ended_at is not None and earlier.ended_at <= later.since
    assert all(g.ended_at is None or g.since <= g.ended_at for g in grants)


def task(**changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "resourceType": "Task", "id": "t1", "status": "requested",
        "meta": {"versionId": "3", "lastUpdated": "2026-11-22T10:15:00+01:00"},
        "basedOn": [{"identifier": {"system": ACUTE_REQUEST_SYSTEM, "value": "r1"}}],
        "owner": {"identifier": {"system": "http://fhir.nl/fhir/NamingSystem/ura", "value": "90000020"}},
    }
    value.update(changes)
    return value


def test_a_task_changed_value_is_read_with_its_owner_request_version_and_moment_in_utc() -> None:
    change = read_task_change(task())
    assert (change.task_id, change.acute_request_id) == ("t1", "r1")
    assert change.version == TaskVersion(version=3, owner=WIJK, status="requested",
                                         at=datetime(2026, 11, 22, 9, 15, tzinfo=UTC))
    assert change.version.at.tzinfo == UTC


@pytest.mark.parametrize(("changes", "problem"), [
    ({"resourceType": "ServiceRequest"}, "not a FHIR Task"),
    ({"id": ""}, "Task.id"),
    ({"basedOn": []}, "acute request"),
    ({"basedOn": [{"identifier": {"system": "urn:other", "value": "r1"}}]}, "acute request"),
    ({"basedOn": [{"reference": "ServiceRequest/1"}]}, "acute request"),
    ({"owner": {"reference": "Organization/1"}}, "owner"),
    ({"owner": {"identifier": {"value": "90000020"}}}, "owner"),
    ({"status": "done"}, "status"),
    ({"meta": {"versionId": "0", "lastUpdated": "2026-11-22T10:15:00+01:00"}}, "versionId"),
    ({"meta": {"versionId": "x", "lastUpdated": "2026-11-22T10:15:00+01:00"}}, "versionId"),
    ({"meta": {"lastUpdated": "2026-11-22T10:15:00+01:00"}}, "versionId"),
    ({"meta": {"versionId": "2", "lastUpdated": "yesterday"}}, "lastUpdated"),
    ({"meta": {"versionId": "2", "lastUpdated": "2026-11-22T10:15:00"}}, "time zone"),
])
def test_a_value_that_is_no_usable_task_is_refused_naming_the_problem(changes: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        read_task_change(task(**changes))


def test_a_value_that_is_not_even_an_object_is_refused() -> None:
    for value in (None, [], "Task"):
        with pytest.raises(ValueError, match="not a FHIR Task"):
            read_task_change(value)
