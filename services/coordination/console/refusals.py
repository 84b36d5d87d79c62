"""What the case-manager console says when coordination refuses one of its actions (take a case, propose a
handover, reassign or escalate a Task, add a note): the service's refusal (an OperationOutcome issue's code and the
field it names) mapped to a Dutch message with {placeholders} (English in shared/i18n.py, checked by a test), so the
page never shows the service's English text for a refusal it knows."""

from __future__ import annotations

from collections.abc import Callable

from shared.fhir import Issue
from shared.refusals import words

ANY = "*"
# (action, issue code, first expression or ANY) → Dutch message. Actions: take, handover, reassign, escalate, note.
REFUSALS: dict[tuple[str, str, str], str] = {
    ("reassign", "forbidden", ANY): "Alleen de aanvrager of een casemanager draagt een taak over.",
    ("escalate", "forbidden", ANY): "Alleen de aanvrager of een casemanager escaleert een taak.",
    ("handover", "forbidden", ANY): "Alleen een casemanager of de huidige hoofdbehandelaar stelt een overdracht voor.",
    (ANY, "forbidden", ANY): "U mag deze wijziging niet doen.",
    ("reassign", "business-rule", "Task.owner"): "Een taak die {status} is, wordt niet meer overgedragen.",
    ("reassign", "not-found", "Task.owner.identifier"): "Kies een organisatie uit de lijst.",
    ("reassign", "business-rule", "Task.owner.identifier"): "{name} levert geen {action}; kies een organisatie die "
                                                             "dat wel doet.",
    ("reassign", "business-rule", "Task.statusReason"): "{name} is gesloten op de streeftijd ({due}): geef een reden "
                                                         "of kies een andere organisatie.",
    ("escalate", "business-rule", ANY): "Een taak die {status} is, wordt niet meer geëscaleerd.",
    ("escalate", "required", ANY): "Geef een reden om de taak te escaleren.",
    ("handover", "value", ANY): "Kies een andere zorgaanbieder uit de regio als nieuwe hoofdbehandelaar.",
    ("handover", "business-rule", ANY): "Kies een andere zorgaanbieder uit de regio als nieuwe hoofdbehandelaar.",
    ("handover", "required", ANY): "Geef een reden voor de overdracht.",
    ("handover", "conflict", ANY): "Er wacht al een overdracht op antwoord.",
    (ANY, "not-found", ANY): "Deze taak of zorgperiode is niet (meer) bekend; ververs de pagina.",
}
# A refusal not in the table: said as refused, with the service's own text as the detail.
OTHER = "De actie is geweigerd, er is niets veranderd: {detail}"


def message(action: str, issue: Issue) -> str | None:
    """The Dutch message for one issue of a refused `action`, the most specific entry first; None if unknown."""
    where = issue.expression[0] if issue.expression else ANY
    for key in ((action, issue.code, where), (action, issue.code, ANY), (ANY, issue.code, where),
                (ANY, issue.code, ANY)):
        if key in REFUSALS:
            return REFUSALS[key]
    return None


def said(action: str, issues: list[Issue], values: dict[str, str], translate: Callable[[str], str]) -> str:
    """A refusal of `action` in the language of `translate`: each issue's message once, its placeholders filled from
    `values` (already in that language: status, name, action, due), unknown issues as OTHER with their text."""
    texts: list[str] = []
    for issue in issues:
        known = message(action, issue)
        text = words(known, values, translate) if known else words(OTHER, {"detail": issue.diagnostics}, translate)
        if text not in texts:
            texts.append(text)
    return " ".join(texts) or words(OTHER, {"detail": "–"}, translate)
