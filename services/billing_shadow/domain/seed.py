"""Tariff tables loaded on first start: demo insurer contracts and the shadow table of regular equivalents.

Integrated prices are the demo region's contracts (fictional). Shadow figures for GP
care are the public NZa tariffs of the year named in `source`; the others are
illustrative values, labelled as such, because out-of-hours posts are paid per
service hour, not per contact, and SEH DBC prices differ per hospital contract.
"""

from __future__ import annotations

from datetime import date

from services.billing_shadow.domain.tariffs import Tariff

SHADOW = "shadow"
DESCRIPTIONS = {
    "ADV": "Advies op afstand", "VIS": "Visite aan huis", "CON": "Consult op fysieke locatie",
    "12011": "Consult huisarts 5 tot 20 min", "12001": "Consult huisarts 20 min en langer",
    "12002": "Visite huisarts korter dan 20 min", "12003": "Visite huisarts 20 min en langer",
    "TEL": "Telefonisch consult (illustratief)", "SEH-DBC": "SEH DBC-zorgproduct (illustratief)",
    "WV-UUR": "Uur wijkverpleging (illustratief)", "HAP-CONTACT": "Toegerekend HAP-contact (illustratief)",
}

SEED: tuple[Tariff, ...] = (
    Tariff("9001", "ADV", 3500, date(2026, 1, 1), None, "demo contract Zorgverzekeraar Noord 2026"),
    Tariff("9001", "VIS", 11000, date(2026, 1, 1), None, "demo contract Zorgverzekeraar Noord 2026"),
    Tariff("9001", "CON", 7500, date(2026, 1, 1), None, "demo contract Zorgverzekeraar Noord 2026"),
    Tariff("9002", "ADV", 3600, date(2026, 1, 1), date(2026, 11, 15), "demo contract Zorgverzekeraar Zuid 2026"),
    Tariff("9002", "VIS", 11500, date(2026, 1, 1), date(2026, 11, 15), "demo contract Zorgverzekeraar Zuid 2026"),
    Tariff("9002", "CON", 7800, date(2026, 1, 1), date(2026, 11, 15), "demo contract Zorgverzekeraar Zuid 2026"),
    Tariff("9002", "ADV", 3700, date(2026, 11, 16), None, "demo contract Zorgverzekeraar Zuid 2026, wijziging 16-11"),
    Tariff("9002", "VIS", 11800, date(2026, 11, 16), None, "demo contract Zorgverzekeraar Zuid 2026, wijziging 16-11"),
    Tariff("9002", "CON", 8000, date(2026, 11, 16), None, "demo contract Zorgverzekeraar Zuid 2026, wijziging 16-11"),
    Tariff(SHADOW, "12011", 1151, date(2023, 1, 1), date(2024, 12, 31), "NZa 2023"),
    Tariff(SHADOW, "12011", 1243, date(2025, 1, 1), None, "NZa 2025"),
    Tariff(SHADOW, "12001", 2302, date(2023, 1, 1), None, "NZa 2023"),
    Tariff(SHADOW, "12002", 1726, date(2023, 1, 1), None, "NZa 2023"),
    Tariff(SHADOW, "12003", 2877, date(2023, 1, 1), None, "NZa 2023"),
    Tariff(SHADOW, "TEL", 650, date(2023, 1, 1), None, "illustrative"),
    Tariff(SHADOW, "SEH-DBC", 27500, date(2023, 1, 1), None, "illustrative"),
    Tariff(SHADOW, "WV-UUR", 8200, date(2023, 1, 1), None, "illustrative"),
    Tariff(SHADOW, "HAP-CONTACT", 5400, date(2023, 1, 1), None, "illustrative"),
)
