"""The phone/walk-in form's checks in the nurse's words (pure): what is wrong, in Dutch (English in shared/i18n.py),
so the console answers before the service refuses and the form comes back with everything typed still in it."""

from __future__ import annotations

from datetime import date

from services.triage.service import PHONE
from shared.fhir import Issue
from shared.identifiers import is_valid_bsn

# Dutch messages (the console's default language); a test checks each has English.
BSN_INVALID = "Het BSN klopt niet: negen cijfers die de elfproef doorstaan. Laat het leeg als het onbekend is."
BIRTH_DATE_INVALID = "De geboortedatum is geen geldige datum in het verleden."
UZOVI_INVALID = "De UZOVI-code van de verzekeraar is vier cijfers."
PHONE_INVALID = "Het terugbelnummer is geen telefoonnummer: cijfers, eventueel met +, spaties, streepjes of haakjes."
COMPLAINT_MISSING = "Vul de klacht in: wat is er aan de hand?"
NOT_RECORDED = "Het contact is niet vastgelegd: {detail}"
PATIENT_UNKNOWN = "De gekozen patiënt is hier niet (meer) bekend; zoek de patiënt opnieuw op."
# The service's refusals by the field they name (services/triage/service.record_contact).
BY_FIELD = {"patient.bsn": BSN_INVALID, "callback_phone": PHONE_INVALID, "patient": PATIENT_UNKNOWN}
# The triage form's refusals (services/triage/service.triage), by the issue's code and the field it names.
TRIAGE_REFUSALS = {
    ("required", "urgency"): "Kies de urgentie.", ("required", "disposition"): "Kies de vervolgactie.",
    ("required", "assigned_organization"): "Kies de organisatie.",
    ("business-rule", "assigned_organization"): "{organisation} levert deze vervolgactie niet volgens de sociale "
                                                "kaart; kies een organisatie die haar levert.",
    ("business-rule", "closed_reason"): "{organisation} is gesloten op de streeftijd: geef een reden of kies een "
                                        "andere organisatie.",
}
TRIAGE_CONFLICT = "Deze aanvraag is intussen al getrieerd; open haar opnieuw om opnieuw te triëren, met een reden."
TRIAGE_NOT_RECORDED = "De triage is niet vastgelegd: {detail}"
MESSAGES = (BSN_INVALID, BIRTH_DATE_INVALID, UZOVI_INVALID, PHONE_INVALID, COMPLAINT_MISSING, NOT_RECORDED,
            PATIENT_UNKNOWN,
            *TRIAGE_REFUSALS.values(), TRIAGE_CONFLICT, TRIAGE_NOT_RECORDED)


def contact_problems(*, bsn: str, birth_date: str, uzovi: str, callback_phone: str, complaint: str,
                     today: date) -> list[str]:
    """What is wrong with a filled-in contact form, as Dutch messages in the form's order; [] when it may be sent.
    Empty optional fields are fine; the same rules as the API (SPEC §4 `POST /api/v1/requests`): a BSN passes the
    11-proof, a birth date is a real date not after `today`, a UZOVI code is four digits, a callback number is a
    phone number, and the complaint is said."""
    problems = []
    if bsn.strip() and not is_valid_bsn(bsn.strip()):
        problems.append(BSN_INVALID)
    if birth_date.strip():
        try:
            valid = date.fromisoformat(birth_date.strip()) <= today and len(birth_date.strip()) == 10
        except ValueError:
            valid = False
        if not valid:
            problems.append(BIRTH_DATE_INVALID)
    if uzovi.strip() and not (len(uzovi.strip()) == 4 and uzovi.strip().isascii() and uzovi.strip().isdigit()):
        problems.append(UZOVI_INVALID)
    if callback_phone.strip() and not PHONE.fullmatch(callback_phone.strip()):
        problems.append(PHONE_INVALID)
    if not complaint.strip():
        problems.append(COMPLAINT_MISSING)
    return problems


def refusal_messages(issues: list[Issue]) -> list[tuple[str, str]]:
    """The service's refusal of a contact as (Dutch message, detail) pairs: a known field's own message with no
    detail, else NOT_RECORDED with the service's diagnostics as the detail."""
    found: list[tuple[str, str]] = []
    for issue in issues:
        known = next((BY_FIELD[e] for e in issue.expression if e in BY_FIELD), None)
        pair = (known, "") if known else (NOT_RECORDED, issue.diagnostics)
        if pair not in found:
            found.append(pair)
    return found


def triage_refusal_messages(issues: list[Issue]) -> list[tuple[str, str]]:
    """The service's refusal of a triage as (Dutch message, detail) pairs, in the order refused: a known refusal's
    own message (with an {organisation} placeholder where it names the chosen one), a conflict (already triaged),
    else TRIAGE_NOT_RECORDED with the service's diagnostics as the detail."""
    found: list[tuple[str, str]] = []
    for issue in issues:
        known = next((TRIAGE_REFUSALS[(issue.code, e)] for e in issue.expression
                      if (issue.code, e) in TRIAGE_REFUSALS), None)
        if known is not None:
            pair = (known, "")
        elif issue.code == "conflict":
            pair = (TRIAGE_CONFLICT, "")
        else:
            pair = (TRIAGE_NOT_RECORDED, issue.diagnostics)
        if pair not in found:
            found.append(pair)
    return found
