"""What one timeline entry says on the case manager's page, in the console's language: its tag in words, its text
built from the entry's facts (TimelineEntry.facts), a linked call's parts, and whether it marks an escalation.
Entries from before facts were kept show their Dutch text of record. Plain functions over plain data."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.coordination.domain import words
from shared.console import local_time

Translate = Callable[[str], str]
DELIVERED = {"VR": "Op afstand (VR)", "HH": "Aan huis (HH)", "AMB": "Op locatie (AMB)"}


@dataclass(frozen=True)
class Call:
    """A linked call as the timeline shows it: every part already in words."""

    channel: str
    caller: str | None
    callback: str | None
    complaint: str


@dataclass(frozen=True)
class Line:
    tag: str
    text: str
    escalation: bool = False
    call: Call | None = None


def _facts(raw: str | None) -> dict[str, Any]:
    try:
        facts = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return facts if isinstance(facts, dict) else {}


def _due(value: Any) -> str:
    try:
        return local_time(datetime.fromisoformat(str(value)))
    except ValueError:
        return "–"


def describe(*, kind: str, text: str, facts: str | None, t: Translate, name_of: Callable[[str | None], str]) -> Line:
    """The entry of `kind` with Dutch `text` and JSON `facts` (as episodes.note wrote them) in the words of
    translator `t`; organisation tokens become names through `name_of`. Unknown or missing facts give the stored
    text under the kind's tag, so nothing on the timeline is ever lost for want of a rendering."""
    f = _facts(facts)
    event = f.get("event")
    status = lambda code: t(words.label(words.STATUS_LABELS, code))  # noqa: E731
    reason = f" ({f['reason']})" if f.get("reason") else ""
    if event == "call":
        return Line(t(words.TIMELINE_LABELS["call"]), "", call=Call(
            channel=t(words.label(words.CHANNEL_LABELS, f.get("channel"))),
            caller=t(words.label(words.CALLER_LABELS, f["caller"])) if f.get("caller") else None,
            callback=f.get("callback") or None, complaint=str(f.get("complaint") or "")))
    if event == "triage":
        complaint = f" ({f['complaint']})" if f.get("complaint") else ""
        note = f"; {t('notitie')}: {f['note']}" if f.get("note") else ""
        return Line(t(words.TIMELINE_LABELS["triage"]),
                    f"{t(words.label(words.URGENCY_LABELS, f.get('urgency')))}{complaint}: "
                    f"{t(words.label(words.DISPOSITION_LABELS, f.get('disposition')))} {t('door')} "
                    f"{name_of(f.get('owner'))}, {t('uiterlijk')} {_due(f.get('due'))}{note}")
    if event == "status":
        return Line(t(words.TIMELINE_LABELS["task"]),
                    f"{name_of(f.get('owner'))}: {status(f.get('from'))} → {status(f.get('to'))}{reason}")
    if event == "reassigned":
        closed = f" ({t('gesloten op de streeftijd')})" if f.get("closed_at_due") else ""
        return Line(t(words.TIMELINE_LABELS["task"]), f"{t('overgedragen')}: {name_of(f.get('from'))} → "
                                                      f"{name_of(f.get('to'))}{closed}{reason}")
    if event == "escalated":
        return Line(t(words.TIMELINE_LABELS["escalation"]),
                    f"{t('taak geëscaleerd bij')} {name_of(f.get('owner'))}: {f.get('reason') or '–'}",
                    escalation=True)
    if event == "delivered":
        return Line(t(words.TIMELINE_LABELS["contact"]),
                    f"{t(DELIVERED.get(str(f.get('class')), str(f.get('class'))))} {t('door')} "
                    f"{name_of(f.get('owner'))}")
    if event == "closed":
        return Line(t(words.TIMELINE_LABELS["closed"]), t("acute aanvraag afgesloten"))
    if event == "referral":
        return Line(t(words.TIMELINE_LABELS["referral"]),
                    f"{t('verwijzing ontvangen')}: {f.get('reasons') or t('zonder reden')}")
    if event == "lead-proposed":
        return Line(t(words.TIMELINE_LABELS["handover"]),
                    f"{t('overdracht hoofdbehandelaarschap voorgesteld')}: {name_of(f.get('from'))} → "
                    f"{name_of(f.get('to'))}{reason}")
    if event == "lead-decided":
        decided = t("geaccepteerd") if f.get("accepted") else t("afgewezen")
        return Line(t(words.TIMELINE_LABELS["handover"]),
                    f"{t('overdracht')} {decided} {t('door')} {name_of(f.get('to'))}")
    if event == "case-manager":
        return Line(t(words.TIMELINE_LABELS["note"]), f"{f.get('who')} {t('is casemanager')}")
    if kind == "triage":  # entries from before facts began with the word their tag already says
        text = text.removeprefix("triage ")
    return Line(t(words.label(words.TIMELINE_LABELS, kind)), text, escalation="geëscaleerd" in text)
