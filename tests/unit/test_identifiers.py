"""Unit tests for Dutch identifier validation, pseudonymisation and organisation parsing."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.identifiers import (
    AGB_SYSTEM,
    BSN_SYSTEM,
    PSEUDONYM_SYSTEM,
    URA_SYSTEM,
    UZOVI_SYSTEM,
    is_valid_agb,
    is_valid_bsn,
    is_valid_ura,
    is_valid_uzovi,
    org_token,
    parse_org,
    pseudonym,
    pseudonym_for_unidentified,
    validate_identifier,
)

KEY = b"test-key-not-for-production"


def eleven_proof(digits: str) -> bool:
    return (sum(int(d) * (9 - i) for i, d in enumerate(digits[:8])) - int(digits[8])) % 11 == 0


@pytest.mark.parametrize("bsn", ["111222333", "999911120", "123456782"])
def test_bsn_passing_eleven_proof_is_accepted(bsn: str) -> None:
    assert is_valid_bsn(bsn)
    assert validate_identifier(BSN_SYSTEM, bsn) is None


def test_bsn_failing_eleven_proof_is_refused() -> None:
    assert not is_valid_bsn("123456789")
    assert validate_identifier(BSN_SYSTEM, "123456789") == "BSN fails the 11-proof"


def test_all_zero_bsn_is_refused_although_it_sums_to_zero() -> None:
    assert not is_valid_bsn("000000000")


@pytest.mark.parametrize("bsn", ["11122233", "1112223330", " 111222333", "111222333\n", "11122233a", "١١١٢٢٢٣٣٣", ""])
def test_bsn_that_is_not_nine_ascii_digits_is_refused(bsn: str) -> None:
    assert not is_valid_bsn(bsn)
    assert validate_identifier(BSN_SYSTEM, bsn) == "BSN must be 9 digits"


@given(st.from_regex(r"[0-9]{9}", fullmatch=True))
def test_bsn_validity_matches_the_eleven_proof_for_any_nine_digits(bsn: str) -> None:
    assert is_valid_bsn(bsn) == (eleven_proof(bsn) and bsn != "000000000")


@given(st.from_regex(r"[0-9]{9}", fullmatch=True))
def test_bsn_error_message_never_contains_the_bsn(bsn: str) -> None:
    message = validate_identifier(BSN_SYSTEM, bsn)
    assert message is None or bsn not in message


@pytest.mark.parametrize(
    ("check", "valid", "invalid"),
    [
        (is_valid_agb, ["01000001", "12345678"], ["0100001", "010000011", "0100000a", ""]),
        (is_valid_ura, ["1", "90000010", "1234"], ["", "123456789", "9000001x"]),
        (is_valid_uzovi, ["3311", "0101"], ["331", "33111", "33a1", ""]),
    ],
)
def test_agb_ura_and_uzovi_lengths_are_enforced(
    check: Callable[[str], bool], valid: list[str], invalid: list[str]
) -> None:
    assert all(check(v) for v in valid)
    assert not any(check(v) for v in invalid)


@pytest.mark.parametrize(
    ("system", "value", "fragment"),
    [(AGB_SYSTEM, "0100001", "AGB code"), (URA_SYSTEM, "123456789", "URA number"), (UZOVI_SYSTEM, "331", "UZOVI code")],
)
def test_invalid_organisation_identifiers_get_a_readable_message(system: str, value: str, fragment: str) -> None:
    message = validate_identifier(system, value)
    assert message is not None
    assert fragment in message and value in message


def test_unknown_system_is_not_validated() -> None:
    assert validate_identifier("urn:example:whatever", "anything at all") is None
    assert validate_identifier(PSEUDONYM_SYSTEM, "p-whatever") is None


def test_pseudonym_is_prefixed_truncated_hmac_sha256_of_the_bsn() -> None:
    expected = "p-" + hmac.new(KEY, b"111222333", hashlib.sha256).hexdigest()[:32]
    assert pseudonym("111222333", KEY) == expected
    assert len(expected) == 34


def test_pseudonym_is_stable_and_depends_on_bsn_and_key() -> None:
    assert pseudonym("111222333", KEY) == pseudonym("111222333", KEY)
    assert pseudonym("111222333", KEY) != pseudonym("999911120", KEY)
    assert pseudonym("111222333", KEY) != pseudonym("111222333", b"another-key")


def test_pseudonym_does_not_contain_the_bsn() -> None:
    assert "111222333" not in pseudonym("111222333", KEY)


def test_unidentified_patient_pseudonym_hashes_the_prefixed_request_id() -> None:
    expected = "p-" + hmac.new(KEY, b"unidentified:req-42", hashlib.sha256).hexdigest()[:32]
    assert pseudonym_for_unidentified("req-42", KEY) == expected
    assert pseudonym_for_unidentified("req-42", KEY) != pseudonym("req-42", KEY)


def test_pseudonym_with_empty_key_is_refused() -> None:
    with pytest.raises(ValueError, match="key"):
        pseudonym("111222333", b"")
    with pytest.raises(ValueError, match="key"):
        pseudonym_for_unidentified("req-1", b"")


def test_org_token_joins_system_and_value_with_a_pipe() -> None:
    assert org_token(AGB_SYSTEM, "01000001") == f"{AGB_SYSTEM}|01000001"


def test_org_token_refuses_invalid_values_and_non_organisation_systems() -> None:
    with pytest.raises(ValueError, match="AGB code"):
        org_token(AGB_SYSTEM, "123")
    with pytest.raises(ValueError, match="not an organisation"):
        org_token(BSN_SYSTEM, "111222333")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"{AGB_SYSTEM}|01000001", (AGB_SYSTEM, "01000001")),
        (f"{URA_SYSTEM}|90000010", (URA_SYSTEM, "90000010")),
        (f"{UZOVI_SYSTEM}|3311", (UZOVI_SYSTEM, "3311")),
        ("AGB 01000001", (AGB_SYSTEM, "01000001")),
        ("URA 90000010", (URA_SYSTEM, "90000010")),
        ("agb:01000001", (AGB_SYSTEM, "01000001")),
        ("ura:90000010", (URA_SYSTEM, "90000010")),
        ("  AGB 01000001  ", (AGB_SYSTEM, "01000001")),
        ("01000001", (AGB_SYSTEM, "01000001")),
        ("90000010", (URA_SYSTEM, "90000010")),
        ("02000001", (URA_SYSTEM, "02000001")),
        ("0100001", (URA_SYSTEM, "0100001")),
        ("123", (URA_SYSTEM, "123")),
    ],
)
def test_parse_org_reads_every_accepted_form(text: str, expected: tuple[str, str]) -> None:
    assert parse_org(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hospital",
        "AGB 0100001",
        "agb:abc",
        "ura:123456789",
        "123456789",
        "AGB",
        "uzovi:3311",
        f"{BSN_SYSTEM}|111222333",
        f"{AGB_SYSTEM}|",
        "|01000001",
    ],
)
def test_parse_org_refuses_unknown_forms_and_invalid_values(text: str) -> None:
    with pytest.raises(ValueError):
        parse_org(text)


@given(st.sampled_from([AGB_SYSTEM, URA_SYSTEM]), st.from_regex(r"[0-9]{8}", fullmatch=True))
def test_org_token_round_trips_through_parse_org(system: str, value: str) -> None:
    assert parse_org(org_token(system, value)) == (system, value)
