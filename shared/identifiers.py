"""Validate, pseudonymise and parse the Dutch identifiers (BSN, AGB, URA, UZOVI) Regiozorg exchanges."""

from __future__ import annotations

import hashlib
import hmac
import re

BSN_SYSTEM = "http://fhir.nl/fhir/NamingSystem/bsn"
AGB_SYSTEM = "http://fhir.nl/fhir/NamingSystem/agb-z"
URA_SYSTEM = "http://fhir.nl/fhir/NamingSystem/ura"
UZOVI_SYSTEM = "http://fhir.nl/fhir/NamingSystem/uzovi"
PSEUDONYM_SYSTEM = "https://regiozorg.example/fhir/NamingSystem/patient-pseudonym"

# [0-9] rather than \d or str.isdigit(): those accept non-ASCII digits such as "٣".
_BSN = re.compile(r"[0-9]{9}")
_AGB = re.compile(r"[0-9]{8}")
_URA = re.compile(r"[0-9]{1,8}")
_UZOVI = re.compile(r"[0-9]{4}")
_PREFIXED_ORG = re.compile(r"(agb|ura)(?::| +)(\S+)", re.IGNORECASE)
_ORG_SYSTEMS = {AGB_SYSTEM: "AGB code", URA_SYSTEM: "URA number", UZOVI_SYSTEM: "UZOVI code"}


def _matches(pattern: re.Pattern[str], value: object) -> bool:
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def _passes_eleven_proof(digits: str) -> bool:
    weighted = sum(int(d) * w for d, w in zip(digits, range(9, 1, -1), strict=False)) - int(digits[8])
    return weighted % 11 == 0 and digits != "000000000"


def is_valid_bsn(value: str) -> bool:
    """True for exactly 9 ASCII digits that pass the 11-proof and are not all zeros."""
    return _matches(_BSN, value) and _passes_eleven_proof(value)


def is_valid_agb(value: str) -> bool:
    """True for an AGB code: exactly 8 digits."""
    return _matches(_AGB, value)


def is_valid_ura(value: str) -> bool:
    """True for a URA number: 1 to 8 digits."""
    return _matches(_URA, value)


def is_valid_uzovi(value: str) -> bool:
    """True for a UZOVI code: exactly 4 digits."""
    return _matches(_UZOVI, value)


def validate_identifier(system: str, value: str) -> str | None:
    """Return an English error message for an invalid identifier, or None if valid or the system is unknown."""
    if system == BSN_SYSTEM:
        # The BSN itself is never echoed: messages end up in logs and API responses.
        if not _matches(_BSN, value):
            return "BSN must be 9 digits"
        return None if _passes_eleven_proof(value) else "BSN fails the 11-proof"
    if system == AGB_SYSTEM and not is_valid_agb(value):
        return f"AGB code {value!r} must be exactly 8 digits"
    if system == URA_SYSTEM and not is_valid_ura(value):
        return f"URA number {value!r} must be 1 to 8 digits"
    if system == UZOVI_SYSTEM and not is_valid_uzovi(value):
        return f"UZOVI code {value!r} must be exactly 4 digits"
    return None


def searched_pseudonym(value: str) -> str | None:
    """A patient as a search parameter names it: `<pseudonym>` or `<pseudonym system>|<pseudonym>`; the pseudonym,
    or None for another system (which matches nothing)."""
    system, _, key = value.rpartition("|")
    return key or None if system in ("", PSEUDONYM_SYSTEM) else None


def _keyed_hash(message: str, key: bytes) -> str:
    # An empty key would reduce the pseudonym to a plain hash, reversible by hashing every possible BSN.
    if not key:
        raise ValueError("a pseudonymisation key is required")
    return "p-" + hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def pseudonym(bsn: str, key: bytes) -> str:
    """Return the patient pseudonym for a BSN: "p-" plus the first 32 hex chars of HMAC-SHA256(key, bsn)."""
    return _keyed_hash(bsn, key)


def pseudonym_for_unidentified(request_id: str, key: bytes) -> str:
    """Return a pseudonym for a patient without BSN, keyed on the request instead."""
    # The prefix keeps this space disjoint from BSN pseudonyms, since a BSN never contains a colon.
    return _keyed_hash("unidentified:" + request_id, key)


def _checked_org(system: str, value: str) -> tuple[str, str]:
    label = _ORG_SYSTEMS.get(system)
    if label is None:
        raise ValueError(f"{system!r} is not an organisation identifier system (expected AGB, URA or UZOVI)")
    error = validate_identifier(system, value)
    if error is not None:
        raise ValueError(error)
    return system, value


def org_token(system: str, value: str) -> str:
    """Return the canonical "system|value" token for a valid AGB, URA or UZOVI organisation identifier."""
    system, value = _checked_org(system, value)
    return f"{system}|{value}"


def parse_org(text: str) -> tuple[str, str]:
    """Parse "system|value", "AGB 01000001", "ura:90000010" or bare digits into (system, value).

    Bare digits are an AGB code when they are 8 digits starting with "01", otherwise a URA number.
    Raises ValueError for any other form or an invalid value.
    """
    candidate = text.strip()
    if "|" in candidate:
        system, _, value = candidate.partition("|")
        return _checked_org(system, value)
    prefixed = _PREFIXED_ORG.fullmatch(candidate)
    if prefixed is not None:
        system = AGB_SYSTEM if prefixed.group(1).lower() == "agb" else URA_SYSTEM
        return _checked_org(system, prefixed.group(2))
    if _matches(_URA, candidate):
        is_agb = len(candidate) == 8 and candidate.startswith("01")
        return _checked_org(AGB_SYSTEM if is_agb else URA_SYSTEM, candidate)
    raise ValueError(
        f"cannot read {text!r} as an organisation: use 'system|value', 'AGB 01000001', 'ura:90000010' or digits"
    )
