"""A month of the demo region through shadow billing, checked against totals computed by hand.

November 2026, eight acute requests a day, every evening at 20:00 (Amsterdam); insured with Noord (9001) on
even days and Zuid (9002) on odd days, except slot 6 (no Dutch insurer). Per day:

    slot 0  remote-advice, phone advice (VR)           → ADV, shadow TEL 650
    slot 1  home-visit by Wijkverpleging Oost (HH)     → VIS, shadow WV-UUR 8200
    slot 2  onsite-consult at the front door (AMB)     → CON, shadow 12011 1243 (NZa 2025)
    slot 3  gp-office-hours, no further contact         → ADV (triage only), shadow TEL 650
    slot 4  hospital-referral                           → delimited-dbc, not in the feed
    slot 5  community-nursing visit (HH)                → VIS, shadow 8200
    slot 6  remote-advice (VR), no Dutch insurer        → no-dutch-insurer, not in any feed
    slot 7  home-visit (HH) after phone advice (VR)     → VIS (most intensive), shadow 8200 + 650

So a day yields 2 ADV (shadow 1300), 3 VIS (shadow 25250) and 1 CON (shadow 1243).
Noord, 15 even days at 3500/11000/7500: ADV 30 → 105000, VIS 45 → 495000, CON 15 → 112500; total 712500.
Zuid changes prices on 16 November: odd days 1–15 (8 days) at 3600/11500/7800 and 17–29 (7 days) at
3700/11800/8000: ADV 16 → 57600 and 14 → 51800, VIS 24 → 276000 and 21 → 247800, CON 8 → 62400 and
7 → 56000; total 751600. Inclusion is 1.0 for both: 15 delimited requests each are not eligible.
"""

from __future__ import annotations

import random
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.billing_books import Books, request_events

pytestmark = pytest.mark.integration
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
SLOTS = [("remote-advice", ["VR"]), ("home-visit", ["HH"]), ("onsite-consult", ["AMB"]), ("gp-office-hours", []),
         ("hospital-referral", []), ("community-nursing", ["HH"]), ("remote-advice", ["VR"]),
         ("home-visit", ["HH", "VR"])]


def line(code: str, quantity: int, price: int, shadow_per_request: int) -> dict[str, int | str]:
    return {"code": code, "quantity": quantity, "unit_price_cents": price, "amount_cents": quantity * price,
            "shadow_amount_cents": shadow_per_request}


async def test_a_month_of_the_demo_region_adds_up_to_the_hand_computed_feeds(database_url: str) -> None:
    books = await Books(database_url).open()
    try:
        stream = []
        for day in range(1, 31):
            start = datetime(2026, 11, day, 20, 0, tzinfo=AMSTERDAM)
            for slot, (disposition, contacts) in enumerate(SLOTS):
                uzovi = None if slot == 6 else ("9001" if day % 2 == 0 else "9002")
                stream += request_events(day * 10 + slot, disposition=disposition, uzovi=uzovi, contacts=contacts,
                                         start=start)
        random.Random(2026).shuffle(stream)
        await books.apply(stream)
        await books.publish()
        noord, zuid = await books.feed("9001"), await books.feed("9002")
    finally:
        await books.engine.dispose()

    assert noord["lines"] == [line("ADV", 30, 3500, 19500), line("VIS", 45, 11000, 378750),
                              line("CON", 15, 7500, 18645)]
    assert noord["totals"] == {"quantity": 90, "amount_cents": 712500, "shadow_amount_cents": 416895}
    assert zuid["lines"] == [line("ADV", 16, 3600, 10400), line("ADV", 14, 3700, 9100),
                             line("VIS", 24, 11500, 202000), line("VIS", 21, 11800, 176750),
                             line("CON", 8, 7800, 9944), line("CON", 7, 8000, 8701)]
    assert zuid["totals"] == {"quantity": 90, "amount_cents": 751600, "shadow_amount_cents": 416895}
    for feed in (noord, zuid):
        assert feed["inclusion_rate"] == 1.0
        assert feed["exclusions"] == {"delimited-dbc": 15}
        assert feed["revision"] == 1
