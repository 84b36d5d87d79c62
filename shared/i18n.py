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
    "No requests match the filter.", "onbekend": "unknown", "min te laat": "min overdue", "nog": "", "u": "h", "d": "d",
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
    # The front door's page for the billing officer: who a ledger line is for.
    "Patiënt van aanvraag": "Patient of request",
    "Voor de declaratie (doel: betaling); deze inzage staat in het auditlog.":
    "For billing (purpose: payment); this look is in the audit log.",
    "Ontvangen": "Received", "geen Nederlandse verzekeraar": "no Dutch insurer",
    "Terug naar het grootboek van de schaduwdeclaratie": "Back to the ledger in shadow billing",
    # The admin's settings page (services/triage/console/forms.py).
    "De streeftijd voor {urgency} is een heel aantal minuten van 0 tot 10080, of leeg voor de volgende werkdag.":
    "The target for {urgency} is a whole number of minutes from 0 to 10080, or empty for the next working day.",
    "De uren zijn UU:MM-UU:MM, bijvoorbeeld 08:00-17:00, of 17:00-08:00 voor open over middernacht.":
    "Hours are HH:MM-HH:MM, e.g. 08:00-17:00, or 17:00-08:00 for open over midnight.",
    "Kies de vervolgacties uit de lijst.": "Choose the follow-up actions from the list.",
    "Deze organisatie staat niet in de sociale kaart van de regio.":
    "This organisation is not in the region's directory.",
    "De wijziging is niet opgeslagen: {detail}": "The change was not saved: {detail}",
    # The billing console's refusals by kind (corrections, tariff versions, evaluation periods).
    "Deze regel is niet (meer) bekend; ververs de pagina.": "This line is not known (any more); refresh the page.",
    "De correctie is geweigerd: {detail}": "The correction was refused: {detail}",
    "Onbekende tarieftabel of code: {key} {code}.": "Unknown tariff table or code: {key} {code}.",
    "Een nieuwe versie begint vandaag of later, niet op {date}.": "A new version starts today or later, not on {date}.",
    "Er is al een versie van {code} die begint op {date}; kies een latere datum.":
    "There is already a version of {code} starting on {date}; choose a later date.",
    "Geldig vanaf is een datum.": "Valid from is a date.",
    "Prijs in euro's met een komma, bijvoorbeeld 110,00.": "A price in euros with a decimal comma, e.g. 110,00.",
    "De prijs moet groter dan nul zijn.": "The price must be more than zero.",
    "{period} is geen maand (jjjj-mm).": "{period} is not a month (yyyy-mm).",
    "De eerste maand ({first}) ligt na de laatste ({last}).": "The first month ({first}) is after the last ({last}).",
    "De periode beslaat {count} maanden; hoogstens {most}.": "The period covers {count} months; at most {most}.",
    "U mag deze evaluatie niet lezen.": "You may not read this evaluation.",
    # Coordination's refusals in the case-manager and partner consoles (coordination/console/refusals.py).
    "Het contact kan niet beginnen vóór de aanvraag binnenkwam of in de toekomst; kies een begin tussen de "
    "ontvangst van de aanvraag en nu.": "The contact cannot start before the request came in or in the future; "
    "choose a start between the request's arrival and now.",
    "Alleen de aanvrager of een casemanager draagt een taak over.":
    "Only the requester or a case manager reassigns a Task.",
    "Alleen de aanvrager of een casemanager escaleert een taak.":
    "Only the requester or a case manager escalates a Task.",
    "Alleen een casemanager of de huidige hoofdbehandelaar stelt een overdracht voor.":
    "Only a case manager or the current lead proposes a handover.",
    "U mag deze wijziging niet doen.": "You may not make this change.",
    "Een taak die {status} is, wordt niet meer overgedragen.": "A Task that is {status} is no longer reassigned.",
    "Een taak die {status} is, wordt niet meer geëscaleerd.": "A Task that is {status} is no longer escalated.",
    "Geef een reden om de taak te escaleren.": "Give a reason to escalate the Task.",
    "Kies een andere zorgaanbieder uit de regio als nieuwe hoofdbehandelaar.":
    "Choose another care provider of the region as the new lead.",
    "Geef een reden voor de overdracht.": "Give a reason for the handover.",
    "Er wacht al een overdracht op antwoord.": "A handover is already waiting for an answer.",
    "Deze taak of zorgperiode is niet (meer) bekend; ververs de pagina.":
    "This Task or episode of care is not known (any more); refresh the page.",
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
    "{username} uitschakelen? Die wordt overal uitgelogd en kan niet meer inloggen.":
    "Disable {username}? They are logged out everywhere and can no longer log in.",
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
    # The admin's audit page (shared/audit_views.py): actions, outcomes and purposes of use in words.
    "Console": "Console", "Patiënt: naam, BSN of pseudoniem": "Patient: name, BSN or pseudonym",
    "Patiënt: BSN of pseudoniem": "Patient: BSN or pseudonym", "Alles tonen": "Show all",
    "Tijden in Nederlandse tijd (Europe/Amsterdam). Elke zoekopdracht wordt zelf in het auditlog vastgelegd.":
    "Times in Dutch time (Europe/Amsterdam). Every search is itself recorded in the audit log.",
    "Auditlog van triage": "Triage's audit log", "Geen patiënt gevonden.": "No patient found.", "Gevonden": "Found",
    "Geen gebeurtenissen.": "No events.", "Tijd": "Time", "Wie": "Who", "Namens": "On behalf of", "Actie": "Action",
    "Wat": "What", "Uitkomst": "Outcome", "Doel": "Purpose",
    "Aangemaakt": "Created", "Gelezen": "Read", "Gewijzigd": "Updated", "Verwijderd": "Deleted", "Gezocht": "Searched",
    "Geëxporteerd": "Exported", "Ingelogd": "Logged in",
    "Gelukt": "Succeeded", "Geweigerd": "Refused", "Fout": "Failed", "Ernstige fout": "Serious failure",
    "Behandeling": "Treatment", "Spoedbehandeling": "Emergency treatment",
    "Bedrijfsvoering zorg": "Healthcare operations",
    "Declaratie": "Payment", "Verzoek van de patiënt": "Patient request", "Systeembeheer": "System administration",
    "Dit is geen geldig BSN (9 cijfers die de elfproef doorstaan).":
    "This is not a valid BSN (9 digits that pass the 11-proof).",
    "Typ minstens twee letters van de naam.": "Type at least two letters of the name.",
    "Deze dienst kent geen namen van patiënten: zoek hier op BSN of pseudoniem, of op naam in het auditlog van triage.":
    "This service knows no patient names: search here by BSN or pseudonym, or by name in triage's audit log.",
    # The billing console (services/billing_shadow/console): its pages, ledger words and derivations.
    "Prestaties": "Prestations", "Evaluatie": "Evaluation", "Tarieven": "Tariffs",
    "Integrale prestaties": "Integrated prestations", "Periode": "Period", "Toon": "Show", "revisie": "revision",
    "Inclusie {rate} is onder de norm van {target}.": "Inclusion {rate} is below the target of {target}.",
    "Geen prestaties.": "No prestations.", "Prestatie": "Prestation", "Aantal (Q)": "Quantity (Q)",
    "Tarief (P)": "Tariff (P)", "Bedrag (P×Q)": "Amount (P×Q)", "Schaduw": "Shadow", "Onderbouwing": "Breakdown",
    "Totaal": "Total", "Integraal − schaduw": "Integrated − shadow", "inclusie": "inclusion",
    "alle regels": "all lines", "Integraal versus schaduw per maand": "Integrated versus shadow per month",
    "Integrale en schaduwkosten per maand": "Integrated and shadow cost per month", "integraal": "integrated",
    "schaduw": "shadow", "Prestatiemix": "Prestation mix",
    "Geen regels.": "No lines.", "Datum": "Date", "Soort": "Kind", "Bedrag": "Amount",
    "Niet gedeclareerd": "Not claimed", "Afleiding": "Derivation", "Aanvraag": "Request", "technisch": "technical",
    "Grootboek": "Ledger", "Grootboek van de aanvraag": "Ledger of the request",
    "Patiënt, BSN en verzekeraar bij de voordeur bekijken": "See the patient, BSN and insurer at the front door",
    "alleen zichtbaar bij triage, vastgelegd in het auditlog; de declaratieservice bewaart geen naam of BSN":
    "shown by triage only, recorded in the audit log; the billing service keeps no name or BSN",
    "Verzekeraar": "Insurer", "Vastgezet vanaf": "Locked from", "Afleiding / reden": "Derivation / reason",
    "reden": "reason", "Schaduwregels (wat het reguliere systeem had gedeclareerd)":
    "Shadow lines (what the regular system would have billed)",
    "Correctie (creditering en herdeclaratie)": "Correction (credit and rebill)",
    "De prestatie volgt uit de geleverde contacten; corrigeer hier alleen de verzekeraar, of trek de regel in.":
    "The prestation follows from the delivered contacts; correct only the insurer here, or withdraw the line.",
    "Na het vastzetten zijn gegevens van deze aanvraag gewijzigd: beoordeel en pas ze toe als correctie.":
    "Data of this request changed after it locked: review them and apply them as a correction.",
    "Herdeclareren bij": "Rebill to", "Intrekken": "Withdraw",
    "Later ontvangen gegevens toepassen": "Apply data received later", "Correctie vastleggen": "Record the correction",
    "Tarieftabellen": "Tariff tables",
    "Integrale tarieven per verzekeraarscontract (UZOVI) en de schaduwtabel met reguliere equivalenten. Afronding "
    "half-naar-boven op hele centen. Een prijs wordt nooit aangepast: een nieuwe prijs is een nieuwe versie met een "
    "ingangsdatum.": "Integrated tariffs per insurer contract (UZOVI) and the shadow table with regular equivalents. "
    "Rounded half up to whole cents. A price is never edited: a new price is a new version with a start date.",
    "Nieuwe tariefversie": "New tariff version", "Tabel": "Table", "Code": "Code", "Prijs (€)": "Price (€)",
    "Geldig vanaf": "Valid from", "Bron": "Source", "Versie toevoegen": "Add the version",
    "De lopende versie eindigt de dag vóór de nieuwe ingangsdatum.":
    "The running version ends the day before the new start date.",
    "Omschrijving": "Description", "Prijs": "Price", "Geldig van": "Valid from", "Geldig tot": "Valid to",
    "Oorspronkelijk": "Original", "Creditering": "Credit", "Herdeclaratie": "Rebill",
    "Concept": "Draft", "Vastgezet": "Locked", "Vervangen": "Superseded", "Geboekt": "Booked",
    "Consult op locatie": "Consult on site", "Consult op fysieke locatie": "Consult at a physical location",
    "valt in de DBC van het ziekenhuis": "falls within the hospital's DBC",
    "geen Nederlandse verzekeraar (geen UZOVI)": "no Dutch insurer (no UZOVI)",
    "{contact} ({act_class}) op {when}": "{contact} ({act_class}) on {when}",
    "{contact} ({act_class}) op {when} → {code}": "{contact} ({act_class}) on {when} → {code}",
    "Alleen triage, geen geleverd contact, op {when} → {code}": "Triage only, no delivered contact, on {when} → {code}",
    "Geen prestatie: {reason}": "No prestation: {reason}", "niet gedeclareerd: {reason}": "not claimed: {reason}",
    "ingetrokken": "withdrawn", "trekt {code} van {when} in": "cancels {code} of {when}",
    "geen contracttarief": "no contract tariff", "tarief {amount}": "tariff {amount}",
    "Alleen de geldende regel van een aanvraag kan worden gecorrigeerd; ververs de pagina.":
    "Only the standing line of a request can be corrected; refresh the page.",
    "Geef een reden voor de correctie.": "Give a reason for the correction.",
    "Kies: herdeclareren bij een andere verzekeraar, intrekken of later ontvangen gegevens toepassen.":
    "Choose: rebill to another insurer, withdraw, or apply data received later.",
    "Er zijn na het vastzetten geen nieuwe gegevens ontvangen.": "No new data arrived after the line locked.",
    "De regel staat al op naam van deze verzekeraar.": "The line is already for this insurer.",
    "Consult huisarts 5 tot 20 min": "GP consult 5 to 20 min", "Consult huisarts 20 min en langer":
    "GP consult 20 min or longer", "Visite huisarts korter dan 20 min": "GP home visit under 20 min",
    "Visite huisarts 20 min en langer": "GP home visit 20 min or longer",
    "Telefonisch consult (illustratief)": "Telephone consult (illustrative)",
    "SEH DBC-zorgproduct (illustratief)": "Emergency department DBC care product (illustrative)",
    "Uur wijkverpleging (illustratief)": "Hour of community nursing (illustrative)",
    "Toegerekend HAP-contact (illustratief)": "Allocated GP-post contact (illustrative)",
    # The evaluation page and its quarterly report.
    "Evaluatie experiment": "Evaluation of the experiment",
    "Evaluatie van het experiment integrale bekostiging": "Evaluation of the integrated-funding experiment",
    "Van": "From", "Tot en met": "To (inclusive)", "Scope": "Scope", "scope": "scope", "regio": "region",
    "Kwartaalrapport": "Quarterly report", "Experiment": "Experiment", "tot": "to", "gepland": "planned",
    "uiterste einde": "latest end", "verzekeraars": "insurers",
    "aantallen 1–4 getoond als <5, afgeleide aandelen weggelaten": "counts 1–4 shown as <5, shares derived "
    "from them left out", "laatst": "latest", "per maand": "per month", "norm": "target",
    "Doeltijd gehaald per urgentie (eerste geleverde contact op tijd)":
    "Target time met per urgency (first delivered contact in time)",
    "Doeltijd gehaald per urgentie per maand": "Target time met per urgency per month",
    "mediaan en 90e percentiel": "median and 90th percentile", "minuten": "minutes",
    "Integraal versus schaduw, cumulatief sinds de start": "Integrated versus shadow, cumulative since the start",
    "Integrale en schaduwkosten cumulatief": "Integrated and shadow cost, cumulative",
    "Prestatiemix per maand": "Prestation mix per month", "Per maand": "Per month", "Maand": "Month",
    "Aanvragen": "Requests", "Integraal": "Integrated", "Verschil": "Difference",
    "Buiten ziekenhuis": "Outside hospital", "Gekoppeld": "Linked", "Hertriage": "Re-triage",
    "Terug <72 u": "Back <72 h", "Inclusie": "Inclusion", "Triage p50/p90": "Triage p50/p90",
    "Contact p50/p90": "Contact p50/p90", "buiten experiment": "outside the experiment",
    "Doeltijd gehaald per urgentie": "Target time met per urgency",
    "Afgehandeld buiten het ziekenhuis": "Handled outside the hospital",
    "Contacten gekoppeld aan open aanvraag (dubbele triage voorkomen)":
    "Contacts linked to an open request (double triage avoided)", "Bewuste hertriage": "Deliberate re-triage",
    "Nieuwe acute aanvraag binnen 72 uur": "New acute request within 72 hours",
    "Inclusie (norm ≥ 95 %)": "Inclusion (target ≥ 95%)", "Minuten tot triage": "Minutes to triage",
    "Minuten tot eerste contact": "Minutes to first contact", "direct": "immediately", "≤ 15 min": "≤ 15 min",
    "≤ 60 min": "≤ 60 min", "≤ 3 uur": "≤ 3 hours", "≤ 24 uur": "≤ 24 hours",
    "experiment integrale bekostiging": "integrated-funding experiment",
    "experiment integrale bekostiging acute zorg": "integrated-funding experiment in acute care",
    "terug": "back", "Afdrukken / PDF": "Print / PDF", "t/m": "to", "Definities": "Definitions",
    "Aanvragen tellen in de maand van ontvangst (Europe/Amsterdam); kosten, prestaties en inclusie in de maand van de "
    "prestatiedatum, gelijk aan de verzekeraarsfeed. Percentielen volgens nearest rank. Bedragen in euro, tijden in "
    "minuten.": "Requests count in the month they were received (Europe/Amsterdam); cost, prestations and inclusion "
    "in the month of the prestation date, as in the insurer feed. Percentiles by nearest rank. Amounts in euro, "
    "times in minutes.",
    "Aantallen 1–4 zijn als <5 weergegeven en de daarvan afgeleide aandelen weggelaten.":
    "Counts 1–4 are shown as <5 and the shares derived from them left out.",
    # The case manager's console (coordination): worklists, search, a patient's page and timeline, the directory.
    "Terug naar de werklijsten": "Back to the worklists",
    "Werklijsten": "Worklists", "Patiënt zoeken": "Find a patient", "Sociale kaart": "Directory",
    "Casemanagement": "Case management", "Mijn patiënten": "My patients",
    "Nog geen patiënten; open een patiënt en kies ‘Ik ben casemanager’.":
    "No patients yet; open a patient and choose ‘I am the case manager’.",
    "Episode": "Episode", "Hoofdbehandelaar": "Lead practitioner", "Sinds": "Since",
    "Geen taken over hun streeftijd.": "No Tasks past their target time.",
    "Open taken in de regio": "Open Tasks in the region", "Uitvoerder": "Performer",
    "pseudoniem: technische referentie": "pseudonym: technical reference",
    "pseudoniem (technische referentie)": "pseudonym (technical reference)",
    "of": "or", "BSN": "BSN", "Zoeken": "Search",
    "Dit BSN is niet geldig (11-proef).": "This BSN is not valid (11-proof).",
    "Zoek op naam én geboortedatum (jjjj-mm-dd), of op BSN.":
    "Search by name and birth date (yyyy-mm-dd) together, or by BSN.",
    "Onbekende patiënt": "Unknown patient", "Patiënt (naam nog onbekend)": "Patient (name not known yet)",
    "Geslacht": "Gender", "Huisarts": "GP",
    "geen Nederlandse verzekeraar bekend": "no Dutch insurer known", "Acute aanvragen": "Acute requests",
    "Getrieerd": "Triaged", "casemanager": "case manager", "triagist": "triage nurse",
    "declaratiemedewerker": "billing officer", "beheerder": "administrator", "zorgaanbieder": "care provider",
    "evaluator": "evaluator", "coördinatie": "coordination", "schaduwdeclaratie": "shadow billing",
    "zorgteam": "care team",
    "Ik ben casemanager": "I am the case manager", "Overdracht": "Handover",
    "Hoofdbehandelaarschap overdragen aan": "Hand over the lead role to",
    "Overdracht voorstellen": "Propose the handover", "Overdragen": "Reassign",
    "Overdragen aan": "Reassign to", "Escaleren": "Escalate", "geëscaleerd": "escalated",
    "reden als gesloten op de streeftijd": "reason if closed at the due time",
    "Geen andere organisatie levert deze vervolgactie.": "No other organisation provides this follow-up action.",
    "Kies een organisatie uit de lijst.": "Choose an organisation from the list.",
    "{name} levert geen {action}; kies een organisatie die dat wel doet.":
    "{name} does not provide {action}; choose an organisation that does.",
    "{name} is gesloten op de streeftijd ({due}): geef een reden of kies een andere organisatie.":
    "{name} is closed at the due time ({due}): give a reason or choose another organisation.",
    "Tijdlijn": "Timeline", "Wanneer": "When", "Door": "By", "Toevoegen": "Add",
    "zonder klacht": "no complaint given", "Organisaties in de regio": "Organisations in the region",
    "Wat elke organisatie levert en wanneer ze open is, zoals beheer het aan de voordeur heeft ingesteld; "
    "coördinatie controleert overdrachten hieraan.": "What each organisation provides and when it is open, as the "
    "admin set it at the front door; coordination checks reassignments against it.",
    "Identificatie": "Identifier", "Levert": "Provides", "Open": "Open", "altijd": "always",
    "open": "open", "afgesloten": "closed", "voorgesteld": "proposed",
    "spoedpost (voordeur)": "emergency post (front door)", "huisartsenpraktijk": "GP practice",
    "ziekenhuis": "hospital", "wijkverpleging": "community nursing", "transferpunt": "transfer point",
    "zorgverzekeraar": "health insurer",
    "U0 reanimatie": "U0 resuscitation", "U1 levensbedreigend": "U1 life-threatening", "U2 spoed": "U2 emergency",
    "U3 dringend": "U3 urgent", "U4 niet dringend": "U4 not urgent", "U5 advies": "U5 advice",
    "acute zorg": "acute care",
    # Timeline tags and sentences.
    "verwijzing": "referral", "taak": "Task", "contact geleverd": "contact delivered", "overdracht": "handover",
    "notitie": "note", "gekoppeld contact": "linked contact", "escalatie": "escalation",
    "Op naam alleen wordt niet gezocht: vraag ook de geboortedatum, of zoek op BSN.":
    "A name alone is not searched: ask for the birth date too, or search by BSN.",
    "taak overgedragen": "Task reassigned", "overgedragen": "reassigned", "taak geëscaleerd bij": "Task escalated at",
    "acute aanvraag afgesloten": "acute request closed", "verwijzing ontvangen": "referral received",
    "zonder reden": "no reason given",
    "overdracht hoofdbehandelaarschap voorgesteld": "handover of the lead role proposed",
    "is casemanager": "is the case manager", "Urgentie en vervolgactie": "Urgency and follow-up action",
    "te triëren": "to triage", "getrieerd": "triaged",
    "morgen": "tomorrow", "gisteren": "yesterday", "routine": "routine", "spoed": "urgent",
    "zo snel mogelijk": "as soon as possible",
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
