"""What the coordination consoles say instead of codes: Task statuses, channels, callers, follow-up actions,
organisation kinds and timeline tags, in Dutch (the consoles' default). English comes from shared/i18n.py, checked
by tests/unit/test_console_languages.py. Plain data, no framework."""

from __future__ import annotations

# FHIR Task.status (SPEC §7) as a case manager and a partner read it.
STATUS_LABELS = {"requested": "nieuw", "received": "ontvangen", "accepted": "geaccepteerd", "in-progress": "bezig",
                 "on-hold": "gepauzeerd", "completed": "afgerond", "rejected": "afgewezen",
                 "cancelled": "geannuleerd", "failed": "mislukt", "draft": "concept", "ready": "klaar",
                 "entered-in-error": "foutief ingevoerd"}
# How a contact reached the front door (SPEC §4 `channel`).
CHANNEL_LABELS = {"referral": "verwijzing", "phone": "telefoon", "walk-in": "balie"}
# Who made a phone call or walk-in (SPEC §4 `caller`).
CALLER_LABELS = {"patient": "patiënt zelf", "relative": "naaste", "carer": "mantelzorger",
                 "professional": "zorgverlener"}
# The follow-up actions (SPEC §6), as the front door names them on the routing order (Task.code display).
DISPOSITION_LABELS = {"remote-advice": "Advies op afstand", "home-visit": "Visite aan huis",
                      "onsite-consult": "Consult op de post", "community-nursing": "Wijkverpleging",
                      "gp-office-hours": "Eigen huisarts volgende werkdag",
                      "hospital-referral": "Verwijzing ziekenhuis", "rtp-placement": "Plaatsing via transferpunt",
                      "ambulance": "Ambulance"}
KIND_LABELS = {"front-door": "spoedpost (voordeur)", "gp-practice": "huisartsenpraktijk", "hospital": "ziekenhuis",
               "community-nursing": "wijkverpleging", "transfer-point": "transferpunt", "insurer": "zorgverzekeraar"}
# The tag of a timeline entry (TimelineEntry.kind), and a linked call's.
TIMELINE_LABELS = {"referral": "verwijzing", "triage": "triage", "task": "taak", "contact": "contact geleverd",
                   "handover": "overdracht", "note": "notitie", "closed": "afgesloten", "call": "gekoppeld contact",
                   "escalation": "escalatie"}
HANDOVER_LABELS = {"proposed": "voorgesteld", "accepted": "geaccepteerd", "declined": "afgewezen"}
REQUEST_LABELS = {"open": "open", "closed": "afgesloten"}
# Urgency levels of the Dutch triage standard (SPEC §6), as the Task rows say how urgent the work is; the target
# time itself is configurable at the front door, so the rows show the due time next to it.
URGENCY_LABELS = {"U0": "U0 reanimatie", "U1": "U1 levensbedreigend", "U2": "U2 spoed", "U3": "U3 dringend",
                  "U4": "U4 niet dringend", "U5": "U5 advies"}


def label(table: dict[str, str], code: str | None) -> str:
    """The Dutch word for `code` in `table`; an unknown code is shown as it is, a missing one as "–"."""
    if not code:
        return "–"
    return table.get(code, code)
