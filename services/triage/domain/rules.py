"""Triage rules: urgency levels with target times, dispositions, and the order of the worklist."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

AMSTERDAM = ZoneInfo("Europe/Amsterdam")

# Minutes from first contact; U5 means "next working day" and is computed by `due_by`.
DEFAULT_TARGET_MINUTES: dict[str, int | None] = {"U0": 0, "U1": 15, "U2": 60, "U3": 180, "U4": 1440, "U5": None}
URGENCIES = tuple(DEFAULT_TARGET_MINUTES)

DISPOSITIONS: dict[str, str] = {
    "remote-advice": "Advies op afstand",
    "home-visit": "Visite aan huis",
    "onsite-consult": "Consult op de post",
    "community-nursing": "Wijkverpleging",
    "gp-office-hours": "Eigen huisarts volgende werkdag",
    "hospital-referral": "Verwijzing ziekenhuis",
    "rtp-placement": "Plaatsing via transferpunt",
    "ambulance": "Ambulance",
}

# FHIR request priority that a partner reads from an urgency.
PRIORITY_OF_URGENCY = {"U0": "stat", "U1": "stat", "U2": "asap", "U3": "urgent", "U4": "routine", "U5": "routine"}
REFERRAL_PRIORITY_RANK = {"stat": 0, "asap": 1, "urgent": 2, "routine": 3}

END_OF_WORKING_DAY = time(17, 0)


def due_by(urgency: str, received_at: datetime, targets: dict[str, int | None] | None = None) -> datetime:
    """The moment by which care must have started, counted from the first contact."""
    minutes = (targets or DEFAULT_TARGET_MINUTES)[urgency]
    if minutes is not None:
        return received_at + timedelta(minutes=minutes)
    local = received_at.astimezone(AMSTERDAM)
    day = local.date() + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return datetime.combine(day, END_OF_WORKING_DAY, AMSTERDAM)


def worklist_rank(*, urgency: str | None, referral_priority: str | None, received_at: datetime) -> tuple:
    """Untriaged requests first (their urgency is unknown, so they may be the most urgent), by the partner's
    priority; then triaged ones by urgency; within each, longest waiting first."""
    if urgency is None:
        return (0, REFERRAL_PRIORITY_RANK.get(referral_priority or "routine", 3), received_at)
    return (1, URGENCIES.index(urgency), received_at)
