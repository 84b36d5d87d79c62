"""Money for Dutch readers, the console's CSV for Dutch Excel and its XLSX, and derivations in words."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime
from types import SimpleNamespace

import pytest
from openpyxl import load_workbook

from services.billing_shadow.console.formats import (
    contact_words,
    euro,
    exclusion_words,
    explain,
    feed_csv_dutch,
    feed_xlsx,
    kind_words,
    line_status,
    parse_euros,
    percent,
    signed_percent,
)
from services.billing_shadow.service import feed_csv

NBSP = "\u00a0"
FEED = {"uzovi": "9001", "period": "2026-11", "revision": 4,
        "lines": [{"code": "VIS", "quantity": 2, "unit_price_cents": 11000, "amount_cents": 22000,
                   "shadow_amount_cents": 5754},
                  {"code": "ADV", "quantity": 1, "unit_price_cents": 3550, "amount_cents": 3550,
                   "shadow_amount_cents": 650}],
        "totals": {"quantity": 3, "amount_cents": 25550, "shadow_amount_cents": 6404}}


@pytest.mark.parametrize(("cents", "text"), [(11000, "€ 110,00"), (5, "€ 0,05"), (123456789, "€ 1.234.567,89"),
                                             (-3550, "−€ 35,50"), (0, "€ 0,00")])
def test_money_reads_as_dutch_staff_write_it_and_does_not_wrap(cents: int, text: str) -> None:
    assert euro(cents) == text.replace(" ", NBSP)


@pytest.mark.parametrize(("typed", "cents"), [("110,00", 11000), ("95", 9500), ("87,5", 8750), (" € 1,05 ", 105)])
def test_a_price_typed_with_a_comma_becomes_cents(typed: str, cents: int) -> None:
    assert parse_euros(typed) == cents


@pytest.mark.parametrize("typed", ["110.00", "1.100,00", "abc", "", "1,005", "-5,00", "0,00", "1e3"])
def test_a_price_that_is_not_a_positive_amount_with_a_comma_is_refused_in_dutch(typed: str) -> None:
    with pytest.raises(ValueError, match="prijs|Prijs"):
        parse_euros(typed)


def test_the_console_csv_opens_in_columns_in_dutch_excel_and_the_api_csv_is_unchanged() -> None:
    text = feed_csv_dutch(FEED)
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert rows[0][:4] == ["UZOVI", "Periode", "Revisie", "Prestatie"] and len(rows) == 4
    assert rows[1] == ["9001", "2026-11", "4", "VIS", "Visite aan huis", "2", "110,00", "220,00", "57,54"]
    assert rows[3] == ["9001", "2026-11", "4", "Totaal", "", "3", "", "255,50", "64,04"]
    assert text.endswith("\r\n") and "." not in "".join(rows[1][6:])
    # The feed API's machine CSV keeps commas and cents.
    assert feed_csv(FEED).splitlines()[1] == "9001,2026-11,4,VIS,2,11000,22000,5754"


def test_the_xlsx_holds_the_amounts_as_euro_numbers() -> None:
    book = load_workbook(io.BytesIO(feed_xlsx(FEED)))
    sheet = book.active
    assert sheet.title == "Feed 9001 2026-11"
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][3] == "Prestatie" and len(rows) == 4
    assert rows[1][3:] == ("VIS", "Visite aan huis", 2, 110, 220, 57.54)
    assert rows[3][3] == "Totaal" and rows[3][6] is None and rows[3][7] == pytest.approx(255.5)
    assert "€" in sheet["G2"].number_format


def _line(**values):  # type: ignore[no-untyped-def]
    base = {"kind": "original", "code": "VIS", "exclusion_reason": None, "unit_price_cents": 11000,
            "service_date": date(2026, 11, 30),
            "explanation": "most intensive delivered contact: HH (enc-1) → VIS; contacts considered: enc-1 HH; "
                           "priced 11000 cents (demo, valid from 2026-01-01)"}
    return SimpleNamespace(**{**base, **values})


def test_a_derivation_reads_in_dutch_words_with_the_local_time_of_the_decisive_contact() -> None:
    starts = {"enc-1": datetime(2026, 11, 30, 20, 10, tzinfo=UTC)}
    assert explain(_line(), starts) == "Visite aan huis (HH) op 30-11 21:10 → VIS · tarief € 110,00".replace(
        "€ ", f"€{NBSP}")
    triage_only = _line(code="ADV", unit_price_cents=3500, explanation="triage only: no delivered contacts → ADV")
    assert explain(triage_only, {}).startswith("Alleen triage, geen geleverd contact, op 30-11 → ADV")
    delimited = _line(code=None, exclusion_reason="delimited-dbc", unit_price_cents=None,
                      explanation="delimited DBC (hospital referral): no prestation")
    assert explain(delimited, {}) == "Geen prestatie: valt in de DBC van het ziekenhuis"
    credit = _line(kind="credit", exclusion_reason="no-dutch-insurer")
    assert explain(credit, starts).startswith("Creditering · Visite aan huis (HH)")
    assert explain(credit, starts).endswith("niet gedeclareerd: geen Nederlandse verzekeraar (geen UZOVI)")


@pytest.mark.parametrize(("cents", "text"), [(11000, "€110.00"), (5, "€0.05"), (123456789, "€1,234,567.89"),
                                             (-3550, "−€35.50")])
def test_money_in_english_has_no_space_and_a_decimal_point(cents: int, text: str) -> None:
    assert euro(cents, "en") == text


def test_shares_read_with_a_decimal_comma_in_dutch_and_a_point_in_english() -> None:
    assert percent(0.975) == f"97,5{NBSP}%" and percent(0.95, 0, "en") == "95%"
    assert signed_percent(-12.34) == f"−12,3{NBSP}%" and signed_percent(4.0, "en") == "+4.0%"


def test_line_kinds_and_statuses_in_words_in_both_languages() -> None:
    assert [kind_words(k) for k in ("original", "credit", "rebill")] == ["Oorspronkelijk", "Creditering",
                                                                       "Herdeclaratie"]
    assert [kind_words(k, "en") for k in ("original", "credit", "rebill")] == ["Original", "Credit", "Rebill"]
    assert exclusion_words("delimited-dbc") == "valt in de DBC van het ziekenhuis"
    assert exclusion_words("no-dutch-insurer", "en") == "no Dutch insurer (no UZOVI)" and exclusion_words(None) == ""
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    draft = _line(id="l1", locks_at=datetime(2026, 12, 1, tzinfo=UTC))
    locked = _line(id="l1", locks_at=datetime(2026, 11, 29))  # naive from SQLite: UTC
    assert line_status(draft, standing_id="l1", now=now) == "Concept"
    assert line_status(locked, standing_id="l1", now=now, lang="en") == "Locked"
    assert line_status(_line(id="l0", locks_at=None), standing_id="l1", now=now) == "Vervangen"
    assert line_status(_line(id="l2", kind="credit", locks_at=None), standing_id="l1", now=now, lang="en") == "Booked"


ENGLISH_WORDS = re.compile(r"\b(original|credit|rebill|on|tariff|home visit|triage only|not claimed|no prestation)\b",
                           re.IGNORECASE)
DUTCH_WORDS = re.compile(r"\b(oorspronkelijk|creditering|herdeclaratie|op|tarief|visite aan huis|alleen triage|"
                         r"niet gedeclareerd|geen prestatie)\b", re.IGNORECASE)
RAW = re.compile(r"delimited-dbc|no-dutch-insurer|enc-1|cents|\d{4,}")


def test_a_derivation_in_english_words_and_neither_has_the_others_words_codes_ids_or_cents() -> None:
    starts = {"enc-1": datetime(2026, 11, 30, 20, 10, tzinfo=UTC)}
    english = explain(_line(), starts, "en")
    assert english == "Home visit (HH) on 30-11 21:10 → VIS · tariff €110.00"
    lines = [_line(), _line(kind="rebill"), _line(kind="credit", exclusion_reason="no-dutch-insurer"),
             _line(code="ADV", explanation="triage only: no delivered contacts → ADV"),
             _line(code=None, exclusion_reason="delimited-dbc", unit_price_cents=None, explanation="delimited")]
    for line in lines:
        dutch, english = explain(line, starts), explain(line, starts, "en")
        assert not ENGLISH_WORDS.search(dutch) and not RAW.search(dutch), dutch
        assert not DUTCH_WORDS.search(english) and not RAW.search(english), english
    assert explain(lines[1], starts, "en").startswith("Rebill · Home visit (HH) on 30-11 21:10 → VIS")
    credit = _line(kind="credit", explanation="credit: insured with Zuid")  # as ledger.credit_of writes it
    assert explain(credit, starts) == "Creditering · trekt VIS van 30-11 in · tarief €\u00a0110,00"
    assert explain(credit, starts, "en") == "Credit · cancels VIS of 30-11 · tariff €110.00"
    withdrawn = _line(kind="rebill", exclusion_reason="withdrawn")
    assert explain(withdrawn, starts).endswith("· niet gedeclareerd: ingetrokken")
    assert explain(lines[4], starts, "en") == "No prestation: falls within the hospital's DBC"
    assert contact_words("AMB", starts["enc-1"], "en") == "Consult on site (AMB) on 30-11 21:10"
