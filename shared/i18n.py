"""Console labels in Dutch (the default) or English: `?lang=en` switches, a cookie remembers the choice.

Templates write the Dutch label in `t("...")`; English comes from the table below. A test checks that
every label used in the translated templates has its English counterpart.
"""

from __future__ import annotations

from fastapi import Request

LANG_COOKIE = "rz_lang"
LANGUAGES = ("nl", "en")

ENGLISH: dict[str, str] = {
    "Werklijst": "Worklist", "Nieuw contact": "New contact", "Gebruikers": "Users", "Instellingen": "Settings",
    "Auditlog": "Audit log", "Ingelogd als": "Logged in as", "Uitloggen": "Log out",
    "Werklijst acute aanvragen": "Worklist of acute requests", "Kanaal": "Channel", "alle": "all",
    "Urgentie": "Urgency", "alleen te laat": "overdue only", "Zoek": "Search", "naam of klacht": "name or complaint",
    "Filter": "Filter", "Patiënt": "Patient", "Status": "Status", "Wacht (min)": "Waiting (min)",
    "Tot streeftijd": "To target", "Uiterlijk": "Due", "Geen aanvragen die aan het filter voldoen.":
    "No requests match the filter.", "onbekend": "unknown", "min te laat": "min overdue", "nog": "",
    "min": "min", "Triëren": "Triage", "Bekijken": "View", "Aanvraag via": "Request via",
    "Dit contact is gekoppeld aan de open aanvraag van deze patiënt: niet opnieuw triëren tenzij nodig.":
    "This contact is linked to the patient's open request: do not triage again unless needed.",
    "geboren": "born", "zonder BSN": "without BSN", "Klacht": "Complaint", "ontvangen": "received",
    "lopende DBC gemeld": "open DBC reported", "triage": "triage", "Gekoppelde contacten": "Linked contacts",
    "via": "via", "Eerdere triage": "Earlier triage", "door": "by", "opnieuw getrieerd": "re-triaged",
    "Eerdere aanvragen van deze patiënt": "Earlier requests of this patient", "Opnieuw triëren": "Triage again",
    "volgende werkdag": "next working day", "binnen": "within", "Vervolgactie": "Follow-up action",
    "Organisatie": "Organisation", "nu open": "open now", "nu gesloten": "closed now", "Notitie": "Note",
    "Reden om opnieuw te triëren (verplicht)": "Reason to triage again (required)",
    "Triage vastleggen": "Record triage", "Telefonisch of balie-contact vastleggen":
    "Record a phone or walk-in contact", "Zoek patiënt op BSN": "Find patient by BSN", "of op naam":
    "or by name", "en geboortedatum": "and birth date", "Geen patiënt gevonden: leg een nieuwe patiënt vast.":
    "No patient found: record a new patient.", "naam onbekend": "name unknown", "BSN bekend": "BSN known",
    "telefoon": "phone", "balie": "walk-in", "BSN (leeg als onbekend)": "BSN (empty if unknown)", "Naam": "Name",
    "Geboortedatum": "Birth date", "UZOVI verzekeraar (leeg als geen Nederlandse verzekering)":
    "UZOVI insurer (empty without Dutch insurance)", "Vastleggen": "Record",
    "Instellingen van de voordeur": "Front-door settings", "Streeftijden per urgentie": "Target times per urgency",
    "Minuten (leeg = volgende werkdag)": "Minutes (empty = next working day)",
    "Streeftijden opslaan": "Save target times", "Sociale kaart: wie levert wat, wanneer":
    "Directory: who provides what, when", "Uren": "Hours", "alleen werkdagen": "working days only",
    "Opslaan": "Save", "Gebruikers van de consoles": "Console users", "Gebruikersnaam": "Username",
    "Rol": "Role", "Aangemaakt door": "Created by", "Nieuwe gebruiker": "New user",
    "Wachtwoord (minstens 12 tekens)": "Password (at least 12 characters)", "Aanmaken": "Create",
    "Taal": "Language", "Open taken": "Open Tasks", "Coördinatie is nu niet bereikbaar.":
    "Coordination cannot be reached right now.", "Geen open taken.": "No open Tasks.",
    # The partner console (coordination) and partner accounts (triage's users page).
    "Organisatie (alleen voor de rol partner)": "Organisation (for the partner role only)",
    "Taken": "Tasks", "Er is iets veranderd: lijst verversen": "Something changed: refresh the list",
    "Te laat": "Overdue", "Nieuw": "New", "Geaccepteerd": "Accepted", "Bezig": "In progress",
    "Geen nieuwe taken.": "No new Tasks.", "Geen geaccepteerde taken.": "No accepted Tasks.",
    "Geen taken onderweg.": "No Tasks in progress.", "Afgehandeld (laatste 24 uur)": "Finished (last 24 hours)",
    "Taak": "Task", "te laat": "overdue", "jaar": "years", "Adres": "Address", "Telefoon": "Phone",
    "Naam en adres zijn bij coördinatie niet bekend.": "Coordination does not know the name and address.",
    "Triagenotitie": "Triage note", "Verwijzer": "Referrer", "Gestart": "Started", "Geleverd": "Delivered",
    "Reden": "Reason", "Accepteren": "Accept", "Starten": "Start", "Afronden": "Complete", "Afwijzen": "Reject",
    "Geleverd contact": "Delivered contact", "Begin": "Start", "Einde (leeg = nu)": "End (empty = now)",
    "Contact vastleggen en afronden": "Record the contact and complete", "Reden (verplicht)": "Reason (required)",
    "Taak afwijzen": "Reject the Task",
    "nieuw": "new", "geaccepteerd": "accepted", "bezig": "in progress",
    "gepauzeerd": "on hold", "afgerond": "completed", "afgewezen": "rejected", "geannuleerd": "cancelled",
    "mislukt": "failed", "concept": "draft", "klaar": "ready", "foutief ingevoerd": "entered in error",
    "accepteren": "accepting", "afwijzen": "rejecting", "starten": "starting", "afronden": "completing",
    "man": "male", "vrouw": "female", "anders": "other", "geslacht onbekend": "gender unknown",
    "Op afstand (VR)": "Remote (VR)", "Aan huis (HH)": "At home (HH)", "Op locatie (AMB)": "On site (AMB)",
    "Taak geaccepteerd.": "Task accepted.", "Taak afgewezen.": "Task rejected.", "Taak gestart.": "Task started.",
    "Taak afgerond, het contact is vastgelegd.": "Task completed, the contact is recorded.",
    "Deze taak is niet (meer) van uw organisatie.": "This Task is not (or no longer) your organisation's.",
    "Alleen de uitvoerende organisatie mag deze taak wijzigen.": "Only the performing organisation may change "
    "this Task.",
    "Deze taak is al {status}.": "This Task is already {status}.",
    "Deze taak is al {status} en verandert niet meer: {action} kan niet.": "This Task is already {status} and "
    "no longer changes: {action} it is not possible.",
    "Deze taak is {status}: {action} kan nu niet.": "This Task is {status}: {action} it is not possible now.",
    "Geef een reden om de taak af te wijzen.": "Give a reason to reject the Task.",
    "Kies het geleverde contact: op afstand, aan huis of op locatie.": "Choose the delivered contact: remote, at "
    "home or on site.",
    "Begin en einde zijn geen geldige tijden (dag en tijd).": "Start and end are not valid times (day and time).",
    "Het einde van het contact ligt vóór het begin.": "The contact ends before it starts.",
    "Het contact kan niet in de toekomst beginnen of eindigen.": "The contact cannot start or end in the future.",
    "De actie is geweigerd, er is niets veranderd: {detail}": "The action was refused, nothing changed: {detail}",
    # Follow-up actions (triage's disposition displays, as a Task's code carries them).
    "Advies op afstand": "Remote advice", "Visite aan huis": "Home visit", "Consult op de post": "Consult at the post",
    "Wijkverpleging": "Community nursing", "Eigen huisarts volgende werkdag": "Own GP next working day",
    "Verwijzing ziekenhuis": "Hospital referral", "Plaatsing via transferpunt": "Placement via the transfer point",
    "Ambulance": "Ambulance",
    "Wie belt": "Caller", "patiënt zelf": "the patient", "naaste": "relative", "mantelzorger": "carer",
    "zorgverlener": "professional", "Terugbelnummer": "Callback number",
    "Postcode": "Postal code", "Woonplaats": "City",
    # The billing console's error pages.
    "Ongeldige periode": "Invalid period", "Onbekende aanvraag": "Unknown request",
    "Onbekende verzekeraar": "Unknown insurer", "Onbekend exportformaat": "Unknown export format",
    "Alleen de beheerder legt nieuwe tariefversies vast.": "Only the admin records new tariff versions.",
    "Terug naar het overzicht": "Back to the overview",
    # Safe triage and deliverable routing (the night shift).
    "Huidige triage": "Current triage",
    "Het formulier begint bij de huidige waarden; wat u wijzigt staat hieronder.":
    "The form starts from the current values; what you change is shown below.",
    "— kies de urgentie —": "— choose the urgency —", "— kies de vervolgactie —": "— choose the follow-up action —",
    "— kies de organisatie —": "— choose the organisation —", "uiterlijk": "due", "werkdagen": "working days",
    "Kies eerst de vervolgactie: alleen organisaties die haar leveren worden getoond.":
    "Choose the follow-up action first: only organisations that provide it are shown.",
    "Reden om te routeren naar een organisatie die op de streeftijd gesloten is":
    "Reason to route to an organisation that is closed at the due time",
    "Nog niets gewijzigd.": "Nothing changed yet.", "open op de streeftijd": "open at the due time",
    "gesloten op de streeftijd": "closed at the due time",
    "Geen organisatie levert deze vervolgactie.": "No organisation provides this follow-up action.",
    "Deze organisatie is gesloten op de streeftijd: geef een reden of kies een andere.":
    "This organisation is closed at the due time: give a reason or choose another.",
    "Wijzigt": "Changes", "urgentie": "urgency", "vervolgactie": "follow-up action", "organisatie": "organisation",
    "Triage vastgelegd": "Triage recorded", "gesloten op de streeftijd, reden": "closed at the due time, reason",
    "Coördinatie maakt de taak voor deze organisatie.": "Coordination creates the Task for this organisation.",
    "Terug naar de werklijst": "Back to the worklist",
    "nieuw contact sinds triage": "new contact since triage", "terugbellen": "call back",
    "na de triage": "after the triage",
    # Sessions and users: the refusal page, the login page, the admin's account actions.
    "Geen toegang": "No access", "Geen toegang tot deze console": "No access to this console",
    "Met de rol {role} kunt u deze console niet openen.": "The role {role} cannot open this console.",
    "Werkt u op een gedeelde werkplek? Log uit en log in met uw eigen account.":
    "Working on a shared workstation? Log out and log in with your own account.",
    "Inloggen als een andere gebruiker": "Log in as another user",
    "Inloggen": "Log in", "Wachtwoord": "Password",
    "Log in voor de consoles van triage, coördinatie en declaratie.":
    "Log in to the consoles of triage, coordination and billing.",
    "Te veel mislukte pogingen; probeer het over 15 minuten opnieuw.":
    "Too many failed attempts; try again in 15 minutes.",
    "Onbekende gebruiker of verkeerd wachtwoord.": "Unknown user or wrong password.",
    "Dit account is uitgeschakeld; neem contact op met beheer.": "This account is disabled; contact the admin.",
    "De sessie van dit formulier is verlopen; probeer opnieuw.": "This form's session has expired; try again.",
    "Uitgeschakeld": "Disabled", "Geblokkeerd": "Locked", "actief": "active", "Acties": "Actions",
    "Uitschakelen": "Disable", "Inschakelen": "Enable", "Deblokkeren": "Unlock",
    "Nieuw wachtwoord (leeg = laten genereren)": "New password (empty = generate one)",
    "Wachtwoord herstellen": "Reset password",
    "Nieuw wachtwoord voor {username}, wordt maar één keer getoond:":
    "New password for {username}, shown only once:",
    "{username} is uitgeschakeld; de sessies zijn beëindigd.": "{username} is disabled; the sessions have ended.",
    "{username} is weer ingeschakeld.": "{username} is enabled again.",
    "{username} is gedeblokkeerd.": "{username} is unlocked.",
    "Het wachtwoord van {username} is hersteld; de sessies zijn beëindigd.":
    "The password of {username} is reset; the sessions have ended.",
    # The triage console in words: channels, statuses, due days, the patient's reach, the lookup, its form errors.
    "verwijzing": "referral", "te triëren": "to triage", "getrieerd": "triaged", "afgesloten": "closed",
    "morgen": "tomorrow", "gisteren": "yesterday", "routine": "routine", "spoed": "urgent",
    "zo snel mogelijk": "as soon as possible", "direct": "immediately",
    "Telefoon patiënt": "Patient's phone", "Huidig adres": "Current address",
    "heeft een open aanvraag": "has an open request", "Kies deze patiënt": "Choose this patient",
    "Gegevens van de gekozen patiënt ingevuld; controleer ze met de beller.":
    "The chosen patient's details are filled in; check them with the caller.",
    "Het BSN klopt niet: negen cijfers die de elfproef doorstaan. Laat het leeg als het onbekend is.":
    "The BSN is not valid: nine digits that pass the 11-proof. Leave it empty if it is unknown.",
    "De geboortedatum is geen geldige datum in het verleden.": "The birth date is not a valid date in the past.",
    "De UZOVI-code van de verzekeraar is vier cijfers.": "The insurer's UZOVI code is four digits.",
    "Het terugbelnummer is geen telefoonnummer: cijfers, eventueel met +, spaties, streepjes of haakjes.":
    "The callback number is not a phone number: digits, optionally with +, spaces, dashes or brackets.",
    "Vul de klacht in: wat is er aan de hand?": "Fill in the complaint: what is the matter?",
    "Het contact is niet vastgelegd: {detail}": "The contact was not recorded: {detail}",
    "De gekozen patiënt is hier niet (meer) bekend; zoek de patiënt opnieuw op.":
    "The chosen patient is not (or no longer) known here; look the patient up again.",
    "Kies de urgentie.": "Choose the urgency.", "Kies de vervolgactie.": "Choose the follow-up action.",
    "Kies de organisatie.": "Choose the organisation.", "De gekozen organisatie": "The chosen organisation",
    "{organisation} levert deze vervolgactie niet volgens de sociale kaart; kies een organisatie die haar levert.":
    "{organisation} does not provide this follow-up action according to the directory; choose one that does.",
    "{organisation} is gesloten op de streeftijd: geef een reden of kies een andere organisatie.":
    "{organisation} is closed at the due time: give a reason or choose another organisation.",
    "Deze aanvraag is intussen al getrieerd; open haar opnieuw om opnieuw te triëren, met een reden.":
    "This request has been triaged in the meantime; open it again to triage it again, with a reason.",
    "De triage is niet vastgelegd: {detail}": "The triage was not recorded: {detail}",
    # Refused logins (shared/console.py) and refused account changes (services/triage/accounts.py).
    "Inloggen niet gelukt": "Login failed", "Opnieuw inloggen": "Log in again",
    "Formulier niet verwerkt": "Form not processed",
    "Dit formulier is verlopen en niet verwerkt. Open de pagina opnieuw en probeer het nog eens.":
    "This form has expired and was not processed. Open the page again and try once more.",
    "U bent niet (meer) ingelogd; het formulier is niet verwerkt. Log in en probeer het opnieuw.":
    "You are not logged in (any more); the form was not processed. Log in and try again.",
    "Deze inlogpoging is onbekend of verlopen. Begin opnieuw vanuit de console.":
    "This login attempt is unknown or has expired. Start again from the console.",
    "De inlogdienst is nu niet bereikbaar. Probeer het over een minuut opnieuw.":
    "The login service cannot be reached right now. Try again in a minute.",
    "Het inloggen is geweigerd: het account is uitgeschakeld, de inlogsessie is beëindigd of de inlogpoging is al "
    "gebruikt. Log opnieuw in.": "The login was refused: the account is disabled, the login session has ended or "
    "the login attempt was used already. Log in again.",
    "Het antwoord van de inlogdienst kon niet worden gecontroleerd. Log opnieuw in.":
    "The login service's answer could not be verified. Log in again.",
    "Dit account heeft geen rol voor de consoles. Vraag beheer om een rol.":
    "This account has no console role. Ask the admin for a role.",
    "Dit partneraccount hoort niet bij een zorgaanbieder van de regio. Vraag beheer de organisatie in te stellen.":
    "This partner account belongs to no care provider of the region. Ask the admin to set its organisation.",
    "Er is geen account {username}.": "There is no account {username}.",
    "Kies een rol uit: {roles}.": "Choose a role from: {roles}.",
    "Een account met de rol {role} hoort bij één zorgaanbieder van de regio: kies de organisatie.":
    "An account with the role {role} belongs to one care provider of the region: choose its organisation.",
    "Een account met de rol {role} werkt voor de voordeur en hoort bij geen andere organisatie.":
    "An account with the role {role} acts for the front door and belongs to no other organisation.",
    "Een gebruikersnaam bestaat uit letters, cijfers, punten en streepjes.":
    "A username is letters, digits, dots and dashes.",
    "De gebruikersnaam {username} is al in gebruik.": "The username {username} is taken.",
    "U kunt uw eigen account niet uitschakelen.": "You cannot disable your own account.",
    "Een wachtwoord heeft minstens {count} tekens.": "A password has at least {count} characters.",
    "De wijziging is geweigerd: {detail}": "The change was refused: {detail}",
}


def language(request: Request) -> str:
    chosen = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE) or "nl"
    return chosen if chosen in LANGUAGES else "nl"


def translator(lang: str):  # type: ignore[no-untyped-def]
    if lang == "en":
        return lambda text: ENGLISH.get(text, text)
    return lambda text: text
