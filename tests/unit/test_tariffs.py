"""Unit tests for tariff selection, Amsterdam service days and cent rounding."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.billing_shadow.domain.tariffs import (
    AMSTERDAM,
    Tariff,
    period_of,
    round_cents,
    select_tariff,
    service_day,
)

OLD = Tariff("3311", "VIS", 12_000, date(2023, 1, 1), date(2023, 12, 31), "NZa 2023")
NEW = Tariff("3311", "VIS", 12_550, date(2024, 1, 1), None, "NZa 2024")
OTHER_CODE = Tariff("3311", "CON", 9_000, date(2023, 1, 1), None, "NZa 2023")
OTHER_KEY = Tariff("shadow", "VIS", 1, date(2023, 1, 1), None, "illustrative")
TABLE = [NEW, OTHER_KEY, OLD, OTHER_CODE]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_last_day_of_old_price_still_selects_the_old_tariff() -> None:
    assert select_tariff(TABLE, key="3311", code="VIS", on=date(2023, 12, 31)) == OLD


def test_day_the_price_changes_selects_the_new_tariff() -> None:
    assert select_tariff(TABLE, key="3311", code="VIS", on=date(2024, 1, 1)) == NEW


def test_open_ended_tariff_stays_valid_indefinitely() -> None:
    assert select_tariff(TABLE, key="3311", code="VIS", on=date(2099, 12, 31)) == NEW


def test_no_tariff_before_the_first_validity_date() -> None:
    assert select_tariff(TABLE, key="3311", code="VIS", on=date(2022, 12, 31)) is None


def test_tariff_is_selected_by_key_and_code() -> None:
    assert select_tariff(TABLE, key="shadow", code="VIS", on=date(2024, 6, 1)) == OTHER_KEY
    assert select_tariff(TABLE, key="3311", code="CON", on=date(2024, 6, 1)) == OTHER_CODE
    assert select_tariff(TABLE, key="9999", code="VIS", on=date(2024, 6, 1)) is None


def test_overlapping_tariffs_on_the_requested_day_are_refused() -> None:
    overlapping = Tariff("3311", "VIS", 13_000, date(2023, 12, 31), None, "typo")
    with pytest.raises(ValueError, match="overlapping tariffs for 3311/VIS on 2023-12-31"):
        select_tariff([*TABLE, overlapping], key="3311", code="VIS", on=date(2023, 12, 31))


def test_tariff_ending_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match="ends"):
        Tariff("3311", "VIS", 1, date(2024, 2, 1), date(2024, 1, 31), "typo")


def test_single_day_tariff_is_valid_on_that_day_only() -> None:
    one_day = Tariff("3311", "ADV", 500, date(2024, 2, 29), date(2024, 2, 29), "illustrative")
    assert select_tariff([one_day], key="3311", code="ADV", on=date(2024, 2, 29)) == one_day
    assert select_tariff([one_day], key="3311", code="ADV", on=date(2024, 3, 1)) is None


@pytest.mark.parametrize(
    ("moment", "day", "period"),
    [
        # Winter time (UTC+1): 23:30 UTC on the last day of a month is already the next month in Amsterdam.
        (utc(2024, 1, 31, 23, 30), date(2024, 2, 1), "2024-02"),
        (utc(2023, 12, 31, 23, 30), date(2024, 1, 1), "2024-01"),
        (utc(2024, 1, 31, 22, 59), date(2024, 1, 31), "2024-01"),
        # Summer time (UTC+2): the local day starts at 22:00 UTC.
        (utc(2024, 6, 30, 21, 59), date(2024, 6, 30), "2024-06"),
        (utc(2024, 6, 30, 22, 0), date(2024, 7, 1), "2024-07"),
        # Spring forward on 2024-03-31: the month's last evening is already on UTC+2.
        (utc(2024, 3, 31, 21, 59), date(2024, 3, 31), "2024-03"),
        (utc(2024, 3, 31, 22, 30), date(2024, 4, 1), "2024-04"),
        (utc(2024, 3, 30, 23, 30), date(2024, 3, 31), "2024-03"),
        # Fall back on 2024-10-27: the month ends on UTC+1 again.
        (utc(2024, 10, 31, 22, 59), date(2024, 10, 31), "2024-10"),
        (utc(2024, 10, 31, 23, 0), date(2024, 11, 1), "2024-11"),
        (utc(2024, 10, 27, 0, 30), date(2024, 10, 27), "2024-10"),
        (utc(2024, 10, 27, 1, 30), date(2024, 10, 27), "2024-10"),
        # Leap day.
        (utc(2024, 2, 29, 23, 0), date(2024, 3, 1), "2024-03"),
    ],
)
def test_service_day_and_period_follow_the_amsterdam_calendar(moment: datetime, day: date, period: str) -> None:
    assert service_day(moment) == day
    assert period_of(moment) == period


def test_moment_in_another_offset_is_converted_not_truncated() -> None:
    new_york_evening = datetime(2024, 1, 31, 20, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert service_day(new_york_evening) == date(2024, 2, 1)


def test_amsterdam_moment_keeps_its_own_date() -> None:
    assert service_day(datetime(2024, 1, 31, 23, 59, tzinfo=AMSTERDAM)) == date(2024, 1, 31)


def test_naive_moment_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        service_day(datetime(2024, 1, 31, 23, 30))
    with pytest.raises(ValueError, match="timezone-aware"):
        period_of(datetime(2024, 1, 31, 23, 30))


@pytest.mark.parametrize(
    ("amount", "cents"),
    [
        (Decimal("1234.5"), 1235),
        (Decimal("1234.49"), 1234),
        (Decimal("1234.4999999"), 1234),
        (Decimal("0.5"), 1),
        (Decimal("-0.5"), -1),
        (Decimal("-2.5"), -3),
        (Decimal("2.5"), 3),
        (Decimal("7"), 7),
        (Decimal("12550") * Decimal("0.85"), 10668),
    ],
)
def test_round_cents_rounds_half_up_away_from_zero(amount: Decimal, cents: int) -> None:
    assert round_cents(amount) == cents


def test_round_cents_refuses_floats_and_non_finite_amounts() -> None:
    with pytest.raises(TypeError, match="Decimal"):
        round_cents(0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        round_cents(Decimal("NaN"))
    with pytest.raises(ValueError, match="finite"):
        round_cents(Decimal("Infinity"))


@given(st.integers(-10**9, 10**9), st.integers(0, 99))
def test_round_cents_moves_at_most_half_a_cent(whole: int, hundredths: int) -> None:
    amount = Decimal(whole) + Decimal(hundredths) / 100
    assert abs(Decimal(round_cents(amount)) - amount) <= Decimal("0.5")


def test_a_new_tariff_version_closes_the_running_one_the_day_before_and_never_edits_a_price() -> None:
    from services.billing_shadow.domain.tariffs import close_for_new_version

    running = Tariff("9001", "VIS", 11000, date(2026, 1, 1), None, "2026")
    closed = close_for_new_version([running], key="9001", code="VIS", valid_from=date(2027, 1, 1),
                                   today=date(2026, 11, 30))
    assert closed == Tariff("9001", "VIS", 11000, date(2026, 1, 1), date(2026, 12, 31), "2026")
    assert close_for_new_version([running], key="9001", code="VIS", valid_from=date(2026, 11, 30),
                                 today=date(2026, 11, 30)).valid_to == date(2026, 11, 29)
    ended = Tariff("9001", "VIS", 11000, date(2026, 1, 1), date(2026, 6, 30), "2026")
    assert close_for_new_version([ended], key="9001", code="VIS", valid_from=date(2027, 1, 1),
                                 today=date(2026, 11, 30)) is None
    with pytest.raises(ValueError, match="vandaag of later"):
        close_for_new_version([running], key="9001", code="VIS", valid_from=date(2026, 11, 29),
                              today=date(2026, 11, 30))
    planned = Tariff("9001", "VIS", 12000, date(2027, 1, 1), None, "2027")
    with pytest.raises(ValueError, match="01-01-2027"):
        close_for_new_version([running, planned], key="9001", code="VIS", valid_from=date(2026, 12, 15),
                              today=date(2026, 11, 30))
