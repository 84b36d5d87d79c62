"""Urgency target times and the order of the triage worklist."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.triage.domain.rules import AMSTERDAM, due_by, worklist_rank


def test_urgency_targets_count_from_first_contact() -> None:
    received = datetime(2026, 11, 22, 20, 0, tzinfo=UTC)
    assert due_by("U0", received) == received
    assert due_by("U1", received) == received + timedelta(minutes=15)
    assert due_by("U3", received) == received + timedelta(hours=3)
    assert due_by("U4", received) == received + timedelta(hours=24)


def test_u5_is_due_by_the_end_of_the_next_working_day_in_amsterdam() -> None:
    friday_evening = datetime(2026, 11, 20, 22, 0, tzinfo=AMSTERDAM)
    assert due_by("U5", friday_evening) == datetime(2026, 11, 23, 17, 0, tzinfo=AMSTERDAM)


def test_configured_targets_replace_the_defaults() -> None:
    received = datetime(2026, 11, 22, 20, 0, tzinfo=UTC)
    targets = {"U0": 0, "U1": 10, "U2": 30, "U3": 120, "U4": 600, "U5": None}
    assert due_by("U3", received, targets) == received + timedelta(hours=2)


def test_worklist_puts_untriaged_first_then_urgency_then_longest_waiting() -> None:
    t0 = datetime(2026, 11, 22, 20, 0, tzinfo=UTC)
    items = {
        "u3-old": worklist_rank(urgency="U3", referral_priority=None, received_at=t0),
        "u1-new": worklist_rank(urgency="U1", referral_priority=None, received_at=t0 + timedelta(minutes=30)),
        "open-stat": worklist_rank(urgency=None, referral_priority="stat", received_at=t0 + timedelta(minutes=5)),
        "open-routine-old": worklist_rank(urgency=None, referral_priority="routine",
                                          received_at=t0 - timedelta(hours=1)),
        "u3-new": worklist_rank(urgency="U3", referral_priority=None, received_at=t0 + timedelta(minutes=1)),
    }
    assert sorted(items, key=items.__getitem__) == ["open-stat", "open-routine-old", "u1-new", "u3-old", "u3-new"]
