"""The admin's audit page in words: what the search field means (name, BSN or pseudonym, the BSN pseudonymised and
not kept), and each AuditEvent as a row in Amsterdam time with action, outcome and purpose in Dutch or English."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared import audit
from shared.audit_views import ACTION_WORDS, OUTCOME_WORDS, PURPOSE_WORDS, KnownPatient, abbreviate, audit_row, classify
from shared.auth import Caller
from shared.i18n import ENGLISH
from shared.identifiers import pseudonym

KEY = b"a-test-pseudonym-key"
BSN = "999990007"  # passes the 11-proof
ADMIN = Caller(subject="beheer", kind="user", org="http://fhir.nl/fhir/NamingSystem/ura|90000001",
               scopes=frozenset(), role="beheer")


def test_a_bsn_becomes_its_keyed_pseudonym_and_the_query_keeps_no_bsn() -> None:
    for typed in (BSN, " 9999.90.007 ", "999 990 007"):
        query = classify(typed, key=KEY)
        assert query.kind == "bsn" and query.pseudonym == pseudonym(BSN, KEY) and query.error is None
        assert BSN not in repr(query)


@pytest.mark.parametrize("typed", ["999990008", "12345678", "1234567890"])
def test_a_number_that_is_no_valid_bsn_is_refused_in_words(typed: str) -> None:
    query = classify(typed, key=KEY)
    assert query.kind == "bsn" and query.pseudonym is None and "elfproef" in (query.error or "")


def test_a_pseudonym_with_or_without_its_system_and_a_name_and_nothing() -> None:
    p = "p-" + "0123456789abcdef" * 2
    assert classify(p, key=KEY).pseudonym == p
    assert classify(f"https://regiozorg.example/fhir/NamingSystem/patient-pseudonym|{p.upper()}", key=KEY) \
        .pseudonym == p
    assert classify("  Aaltje Bakker ", key=KEY) == classify("Aaltje Bakker", key=KEY)
    assert classify("Aaltje Bakker", key=KEY).name == "Aaltje Bakker"
    assert classify("A", key=KEY).error == "Typ minstens twee letters van de naam."
    assert classify("", key=KEY).kind == "all" and classify(None, key=KEY).kind == "all"


def test_every_word_of_the_page_has_english() -> None:
    words = [*ACTION_WORDS.values(), *OUTCOME_WORDS.values(), *PURPOSE_WORDS.values()]
    assert sorted(set(words) - ENGLISH.keys()) == []
    assert set(ACTION_WORDS) == set(audit.ACTIONS)  # every subtype this product records has its word


def _event(**overrides: object) -> dict[str, object]:
    event = audit.audit_event(record_id="e1", recorded=datetime(2026, 11, 30, 23, 30, 5, tzinfo=UTC),
                              service="triage", caller=ADMIN, subtype="search", outcome=audit.OUTCOME_SUCCESS,
                              patient="p-" + "a" * 32, entity="console audit log: search by bsn",
                              purpose=audit.PURPOSE_OPERATIONS, description=None)
    return {**event, **overrides}


def test_a_row_is_in_amsterdam_time_with_words_in_dutch() -> None:
    row = audit_row(_event(), lang="nl")
    assert row["time"] == "01-12-2026 00:30:05"  # 23:30 UTC is past midnight in Amsterdam (CET)
    assert (row["action"], row["outcome"], row["purpose"]) == ("Gezocht", "Gelukt", "Bedrijfsvoering zorg")
    assert row["who"] == "beheer" and row["role"] == "beheer" and row["on_behalf"] == "Spoedzorg Regio Demo"
    assert row["patient"] == "p-" + "a" * 32 and row["patient_short"] == "p-aaaaaaaa…" and row["patient_name"] is None
    assert row["what"] == "console audit log: search by bsn" and not row["failed"]


def test_a_row_in_english_with_the_name_of_a_patient_the_search_found() -> None:
    refused = _event(subtype=[{"code": "read"}], outcome="4", outcomeDesc="403: not yours")
    refused["agent"][0]["purposeOfUse"] = [{"coding": [{"code": "TREAT"}]}]  # type: ignore[index]
    row = audit_row(refused, lang="en", names={"p-" + "a" * 32: KnownPatient("p-" + "a" * 32, "Aaltje Bakker")})
    assert (row["action"], row["outcome"], row["purpose"]) == ("Read", "Refused", "Treatment")
    assert row["failed"] and row["detail"] == "403: not yours" and row["patient_name"] == "Aaltje Bakker"


def test_summer_time_and_codes_nobody_has_a_word_for() -> None:
    odd = _event(recorded="2026-07-01T10:00:00+00:00", subtype=[{"code": "vread"}], outcome="12")
    odd["agent"][0]["purposeOfUse"] = [{"coding": [{"code": "XYZ"}]}]  # type: ignore[index]
    row = audit_row(odd, lang="nl")
    assert row["time"] == "01-07-2026 12:00:00"  # CEST
    assert (row["action"], row["outcome"], row["purpose"]) == ("vread", "Ernstige fout", "XYZ")
    assert abbreviate("short") == "short"
