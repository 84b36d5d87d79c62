"""Reading a FHIR Patient as a case manager or nurse needs it: name, age on a day, address, phone, GP, insurer."""

from __future__ import annotations

from datetime import date

import pytest

from services.coordination.domain.person import age_on, contact_phone, display_name, one_line_address, person_of
from shared.identifiers import AGB_SYSTEM, BSN_SYSTEM, PSEUDONYM_SYSTEM, UZOVI_SYSTEM


@pytest.mark.parametrize(("birth_date", "today", "age"), [
    ("1941-03-12", date(2026, 3, 11), 84),  # the day before the birthday
    ("1941-03-12", date(2026, 3, 12), 85),
    ("2024-02-29", date(2025, 2, 28), 0),  # a leap-day baby is one on 1 March
    ("2024-02-29", date(2025, 3, 1), 1),
    ("1950", date(2026, 6, 1), 75),  # a year only: counted from its last day, never overstated
    ("1950-07", date(2026, 7, 30), 75),
    ("1950-07", date(2026, 7, 31), 76),
    ("2030-01-01", date(2026, 1, 1), None),  # not born yet: a typing error, no negative age
    ("", date(2026, 1, 1), None),
    ("not a date", date(2026, 1, 1), None),
])
def test_age_is_whole_years_on_the_given_day(birth_date: str, today: date, age: int | None) -> None:
    assert age_on(birth_date, today) == age


def test_the_official_name_is_shown_as_written_else_given_and_family_names() -> None:
    assert display_name({"name": [{"use": "usual", "text": "Jantje"}, {"use": "official", "family": "Vries",
                                                                         "given": ["Jan", "Pieter"]}]}) == \
        "Jan Pieter Vries"
    assert display_name({"name": [{"text": "Aaltje Bakker"}]}) == "Aaltje Bakker"
    assert display_name({}) == ""


def test_the_patients_own_mobile_is_the_contact_phone_else_a_contact_persons() -> None:
    patient = {"telecom": [{"system": "email", "value": "jan@example.nl"},
                           {"system": "phone", "value": "0201234567", "use": "home"},
                           {"system": "phone", "value": "0612345678", "use": "mobile"},
                           {"system": "phone", "value": "0699999999", "use": "mobile", "period": {"end": "2020"}}]}
    assert contact_phone(patient) == "0612345678"
    relative = {"contact": [{"relationship": [{"text": "relative"}],
                             "telecom": [{"system": "phone", "value": "0687654321"}]}]}
    assert contact_phone(relative) == "0687654321"
    assert contact_phone({}) is None


def test_the_home_address_is_one_line_and_an_old_one_is_skipped() -> None:
    patient = {"address": [{"use": "old", "line": ["Oude Gracht 1"], "city": "Utrecht"},
                           {"use": "work", "line": ["Kantoorweg 3"], "city": "Oost"},
                           {"use": "home", "line": ["Dorpsstraat 1", "bis"], "postalCode": "1234 AB", "city": "Oost"}]}
    assert one_line_address(patient) == "Dorpsstraat 1, bis, 1234 AB Oost"
    assert one_line_address({"address": [{"text": "Woonboot bij brug 4"}]}) == "Woonboot bij brug 4"
    assert one_line_address({}) is None


def test_a_patient_reads_with_bsn_pseudonym_gp_and_insurer() -> None:
    patient = {"resourceType": "Patient", "id": "pat-1",
               "identifier": [{"system": PSEUDONYM_SYSTEM, "value": "p-1"},
                              {"system": BSN_SYSTEM, "value": "999990007"}],
               "name": [{"family": "de Vries", "given": ["Jan"]}], "birthDate": "1941-03-12", "gender": "male",
               "generalPractitioner": [{"identifier": {"system": AGB_SYSTEM, "value": "01000001"},
                                        "display": "Huisartsenpraktijk De Linde"}],
               "extension": [{"url": "https://regiozorg.example/fhir/StructureDefinition/insurer",
                              "valueReference": {"identifier": {"system": UZOVI_SYSTEM, "value": "9001"},
                                                 "display": "Zorgverzekeraar Noord"}}]}
    person = person_of(patient, today=date(2026, 11, 30))
    assert (person.name, person.age, person.gender, person.bsn, person.pseudonym) == (
        "Jan de Vries", 85, "male", "999990007", "p-1")
    assert person.general_practitioner == "Huisartsenpraktijk De Linde (AGB-Z 01000001)"
    assert person.insurer == "Zorgverzekeraar Noord (UZOVI 9001)"
    assert person.as_json()["address"] is None and person.as_json()["phone"] is None
