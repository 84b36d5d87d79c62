"""The triage console's words for what it shows: channels and statuses in words, due times with their day, ages,
how to reach the patient, the referrer by name, and the contact form's refusals in Dutch (English when chosen)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

from services.triage import accounts
from services.triage.console import forms, present
from services.triage.console.views import ACCOUNT_REFUSED
from shared import console
from shared.fhir import Issue
from shared.i18n import ENGLISH, translator

PLACEHOLDER = re.compile(r"\{\w+\}")
# 30 November 2026, 23:30 in Amsterdam (CET, UTC+1).
LATE_EVENING = datetime(2026, 11, 30, 22, 30, tzinfo=UTC)


def test_a_due_time_today_is_the_time_only_and_other_days_carry_the_day() -> None:
    assert present.due_label(datetime(2026, 11, 30, 22, 45, tzinfo=UTC), now=LATE_EVENING) == "23:45"
    # 00:10 UTC on 1 December is 01:10 in Amsterdam: tomorrow for the night shift.
    assert present.due_label(datetime(2026, 12, 1, 0, 10, tzinfo=UTC), now=LATE_EVENING) == "morgen 01:10"
    assert present.due_label(datetime(2026, 12, 1, 0, 10), now=LATE_EVENING) == "morgen 01:10"  # stored naive UTC
    assert present.due_label(datetime(2026, 12, 2, 7, 0, tzinfo=UTC), now=LATE_EVENING) == "02-12 08:00"
    assert present.due_label(datetime(2026, 11, 29, 22, 50, tzinfo=UTC), now=LATE_EVENING) == "gisteren 23:50"
    assert present.due_label(datetime(2026, 12, 1, 0, 10, tzinfo=UTC), now=LATE_EVENING,
                             translate=translator("en")) == "tomorrow 01:10"
    assert present.due_label(None) == ""


def test_the_day_of_a_due_time_follows_amsterdam_across_the_summer_time_change() -> None:
    # 28 March 2027, 00:30 UTC is 01:30 CET; 23:30 UTC that day is 01:30 CEST the next morning.
    now = datetime(2027, 3, 28, 0, 30, tzinfo=UTC)
    assert present.due_label(datetime(2027, 3, 28, 21, 59, tzinfo=UTC), now=now) == "23:59"
    assert present.due_label(datetime(2027, 3, 28, 22, 0, tzinfo=UTC), now=now) == "morgen 00:00"


def test_age_is_completed_years_and_never_guessed() -> None:
    assert present.age_in_years("1950-12-01", today=date(2026, 11, 30)) == 75
    assert present.age_in_years("1950-11-30", today=date(2026, 11, 30)) == 76
    assert present.age_in_years("1950", today=date(2026, 11, 30)) is None
    assert present.age_in_years("2030-01-01", today=date(2026, 11, 30)) is None
    assert present.age_in_years("1950-02-30", today=date(2026, 11, 30)) is None
    assert present.age_in_years(None) is None
    assert console.birth_date("1950-01-31") == "31-01-1950" and console.birth_date("1950") == "1950"


def test_how_to_reach_the_patient_comes_from_the_stored_patient() -> None:
    patient = {"resourceType": "Patient", "telecom": [{"system": "email", "value": "x@example.org"},
                                                      {"system": "phone", "value": "020-1234567"}],
               "address": [{"use": "old", "line": ["Oud 1"]}, {"use": "home", "line": ["Dorpsstraat 1"],
                                                                "postalCode": "1234 AB", "city": "Ergens"},
                           {"use": "temp", "line": ["Logeeradres 5"], "city": "Elders"}],
               "contact": [{"relationship": [{"text": "relative"}], "telecom": [{"system": "phone",
                                                                                  "value": "06-12345678"}]}]}
    assert present.contact_details(patient) == {"address": "Logeeradres 5, Elders", "phones": ["020-1234567"],
                                                "contacts": [("relative", "06-12345678")]}
    assert present.contact_details(None) == {"address": "", "phones": [], "contacts": []}
    filled = present.form_fill(patient, bsn="999990032", name="Ingrid Jansen", birth_date="1950-01-01",
                               uzovi="9001")
    assert filled == {"bsn": "999990032", "name": "Ingrid Jansen", "birth_date": "1950-01-01", "uzovi": "9001",
                      "address_line": "Logeeradres 5", "postal_code": "", "city": "Elders",
                      "callback_phone": "020-1234567"}
    assert present.form_fill(None, bsn=None, name="", birth_date=None, uzovi=None)["bsn"] == ""


def test_the_referrer_is_named_never_shown_as_an_identifier() -> None:
    stored = {"Organization/o1": {"resourceType": "Organization",
                                  "identifier": [{"system": "http://fhir.nl/fhir/NamingSystem/agb-z",
                                                  "value": "01000001"}]},
              "Practitioner/p1": {"resourceType": "Practitioner", "name": [{"given": ["Anna"], "family": "Bakker"}]},
              "PractitionerRole/r1": {"resourceType": "PractitionerRole",
                                      "practitioner": {"reference": "Practitioner/p1"},
                                      "organization": {"reference": "Organization/o1"}},
              "Organization/o2": {"resourceType": "Organization", "name": "Huisartsenpost Noord"}}
    assert present.reference_name({"reference": "Organization/o1"}, stored.get) == "Huisartsenpraktijk De Linde"
    assert present.reference_name({"reference": "Organization/o2"}, stored.get) == "Huisartsenpost Noord"
    assert present.reference_name({"reference": "PractitionerRole/r1"}, stored.get) == \
        "Anna Bakker, Huisartsenpraktijk De Linde"
    assert present.reference_name({"identifier": {"system": "http://fhir.nl/fhir/NamingSystem/ura",
                                                  "value": "90000010"}}, stored.get) == "Ziekenhuis Zuidrand"
    assert present.reference_name({"identifier": {"system": "urn:x", "value": "1"}}, stored.get) == ""
    assert present.reference_name({"reference": "Organization/gone", "display": "Praktijk Zuid"},
                                  stored.get) == "Praktijk Zuid"
    assert present.reference_name(None, stored.get) == ""


def test_the_contact_form_says_what_is_wrong_in_dutch() -> None:
    today = date(2026, 11, 30)
    fine = {"bsn": "", "birth_date": "", "uzovi": "", "callback_phone": "", "complaint": "Buikpijn"}
    assert forms.contact_problems(**fine, today=today) == []
    assert forms.contact_problems(**{**fine, "bsn": "999990033"}, today=today) == [forms.BSN_INVALID]
    assert forms.contact_problems(**{**fine, "bsn": "999990032", "callback_phone": "06 (12) 34-56 78"},
                                  today=today) == []
    assert forms.contact_problems(**{**fine, "callback_phone": "bel mij"}, today=today) == [forms.PHONE_INVALID]
    assert forms.contact_problems(**{**fine, "birth_date": "2027-01-01", "uzovi": "90", "complaint": " "},
                                  today=today) == [forms.BIRTH_DATE_INVALID, forms.UZOVI_INVALID,
                                                   forms.COMPLAINT_MISSING]
    refused = forms.refusal_messages([Issue("error", "value", "BSN fails the 11-proof", ("patient.bsn",)),
                                      Issue("error", "processing", "something else")])
    assert refused == [(forms.BSN_INVALID, ""), (forms.NOT_RECORDED, "something else")]


def test_a_refused_triage_is_said_in_the_nurses_words() -> None:
    refused = forms.triage_refusal_messages([
        Issue("error", "required", "urgency must be chosen", ("urgency",)),
        Issue("error", "required", "assigned_organization must be chosen", ("assigned_organization",))])
    assert refused == [("Kies de urgentie.", ""), ("Kies de organisatie.", "")]
    assert forms.triage_refusal_messages([Issue("error", "business-rule", "X does not provide Y",
                                                ("assigned_organization",))]) == [
        (forms.TRIAGE_REFUSALS[("business-rule", "assigned_organization")], "")]
    assert forms.triage_refusal_messages([Issue("error", "business-rule", "X is closed", ("closed_reason",)),
                                          Issue("error", "conflict", "already triaged")]) == [
        (forms.TRIAGE_REFUSALS[("business-rule", "closed_reason")], ""), (forms.TRIAGE_CONFLICT, "")]
    assert forms.triage_refusal_messages([Issue("error", "value", "hours wrong", ("x",))]) == [
        (forms.TRIAGE_NOT_RECORDED, "hours wrong")]


def test_the_browsers_pattern_for_a_callback_number_matches_what_the_service_accepts() -> None:
    template = Path("services/triage/console/templates/contact.html").read_text()
    pattern = re.search(r'name="callback_phone"[^>]*pattern="([^"]+)"', template)
    assert pattern is not None
    # Chromium compiles `pattern` with the /v flag: brackets and dashes in a class must be escaped there.
    assert re.search(r"\[[^\]]*(?<!\\)[()]", pattern.group(1)) is None
    for number in ("06-12345678", "+31 20 123 4567", "020 (123) 45-67"):
        assert re.fullmatch(pattern.group(1), number) and forms.PHONE.fullmatch(number)
    assert not re.fullmatch(pattern.group(1), "bel mij")


def test_every_new_word_and_message_has_english_with_the_same_placeholders() -> None:
    texts = [*present.CHANNEL_LABELS.values(), *present.STATUS_LABELS.values(), *present.TASK_STATUS_LABELS.values(),
             *present.CALLER_LABELS.values(), *present.PRIORITY_LABELS.values(),
             *(w for w in present.DAY_WORDS.values() if w), *forms.MESSAGES, *console.LOGIN_PROBLEMS,
             ACCOUNT_REFUSED, accounts.AccountMissing.dutch, "Formulier niet verwerkt", "De gekozen organisatie",
             *re.findall(r"""\bt\(["']([^"']+)["']\)""", Path("shared/templates/login_problem.html").read_text())]
    assert sorted(set(texts) - ENGLISH.keys()) == []
    for text in texts:
        assert sorted(PLACEHOLDER.findall(ENGLISH[text])) == sorted(PLACEHOLDER.findall(text)), text


def test_a_refused_account_change_carries_its_dutch_text_with_the_same_placeholders_in_english() -> None:
    source = Path("services/triage/accounts.py").read_text()
    dutch = re.findall(r'AccountRefused\(f?"[^"]*",\s*((?:"[^"]*"\s*)+)', source)
    texts = ["".join(re.findall(r'"([^"]*)"', d)) for d in dutch]
    assert len(texts) >= 6 and "U kunt uw eigen account niet uitschakelen." in texts
    for text in texts:
        assert text in ENGLISH, text
        assert sorted(PLACEHOLDER.findall(ENGLISH[text])) == sorted(PLACEHOLDER.findall(text)), text
    refused = accounts.AccountRefused("the username x is taken", "De gebruikersnaam {username} is al in gebruik.",
                                      username="x")
    assert str(refused) == "the username x is taken" and refused.values == {"username": "x"}
