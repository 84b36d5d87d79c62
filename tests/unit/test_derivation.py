"""Unit and property tests for prestation derivation in the billing shadow."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.billing_shadow.domain.derivation import Contact, Derivation, RequestFacts, derive

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
TRIAGED = T0 - timedelta(minutes=20)


BASE = RequestFacts(request_id="req-1", disposition="home-visit", uzovi="3311", triaged_at=TRIAGED, closed=True)


def facts(**overrides: Any) -> RequestFacts:
    return replace(BASE, **overrides)


def contact(contact_id: str, act_class: str, minutes: int = 0) -> Contact:
    return Contact(contact_id, act_class, T0 + timedelta(minutes=minutes))


def derived(request: RequestFacts, contacts: list[Contact]) -> Derivation:
    result = derive(request, contacts)
    assert result is not None
    return result


def test_open_request_is_not_derived() -> None:
    assert derive(facts(closed=False), [contact("enc-1", "AMB")]) is None


def test_triage_only_request_is_advice_on_the_triage_time() -> None:
    result = derived(facts(), [])
    assert (result.code, result.service_date, result.contacts, result.exclusion_reason) == ("ADV", TRIAGED, (), None)
    assert result.rule.startswith("triage only")


def test_home_visit_outranks_remote_advice_and_dates_on_the_visit() -> None:
    result = derived(facts(), [contact("enc-1", "VR", 0), contact("enc-2", "HH", 30)])
    assert (result.code, result.service_date) == ("VIS", T0 + timedelta(minutes=30))
    assert result.contacts == ("enc-1", "enc-2")
    assert result.rule == (
        "most intensive delivered contact: HH (enc-2) → VIS; contacts considered: enc-1 VR, enc-2 HH"
    )


def test_on_site_consult_outranks_home_visit() -> None:
    assert derived(facts(), [contact("enc-1", "HH"), contact("enc-2", "AMB", 60)]).code == "CON"


def test_tie_between_equal_contacts_goes_to_the_earliest_then_lowest_id() -> None:
    early_b, early_a, late = contact("enc-b", "HH", 0), contact("enc-a", "HH", 0), contact("enc-0", "HH", 10)
    result = derived(facts(), [late, early_b, early_a])
    assert "(enc-a)" in result.rule and result.service_date == T0


def test_duplicated_contact_counts_once() -> None:
    result = derived(facts(), [contact("enc-1", "VR"), contact("enc-1", "VR")])
    assert result.contacts == ("enc-1",)


def test_duplicate_id_with_conflicting_details_is_refused() -> None:
    with pytest.raises(ValueError, match="enc-1 appears twice"):
        derive(facts(), [contact("enc-1", "VR"), contact("enc-1", "AMB")])


def test_unknown_act_class_is_ignored_and_mentioned() -> None:
    result = derived(facts(), [contact("enc-1", "VR"), contact("enc-2", "IMP")])
    assert (result.code, result.contacts) == ("ADV", ("enc-1",))
    assert "ignored unknown classes: enc-2 IMP" in result.rule


def test_only_unknown_act_classes_fall_back_to_triage_only() -> None:
    result = derived(facts(), [contact("enc-1", "EMER")])
    assert (result.code, result.service_date, result.contacts) == ("ADV", TRIAGED, ())


@pytest.mark.parametrize("request_facts", [facts(disposition="hospital-referral"), facts(open_dbc=True)])
def test_delimited_dbc_gets_no_code(request_facts: RequestFacts) -> None:
    result = derived(request_facts, [contact("enc-1", "AMB")])
    assert (result.code, result.exclusion_reason, result.service_date) == (None, "delimited-dbc", None)
    assert result.contacts == ("enc-1",) and result.rule.startswith("delimited DBC")


@pytest.mark.parametrize("uzovi", [None, ""])
def test_missing_insurer_still_derives_the_code_but_excludes_it(uzovi: str | None) -> None:
    result = derived(facts(uzovi=uzovi), [contact("enc-1", "HH")])
    assert (result.code, result.exclusion_reason) == ("VIS", "no-dutch-insurer")
    assert "no Dutch insurer" in result.rule


def test_naive_contact_start_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Contact("enc-1", "VR", datetime(2024, 3, 1, 8, 0))


# Independent restatement of the rule, used as the oracle for the property tests.
EXPECTED_CODE = {"AMB": "CON", "HH": "VIS", "VR": "ADV"}
RANK = {"CON": 0, "VIS": 1, "ADV": 2}
Expected = tuple[str | None, str | None, datetime | None, tuple[str, ...]]


def expected(request: RequestFacts, contacts: list[Contact]) -> Expected:
    unique = {c.contact_id: c for c in contacts}.values()
    known = [c for c in unique if c.act_class in EXPECTED_CODE]
    ids = tuple(sorted(c.contact_id for c in known))
    if request.disposition == "hospital-referral" or request.open_dbc:
        return None, "delimited-dbc", None, ids
    exclusion = None if request.uzovi else "no-dutch-insurer"
    if not known:
        return "ADV", exclusion, request.triaged_at, ids
    best_rank = min(RANK[EXPECTED_CODE[c.act_class]] for c in known)
    top = [c for c in known if RANK[EXPECTED_CODE[c.act_class]] == best_rank]
    best = sorted(top, key=lambda c: (c.start, c.contact_id))
    return EXPECTED_CODE[best[0].act_class], exclusion, best[0].start, ids


@st.composite
def contact_lists(draw: st.DrawFn) -> list[Contact]:
    ids = draw(st.lists(st.sampled_from([f"enc-{n}" for n in range(8)]), unique=True, max_size=6))
    unique = [
        Contact(i, draw(st.sampled_from(["VR", "HH", "AMB", "IMP"])), T0 + timedelta(minutes=draw(st.integers(0, 3))))
        for i in ids
    ]
    duplicates = draw(st.lists(st.sampled_from(unique), max_size=4)) if unique else []
    return draw(st.permutations(unique + duplicates))


request_facts = st.builds(
    RequestFacts,
    request_id=st.just("req-1"),
    disposition=st.sampled_from([None, "home-visit", "hospital-referral", "advice"]),
    uzovi=st.sampled_from([None, "3311"]),
    triaged_at=st.sampled_from([None, TRIAGED]),
    closed=st.just(True),
    open_dbc=st.booleans(),
)


@given(request_facts, contact_lists(), st.randoms(use_true_random=False))
def test_derivation_follows_the_rule_for_any_contacts_in_any_order(
    request: RequestFacts, contacts: list[Contact], rng: random.Random
) -> None:
    result = derived(request, contacts)
    shuffled = list(contacts)
    rng.shuffle(shuffled)
    assert derived(request, shuffled) == result
    assert (result.code, result.exclusion_reason, result.service_date, result.contacts) == expected(request, contacts)


@given(request_facts, contact_lists())
def test_delimited_requests_never_get_a_code(request: RequestFacts, contacts: list[Contact]) -> None:
    for candidate in (replace(request, disposition="hospital-referral"), replace(request, open_dbc=True)):
        result = derived(candidate, contacts)
        assert result.code is None and result.exclusion_reason == "delimited-dbc"


@given(request_facts, contact_lists())
def test_open_requests_are_never_derived(request: RequestFacts, contacts: list[Contact]) -> None:
    assert derive(replace(request, closed=False), contacts) is None
