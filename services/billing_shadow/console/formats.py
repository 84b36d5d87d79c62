"""How the billing console shows and exports money, ledger lines and derivations, in Dutch or English.

Money is kept in integer cents everywhere; only here is it turned into text: `€ 1.234,50` in Dutch (a
non-breaking space after the euro sign, a dot between thousands, a decimal comma), the way Dutch staff and
Dutch Excel read amounts, and `€1,234.50` in English. Words are written in Dutch and translated through
shared/i18n.py, as in every console. The feed API's CSV (`service.feed_csv`) is a machine interface and stays
in cents with commas.
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
from shared.i18n import translator

NBSP = "\u00a0"
MINUS = "\u2212"
CODE_NAMES = {"ADV": "Advies op afstand", "VIS": "Visite aan huis", "CON": "Consult op locatie"}
CLASS_NAMES = {"VR": "Advies op afstand", "HH": "Visite aan huis", "AMB": "Consult op locatie"}
EXCLUSION_NAMES = {"delimited-dbc": "valt in de DBC van het ziekenhuis",
                   "no-dutch-insurer": "geen Nederlandse verzekeraar (geen UZOVI)", "withdrawn": "ingetrokken"}
# Ledger line kinds and a line's standing, in words (English in shared/i18n.py).
KIND_NAMES = {"original": "Oorspronkelijk", "credit": "Creditering", "rebill": "Herdeclaratie"}
STATUS_NAMES = {"draft": "Concept", "locked": "Vastgezet", "superseded": "Vervangen", "booked": "Geboekt"}
# A derivation's sentences, with placeholders filled after translation.
CONTACT = "{contact} ({act_class}) op {when}"
DECISIVE = "{contact} ({act_class}) op {when} → {code}"
TRIAGE_ONLY = "Alleen triage, geen geleverd contact, op {when} → {code}"
CANCELS = "trekt {code} van {when} in"
NO_PRESTATION = "Geen prestatie: {reason}"
NOT_CLAIMED = "niet gedeclareerd: {reason}"
NO_TARIFF = "geen contracttarief"
TARIFF = "tarief {amount}"
_DECISIVE = re.compile(r"most intensive delivered contact: (\w+) \(([^)]+)\)")
_PRICE = re.compile(r"^(−|-)?(\d{1,7})(?:,(\d{1,2}))?$")


def euro(cents: int, lang: str = "nl") -> str:
    """Format integer cents as money for `lang`: in Dutch 11000 → "€ 110,00", -123456 → "−€ 1.234,56" (the space
    after € non-breaking, so an amount never wraps in a narrow table cell); in English 11000 → "€110.00",
    -123456 → "−€1,234.56". Any other `lang` is Dutch."""
    sign = MINUS if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    if lang == "en":
        return f"{sign}€{whole:,}.{rest:02d}"
    return f"{sign}€{NBSP}{whole:,}".replace(",", ".") + f",{rest:02d}"


def percent(share: float, digits: int = 1, lang: str = "nl") -> str:
    """A share (0.975) as a percentage: "97,5 %" in Dutch, "97.5%" in English; `digits` decimals."""
    text = f"{share * 100:.{digits}f}"
    return f"{text}%" if lang == "en" else f"{text.replace('.', ',')}{NBSP}%"


def signed_percent(value: float, lang: str = "nl") -> str:
    """A difference already in percent (-12.34) with its sign: "−12,3 %" in Dutch, "−12.3%" in English."""
    text = f"{value:+.1f}".replace("-", MINUS)
    return f"{text}%" if lang == "en" else f"{text.replace('.', ',')}{NBSP}%"


def kind_words(kind: str, lang: str = "nl") -> str:
    """A ledger line's kind (original | credit | rebill) in words; an unknown kind as it is."""
    return translator(lang)(KIND_NAMES[kind]) if kind in KIND_NAMES else kind


def exclusion_words(reason: str | None, lang: str = "nl") -> str:
    """Why a line is not claimed (`delimited-dbc`, `no-dutch-insurer`) in words; "" for none, unknown as it is."""
    if not reason:
        return ""
    return translator(lang)(EXCLUSION_NAMES[reason]) if reason in EXCLUSION_NAMES else reason


def line_status(line: Any, *, standing_id: str | None, now: datetime, lang: str = "nl") -> str:
    """Where a ledger line stands, in words: a credit is booked ("Geboekt"); the request's standing line is a draft
    until `locks_at` ("Concept") and locked after ("Vastgezet"); any other line was superseded ("Vervangen").
    `line` is a PrestationLine; `now` is aware."""
    if line.kind == "credit":
        status = "booked"
    elif line.id != standing_id:
        status = "superseded"
    else:
        locks_at = line.locks_at
        if locks_at is not None and locks_at.tzinfo is None:
            locks_at = locks_at.replace(tzinfo=now.tzinfo)
        status = "locked" if locks_at is not None and locks_at <= now else "draft"
    return translator(lang)(STATUS_NAMES[status])


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


def contact_words(act_class: str, start: datetime, lang: str = "nl") -> str:
    """A delivered contact in words of `lang`: "Visite aan huis (HH) op 30-11 21:10" (`start` aware or UTC, shown
    in Europe/Amsterdam); an unknown act class by its code."""
    t = translator(lang)
    contact = t(CLASS_NAMES[act_class]) if act_class in CLASS_NAMES else act_class
    return t(CONTACT).format(contact=contact, act_class=act_class, when=local_time(start))


def explain(line: Any, contact_starts: Mapping[str, datetime], lang: str = "nl") -> str:
    """A derivation in words of `lang`, e.g. "Visite aan huis (HH) op 30-11 21:10 → VIS · tarief € 110,00", in
    English "Home visit (HH) on 30-11 21:10 → VIS · tariff €110.00": no reason codes, ids or cents.

    `line` is a PrestationLine; `contact_starts` maps Encounter ids to their start (aware or UTC) to name the time
    (Europe/Amsterdam) of the decisive contact. The stored technical explanation stays available next to it.
    """
    t = translator(lang)
    parts = []
    if line.kind in ("credit", "rebill"):
        parts.append(kind_words(line.kind, lang))
    decisive = _DECISIVE.search(line.explanation or "")
    if line.exclusion_reason == "delimited-dbc":
        parts.append(t(NO_PRESTATION).format(reason=exclusion_words("delimited-dbc", lang)))
    elif decisive:
        act_class, contact_id = decisive.groups()
        start = contact_starts.get(contact_id)
        when = local_time(start) if start else line.service_date.strftime("%d-%m")
        contact = t(CLASS_NAMES[act_class]) if act_class in CLASS_NAMES else act_class
        parts.append(t(DECISIVE).format(contact=contact, act_class=act_class, when=when, code=line.code))
    elif line.kind == "credit":  # a credit's own explanation holds only its reason: say what it cancels
        parts.append(t(CANCELS).format(code=line.code or "–", when=line.service_date.strftime("%d-%m")))
    elif line.code:
        parts.append(t(TRIAGE_ONLY).format(when=line.service_date.strftime("%d-%m"), code=line.code))
    if line.exclusion_reason and line.exclusion_reason != "delimited-dbc":
        parts.append(t(NOT_CLAIMED).format(reason=exclusion_words(line.exclusion_reason, lang)))
    elif line.code and line.unit_price_cents is None:
        parts.append(t(NO_TARIFF))
    elif line.unit_price_cents is not None:
        parts.append(t(TARIFF).format(amount=euro(line.unit_price_cents, lang)))
    return " · ".join(parts)
