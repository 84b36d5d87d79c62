"""How the billing console shows and exports money and derivations for Dutch readers.

Money is kept in integer cents everywhere; only here is it turned into text: `€ 1.234,50` (a non-breaking
space after the euro sign, a dot between thousands, a decimal comma), the way Dutch staff and Dutch Excel
read amounts. The feed API's CSV (`service.feed_csv`) is a machine interface and stays in cents with commas.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from openpyxl import Workbook

from shared.console import local_time

NBSP = "\u00a0"
MINUS = "\u2212"
CODE_NAMES = {"ADV": "Advies op afstand", "VIS": "Visite aan huis", "CON": "Consult op locatie"}
CLASS_NAMES = {"VR": "Advies op afstand", "HH": "Visite aan huis", "AMB": "Consult op locatie"}
EXCLUSION_NAMES = {"delimited-dbc": "valt in de DBC van het ziekenhuis",
                   "no-dutch-insurer": "geen Nederlandse verzekeraar (geen UZOVI)"}
KIND_NAMES = {"original": "", "credit": "Creditering", "rebill": "Herdeclaratie"}
_DECISIVE = re.compile(r"most intensive delivered contact: (\w+) \(([^)]+)\)")
_PRICE = re.compile(r"^(−|-)?(\d{1,7})(?:,(\d{1,2}))?$")


def euro(cents: int) -> str:
    """Format integer cents as Dutch money, e.g. 11000 → "€ 110,00", -123456 → "−€ 1.234,56".

    The space after € is non-breaking so an amount never wraps in a narrow table cell.
    """
    sign = MINUS if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    return f"{sign}€{NBSP}{whole:,}".replace(",", ".") + f",{rest:02d}"


def decimal_comma(cents: int | None) -> str:
    """Cents as a plain Dutch number for spreadsheets: 11000 → "110,00", None → ""."""
    if cents is None:
        return ""
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    return f"{sign}{whole},{rest:02d}"


def parse_euros(text: str) -> int:
    """Parse a price typed in euros with a decimal comma ("110,00", "95", "87,5") into integer cents.

    Raises ValueError with a Dutch message for anything else (a dot, letters, more than two decimals,
    a negative or zero amount): a tariff is a positive price.
    """
    match = _PRICE.match(text.strip().replace("€", "").replace(NBSP, "").strip())
    if not match or match.group(1):
        raise ValueError("Prijs in euro's met een komma, bijvoorbeeld 110,00.")
    try:
        cents = int(Decimal(f"{match.group(2)}.{(match.group(3) or '0'):0<2}") * 100)
    except InvalidOperation as exc:  # pragma: no cover - the pattern already limits the digits
        raise ValueError("Prijs in euro's met een komma, bijvoorbeeld 110,00.") from exc
    if cents <= 0:
        raise ValueError("De prijs moet groter dan nul zijn.")
    return cents


FEED_COLUMNS = ["UZOVI", "Periode", "Revisie", "Prestatie", "Omschrijving", "Aantal", "Tarief (€)", "Bedrag (€)",
                "Schaduw (€)"]


def _feed_rows(document: Mapping[str, Any]) -> list[list[Any]]:
    """The feed as rows of Python values, amounts in cents (callers choose the number format)."""
    head = [document["uzovi"], document["period"], document["revision"]]
    rows = [[*head, line["code"], CODE_NAMES.get(line["code"], ""), line["quantity"], line["unit_price_cents"],
             line["amount_cents"], line["shadow_amount_cents"]] for line in document["lines"]]
    totals = document["totals"]
    rows.append([*head, "Totaal", "", totals["quantity"], None, totals["amount_cents"],
                 totals["shadow_amount_cents"]])
    return rows


def feed_csv_dutch(document: Mapping[str, Any]) -> str:
    """The feed as CSV for Dutch Excel: `;` between fields, decimal commas in euros, CRLF line ends.

    Starts with a UTF-8 byte order mark when encoded by the caller as "utf-8-sig", so Excel reads the € sign.
    """
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(FEED_COLUMNS)
    for row in _feed_rows(document):
        writer.writerow([*row[:6], *(decimal_comma(c) for c in row[6:])])
    return out.getvalue()


def feed_xlsx(document: Mapping[str, Any]) -> bytes:
    """The feed as an XLSX workbook (one sheet): amounts as numbers in euros with a euro number format."""
    book = Workbook()
    sheet = book.active
    sheet.title = f"Feed {document['uzovi']} {document['period']}"
    sheet.append(FEED_COLUMNS)
    for row in _feed_rows(document):
        sheet.append([*row[:6], *(None if c is None else Decimal(c) / 100 for c in row[6:])])
        for cell in sheet[sheet.max_row][6:]:
            cell.number_format = '"€" #,##0.00'
    for column, width in zip("ABCDEFGHI", (8, 9, 8, 10, 20, 8, 12, 12, 12), strict=True):
        sheet.column_dimensions[column].width = width
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def explain(line: Any, contact_starts: Mapping[str, datetime]) -> str:
    """A derivation in Dutch words, e.g. "Visite aan huis (HH) op 30-11 21:10 → VIS".

    `line` is a PrestationLine; `contact_starts` maps Encounter ids to their start (aware or UTC) to name
    the time of the decisive contact. The stored technical explanation stays available next to it.
    """
    parts = []
    if KIND_NAMES.get(line.kind):
        parts.append(KIND_NAMES[line.kind])
    decisive = _DECISIVE.search(line.explanation or "")
    if line.exclusion_reason == "delimited-dbc":
        parts.append("Geen prestatie: " + EXCLUSION_NAMES["delimited-dbc"])
    elif decisive:
        act_class, contact_id = decisive.groups()
        start = contact_starts.get(contact_id)
        when = local_time(start) if start else line.service_date.strftime("%d-%m")
        parts.append(f"{CLASS_NAMES.get(act_class, act_class)} ({act_class}) op {when} → {line.code}")
    elif line.code:
        parts.append(f"Alleen triage, geen geleverd contact, op {line.service_date.strftime('%d-%m')} → {line.code}")
    if line.exclusion_reason and line.exclusion_reason != "delimited-dbc":
        parts.append("niet gedeclareerd: " + EXCLUSION_NAMES.get(line.exclusion_reason, line.exclusion_reason))
    elif line.code and line.unit_price_cents is None:
        parts.append("geen contracttarief")
    elif line.unit_price_cents is not None:
        parts.append(f"tarief {euro(line.unit_price_cents)}")
    return " · ".join(parts)
