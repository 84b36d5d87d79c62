"""Who reads which evaluation scope, and whether small cells are hidden from them (SPEC §12, §10)."""

from __future__ import annotations

import pytest

from services.billing_shadow.api.evaluation import scope_for
from shared.auth import Caller
from shared.console import ROLE_SCOPES
from shared.fhir import FhirError

OFFICER = Caller("declaratie", "user", "http://fhir.nl/fhir/NamingSystem/ura|90000001", ROLE_SCOPES["declaratie"])
ADMIN = Caller("beheer", "user", "http://fhir.nl/fhir/NamingSystem/ura|90000001", ROLE_SCOPES["beheer"])
EVALUATOR = Caller("evaluator", "user", "http://fhir.nl/fhir/NamingSystem/ura|90000001", ROLE_SCOPES["evaluator"])
NOORD = Caller("insurer-9001", "client", "http://fhir.nl/fhir/NamingSystem/uzovi|9001", frozenset({"feed.read"}))
TRIAGIST = Caller("triagist", "user", "http://fhir.nl/fhir/NamingSystem/ura|90000001", ROLE_SCOPES["triagist"])


def test_the_billing_officer_and_admin_read_everything_exactly() -> None:
    assert scope_for(OFFICER, None) == (None, False)
    assert scope_for(OFFICER, "9002") == ("9002", False)
    assert scope_for(ADMIN, "9001") == ("9001", False)


def test_an_insurer_reads_its_own_uzovi_suppressed() -> None:
    assert scope_for(NOORD, None) == ("9001", True)
    assert scope_for(NOORD, "9001") == ("9001", True)
    with pytest.raises(FhirError) as refused:
        scope_for(NOORD, "9002")
    assert refused.value.status_code == 403


def test_an_evaluator_reads_the_region_suppressed_and_no_single_insurer() -> None:
    assert scope_for(EVALUATOR, None) == (None, True)
    with pytest.raises(FhirError) as refused:
        scope_for(EVALUATOR, "9001")
    assert refused.value.status_code == 403


@pytest.mark.parametrize(("caller", "uzovi", "status"), [(TRIAGIST, None, 403), (OFFICER, "90", 400),
                                                         (NOORD, "abcd", 400)])
def test_others_and_malformed_uzovi_are_refused(caller: Caller, uzovi: str | None, status: int) -> None:
    with pytest.raises(FhirError) as refused:
        scope_for(caller, uzovi)
    assert refused.value.status_code == status
