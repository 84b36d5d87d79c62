"""A synthetic quarter of the demo region (October–December 2026) through the evaluation measures, every figure
checked against a value computed by hand below (not by the code under test).

Five requests a day (received in Amsterdam time; n days, E even days, O odd days; T1/T2/T0 days with d%3 = 1/2/0):

    slot 0  08:30 referral U3 home-visit, 9001, triaged +10, HH contact +120 (due +180, met) → VIS;
            day 7 the line is withdrawn; days d%5=0 one call was linked to it
    slot 1  08:00 phone U5 remote-advice, 9002, triaged +5, VR contact +20 (due next day, met) → ADV;
            closed 19:00; on even days the same patient comes back at 20:00 (slot 4): a 72-hour re-contact
    slot 2  10:00 walk-in U2 onsite-consult, 9001 on even / 9002 on odd days, triaged +2, AMB contact +45 on
            even days (due +60, met), +70 on odd days (missed) → CON; re-triaged on days d%10=0; day 1 two linked calls
    slot 3  11:00, by d%3: 1 → referral U1 hospital-referral 9002, triaged +1, no contact → delimited-dbc
                           2 → phone U4 community-nursing 9001, triaged +30, HH +600 (due +1440, met) → VIS
                           0 → walk-in U0 ambulance, no insurer, triaged +0, AMB +0 (due +0, met) → no-dutch-insurer
    slot 4  20:00, even days: phone U5 gp-office-hours 9002 (slot 1's patient), triaged +15, no contact → ADV
                   odd days: referral U3 rtp-placement 9001, triaged +20, HH +200 (due +180, missed) → VIS
    Every request closes 11 h after receipt (slot 1 at 19:00, before its patient's return at 20:00).

Prices: 9001 ADV/VIS/CON 3500/11000/7500; 9002 3600/11500/7800, from 16-11 3700/11800/8000; shadow 650/8200/1243.

October (n 31, E 15, O 16, T1 11, T2 10, T0 10): 155 requests; referral 31+11+16 = 58, phone 31+10+15 = 56,
walk-in 31+10 = 41; U0 10, U1 11, U2 31, U3 31+16 = 47, U4 10, U5 31+15 = 46. Priced: ADV 31+15 = 46 (9002),
VIS 30+10+16 = 56 (9001, day 7 withdrawn), CON 15 (9001) + 16 (9002) = 31.
9001: 56×11000 + 15×7500 = 616000 + 112500 = 728500; 9002: 46×3600 + 16×7800 = 165600 + 124800 = 290400;
integrated 1018900; shadow 46×650 + 56×8200 + 31×1243 = 29900 + 459200 + 38533 = 527633; difference 491267,
93.11 % (491267 / 527633 = 0.931078...). Eligible 155 − 11 − 10 = 134, included 133: inclusion 0.9925.
Outside hospital 144/155 = 0.9290; linked 6 + 2 = 8 of 163 contacts = 0.0491; re-triage 3/155 = 0.0194;
target met U0 10/10, U1 none, U2 15/31 = 0.4839, U3 31/47 = 0.6596, U4 10/10, U5 31/31;
72-hour returns 15/155 = 0.0968.
Minutes to triage (155 values: 0×10, 1×11, 2×31, 5×31, 10×31, 15×15, 20×16, 30×10): p50 = rank 78 → 5,
p90 = rank 140 → 20. Minutes to first contact (129 values: 0×10, 20×31, 45×15, 70×16, 120×31, 200×16,
600×10): p50 = rank 65 → 70, p90 = rank 117 → 200.

November (n 30, E 15, O 15, T1 T2 T0 10): 150 requests; referral 55, phone 55, walk-in 40. ADV 30 + 15 = 45
(9002: days 1–15 slot 1 15 + even 7 = 22 at 3600, days 16–30 15 + 8 = 23 at 3700), VIS 29 + 10 + 15 = 54,
CON 15 + 15 (9002 odd: 8 at 7800, 7 at 8000). 9001: 54×11000 + 15×7500 = 706500; 9002: 79200 + 85100 +
62400 + 56000 = 282700; integrated 989200; shadow 45×650 + 54×8200 + 30×1243 = 29250 + 442800 + 37290 =
509340; difference 479860. Cumulative: 2008100 against 1036973. Inclusion 129/130 = 0.9923; returns 15/150 = 0.1;
outside hospital 140/150 = 0.9333; linked 8/158 = 0.0506; re-triage 3/150 = 0.02.

December is October at the new 9002 prices: 9002 46×3700 + 16×8000 = 298200, integrated 1026700; cumulative
3034800 against 1564606.

Quarter totals: 460 requests, ADV 137, VIS 166, CON 92, re-triage 9/460 = 0.0196; minutes to triage over 460
values (0×30, 1×32, 2×92, 5×92, 10×92, 15×45, 20×47, 30×30): p50 rank 230 → 5, p90 rank 414 → 20.

Insurer 9001 in October: 31 + 15 + 10 + 16 = 72 requests; VIS 56, CON 15; integrated 728500; shadow 459200 +
18645 = 477845; inclusion 71/72 = 0.9861; with a reference price of 9000 per request: 71×9000 = 639000,
difference 89500. Its one withdrawn line and three re-triages are small cells: "<5" and null for an insurer.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.billing_shadow.domain.evaluation import (
    Experiment,
    RequestRecord,
    evaluation,
    months_between,
    nearest_rank,
    suppress,
)
from services.billing_shadow.domain.ledger import Entry, LineValues

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
PRICES = {"9001": {"ADV": 3500, "VIS": 11000, "CON": 7500}}
SHADOW = {"ADV": 650, "VIS": 8200, "CON": 1243}
EXPERIMENT = Experiment(start=date(2026, 1, 1), insurers=("9001", "9002"), reference_price_cents={"9001": 9000})


def _price(uzovi: str, code: str, day: date) -> int:
    if uzovi == "9002":
        return ({"ADV": 3600, "VIS": 11500, "CON": 7800} if day < date(2026, 11, 16)
                else {"ADV": 3700, "VIS": 11800, "CON": 8000})[code]
    return PRICES[uzovi][code]


def quarter() -> tuple[list[RequestRecord], list[Entry]]:
    records: list[RequestRecord] = []
    entries: list[Entry] = []

    def add(n: str, *, at: datetime, pseudonym: str, uzovi: str | None, channel: str, urgency: str,
            disposition: str, triage: int, due: datetime | None, contact: int | None, code: str | None,
            exclusion: str | None = None, retriaged: bool = False, linked: int = 0) -> None:
        received = at.astimezone(UTC)
        records.append(RequestRecord(
            request_id=n, pseudonym=pseudonym, uzovi=uzovi, channel=channel, urgency=urgency,
            disposition=disposition, received_at=received, triaged_at=received + timedelta(minutes=triage),
            due_at=due, retriaged=retriaged, linked_contacts=linked,
            first_contact_at=None if contact is None else received + timedelta(minutes=contact),
            closed_at=received + timedelta(hours=11)))
        day = at.date()
        priced = code is not None and exclusion is None
        entries.append(Entry(n, "original", 1, LineValues(
            code=code, exclusion_reason=exclusion, uzovi=uzovi, period=f"{day:%Y-%m}", service_date=day,
            unit_price_cents=_price(uzovi, code, day) if priced and uzovi else None, tariff_source="test",  # type: ignore[arg-type]
            shadow_amount_cents=SHADOW[code] if code else 0, explanation="test")))

    for month, days in ((10, 31), (11, 30), (12, 31)):
        for d in range(1, days + 1):
            def at(hour: int, minute: int = 0, d: int = d, month: int = month) -> datetime:
                return datetime(2026, month, d, hour, minute, tzinfo=AMSTERDAM)
            key = f"{month}-{d}"
            even = d % 2 == 0
            add(f"{key}-0", at=at(8, 30), pseudonym=f"p0-{key}", uzovi="9001", channel="referral", urgency="U3",
                disposition="home-visit", triage=10, due=at(11, 30), contact=120, code="VIS",
                exclusion="withdrawn" if d == 7 else None, linked=1 if d % 5 == 0 else 0)
            add(f"{key}-1", at=at(8), pseudonym=f"p1-{key}", uzovi="9002", channel="phone", urgency="U5",
                disposition="remote-advice", triage=5, due=at(8) + timedelta(days=1), contact=20, code="ADV")
            add(f"{key}-2", at=at(10), pseudonym=f"p2-{key}", uzovi="9001" if even else "9002", channel="walk-in",
                urgency="U2", disposition="onsite-consult", triage=2, due=at(11), contact=45 if even else 70,
                code="CON", retriaged=d % 10 == 0, linked=2 if d == 1 else 0)
            if d % 3 == 1:
                add(f"{key}-3", at=at(11), pseudonym=f"p3-{key}", uzovi="9002", channel="referral", urgency="U1",
                    disposition="hospital-referral", triage=1, due=at(11, 15), contact=None, code=None,
                    exclusion="delimited-dbc")
            elif d % 3 == 2:
                add(f"{key}-3", at=at(11), pseudonym=f"p3-{key}", uzovi="9001", channel="phone", urgency="U4",
                    disposition="community-nursing", triage=30, due=at(11) + timedelta(days=1), contact=600,
                    code="VIS")
            else:
                add(f"{key}-3", at=at(11), pseudonym=f"p3-{key}", uzovi=None, channel="walk-in", urgency="U0",
                    disposition="ambulance", triage=0, due=at(11), contact=0, code="ADV",
                    exclusion="no-dutch-insurer")
            if even:
                add(f"{key}-4", at=at(20), pseudonym=f"p1-{key}", uzovi="9002", channel="phone", urgency="U5",
                    disposition="gp-office-hours", triage=15, due=at(20) + timedelta(days=1), contact=None,
                    code="ADV")
            else:
                add(f"{key}-4", at=at(20), pseudonym=f"p4-{key}", uzovi="9001", channel="referral", urgency="U3",
                    disposition="rtp-placement", triage=20, due=at(23), contact=200, code="VIS")
    return records, entries


@pytest.fixture(scope="module")
def region() -> dict:
    records, entries = quarter()
    return evaluation(months_between("2026-10", "2026-12"), requests=records, entries=entries, effective=entries,
                      experiment=EXPERIMENT)


def test_volumes_of_each_month(region: dict) -> None:
    october, november, december = region["months"]
    assert [m["period"] for m in region["months"]] == ["2026-10", "2026-11", "2026-12"]
    assert all(m["in_experiment"] for m in region["months"])
    assert [m["requests"] for m in region["months"]] == [155, 150, 155]
    assert october["by_channel"] == {"referral": 58, "phone": 56, "walk-in": 41}
    assert november["by_channel"] == {"referral": 55, "phone": 55, "walk-in": 40}
    assert october["by_urgency"] == {"U0": 10, "U1": 11, "U2": 31, "U3": 47, "U4": 10, "U5": 46}
    assert october["by_disposition"] == {"remote-advice": 31, "home-visit": 31, "onsite-consult": 31,
                                         "community-nursing": 10, "gp-office-hours": 15, "hospital-referral": 11,
                                         "rtp-placement": 16, "ambulance": 10}
    assert october["prestations"] == {"ADV": 46, "VIS": 56, "CON": 31}
    assert november["prestations"] == {"ADV": 45, "VIS": 54, "CON": 30}
    assert december["prestations"] == october["prestations"]
    assert october["exclusions"] == {"delimited-dbc": 11, "no-dutch-insurer": 10, "no-contract-tariff": 0,
                                     "withdrawn": 1}
    assert october["linked_contacts"] == 8


def test_cost_against_shadow_with_the_price_change(region: dict) -> None:
    october, november, december = region["months"]
    assert (october["integrated_cents"], october["shadow_cents"], october["difference_cents"]) == \
        (1018900, 527633, 491267)
    assert october["difference_pct"] == 93.11
    assert (november["integrated_cents"], november["shadow_cents"], november["difference_cents"]) == \
        (989200, 509340, 479860)
    assert december["integrated_cents"] == 1026700
    assert october["cost_by_code"]["ADV"] == {"quantity": 46, "integrated_cents": 165600, "shadow_cents": 29900,
                                              "integrated_per_prestation_cents": 3600,
                                              "shadow_per_prestation_cents": 650}
    assert november["cost_by_code"]["ADV"]["integrated_cents"] == 79200 + 85100
    assert november["cost_by_code"]["CON"]["integrated_cents"] == 112500 + 62400 + 56000
    assert [m["cumulative"]["integrated_cents"] for m in region["months"]] == [1018900, 2008100, 3034800]
    assert [m["cumulative"]["shadow_cents"] for m in region["months"]] == [527633, 1036973, 1564606]
    assert october["integrated_per_prestation_cents"] == 7661  # 1018900 / 133 = 7660.9
    assert october["reference_cents"] is None  # 9002 has no reference price


def test_the_goals(region: dict) -> None:
    october, november, _ = region["months"]
    m = october["measures"]
    assert m["outside_hospital_share"] == 0.929
    assert m["linked_contact_share"] == 0.0491
    assert m["retriage_share"] == 0.0194
    assert m["target_met_share"] == {"U0": 1.0, "U1": None, "U2": 0.4839, "U3": 0.6596, "U4": 1.0, "U5": 1.0}
    assert m["minutes_to_triage"] == {"p50": 5.0, "p90": 20.0}
    assert m["minutes_to_first_contact"] == {"p50": 70.0, "p90": 200.0}
    assert m["recontact_72h_share"] == 0.0968
    assert m["inclusion_rate"] == 0.9925
    n = november["measures"]
    assert (n["outside_hospital_share"], n["linked_contact_share"], n["retriage_share"]) == (0.9333, 0.0506, 0.02)
    assert (n["recontact_72h_share"], n["inclusion_rate"]) == (0.1, 0.9923)
    assert n["target_met_share"]["U2"] == 0.5
    assert n["minutes_to_triage"] == {"p50": 5.0, "p90": 20.0}
    assert n["minutes_to_first_contact"] == {"p50": 70.0, "p90": 200.0}


def test_quarter_totals(region: dict) -> None:
    totals = region["totals"]
    assert totals["requests"] == 460
    assert totals["prestations"] == {"ADV": 137, "VIS": 166, "CON": 92}
    assert totals["integrated_cents"] == 1018900 + 989200 + 1026700
    assert totals["measures"]["retriage_share"] == 0.0196
    assert totals["measures"]["minutes_to_triage"] == {"p50": 5.0, "p90": 20.0}
    assert totals["cumulative"]["integrated_cents"] == 3034800


def test_one_insurer_and_its_reference_price() -> None:
    records, entries = quarter()
    doc = evaluation(["2026-10"], requests=records, entries=entries, effective=entries, experiment=EXPERIMENT,
                     uzovi="9001")
    october = doc["months"][0]
    assert doc["scope"] == "9001"
    assert october["requests"] == 72
    assert october["prestations"] == {"ADV": 0, "VIS": 56, "CON": 15}
    assert (october["integrated_cents"], october["shadow_cents"]) == (728500, 477845)
    assert october["measures"]["inclusion_rate"] == 0.9861
    assert (october["reference_cents"], october["reference_difference_cents"]) == (639000, 89500)


def test_small_cells_are_hidden_from_what_insurers_and_evaluators_receive() -> None:
    records, entries = quarter()
    exact = evaluation(["2026-10"], requests=records, entries=entries, effective=entries, experiment=EXPERIMENT,
                       uzovi="9001")
    hidden = suppress(exact)["months"][0]
    assert exact["months"][0]["exclusions"]["withdrawn"] == 1
    assert hidden["exclusions"] == {"delimited-dbc": 0, "no-dutch-insurer": 0, "no-contract-tariff": 0,
                                    "withdrawn": "<5"}
    assert exact["months"][0]["measures"]["retriage_share"] == 0.0417  # 3 / 72
    assert hidden["measures"]["retriage_share"] is None
    assert hidden["ratios"]["retriage_share"] == {"numerator": "<5", "denominator": 72}
    # Large cells stay as they are, zero is not a small cell.
    assert hidden["requests"] == 72 and hidden["by_urgency"]["U0"] == 0
    assert hidden["measures"]["inclusion_rate"] == 0.9861
    assert hidden["integrated_cents"] == 728500
    # A month of 1..4 prestations shows no amounts, nor the running total that would give them away.
    small = suppress(evaluation(["2026-10"], requests=records[:3], entries=entries[:3], effective=entries[:3],
                                experiment=EXPERIMENT))["months"][0]
    assert small["prestations"] == {"ADV": "<5", "VIS": "<5", "CON": "<5"}
    assert small["integrated_cents"] is None and small["cumulative"]["integrated_cents"] is None
    assert small["cost_by_code"]["VIS"]["integrated_cents"] is None


def test_nearest_rank_percentiles() -> None:
    assert nearest_rank([15, 20, 35, 40, 50], 30) == 20  # rank ceil(1.5) = 2
    assert nearest_rank([15, 20, 35, 40, 50], 100) == 50
    assert nearest_rank([3, 1, 2], 50) == 2
    assert nearest_rank([], 50) is None


@pytest.mark.parametrize(("first", "last", "message"), [
    ("2026-13", "2026-12", "not a month"), ("2026-1", "2026-12", "not a month"),
    ("2026-12", "2026-10", "after"), ("2020-01", "2025-01", "at most 60")])
def test_bad_ranges_are_refused(first: str, last: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        months_between(first, last)


def test_months_outside_the_experiment_are_marked_and_an_extension_is_at_most_five_years() -> None:
    assert not EXPERIMENT.in_experiment("2025-12")
    assert EXPERIMENT.in_experiment("2028-12") and not EXPERIMENT.in_experiment("2029-01")
    assert Experiment(start=date(2026, 1, 1), insurers=(), end=date(2031, 1, 1)).in_experiment("2030-12")
    with pytest.raises(ValueError, match="at most 5 years"):
        Experiment(start=date(2026, 1, 1), insurers=(), end=date(2031, 2, 1))
