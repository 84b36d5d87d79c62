"""Pick the tariff valid on a Dutch service day and do the date and cent arithmetic around it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from shared.refusals import Refused

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


@dataclass(frozen=True)
class Tariff:
    """A price for one code under one key (a UZOVI, or a shadow table name) over an inclusive date range."""

    key: str
    code: str
    price_cents: int
    valid_from: date
    valid_to: date | None
    source: str

    def __post_init__(self) -> None:
        if self.valid_to is not None and self.valid_to < self.valid_from:
            raise ValueError(f"tariff {self.key}/{self.code} ends {self.valid_to}, before it starts {self.valid_from}")

    def is_valid_on(self, day: date) -> bool:
        """True if `day` lies within the tariff's inclusive validity range."""
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


def service_day(moment: datetime) -> date:
    """Return the Europe/Amsterdam calendar date of an aware moment; naive datetimes raise ValueError."""
    # A naive time could be UTC or local; guessing would shift late-evening care to the wrong day.
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("moment must be timezone-aware")
    return moment.astimezone(AMSTERDAM).date()


def period_of(moment: datetime) -> str:
    """Return the "YYYY-MM" billing period of an aware moment, in Europe/Amsterdam."""
    day = service_day(moment)
    return f"{day.year:04d}-{day.month:02d}"


def select_tariff(tariffs: Iterable[Tariff], *, key: str, code: str, on: date) -> Tariff | None:
    """Return the one tariff for key and code valid on `on`, None if there is none; overlaps raise ValueError."""
    matches = [t for t in tariffs if t.key == key and t.code == code and t.is_valid_on(on)]
    if len(matches) > 1:
        sources = ", ".join(f"{t.valid_from}..{t.valid_to or 'open'} ({t.source})" for t in matches)
        raise ValueError(f"overlapping tariffs for {key}/{code} on {on}: {sources}")
    return matches[0] if matches else None


def round_cents(amount: Decimal) -> int:
    """Round an amount in cents to whole cents, ROUND_HALF_UP: halves go away from zero (2.5 → 3, -2.5 → -3)."""
    # Floats cannot represent most cent fractions exactly, so they are refused rather than converted.
    if not isinstance(amount, Decimal):
        raise TypeError(f"amount must be a Decimal, not {type(amount).__name__}")
    if not amount.is_finite():
        raise ValueError(f"amount must be finite, not {amount}")
    return int(amount.to_integral_value(rounding=ROUND_HALF_UP))


def close_for_new_version(versions: Iterable[Tariff], *, key: str, code: str, valid_from: date,
                          today: date) -> Tariff | None:
    """Check a new tariff version for key/code starting `valid_from` and say which earlier version it closes.

    Prices are never edited in place: a new price is a new version from today or a later day, and the
    version valid the day before (if it runs into the new one) ends that day. Returns that earlier version
    with its new `valid_to`, or None when nothing needs closing. Raises ValueError (Dutch message, shown to
    the admin) for a start in the past or a start on or before an existing version's start.
    """
    if valid_from < today:
        raise Refused("starts-in-past", f"Een nieuwe versie begint vandaag of later, niet op {valid_from:%d-%m-%Y}.",
                      date=f"{valid_from:%d-%m-%Y}")
    same = [t for t in versions if t.key == key and t.code == code]
    later = [t for t in same if t.valid_from >= valid_from]
    if later:
        first = min(t.valid_from for t in later)
        raise Refused("version-exists", f"Er is al een versie van {code} die begint op {first:%d-%m-%Y}; kies een "
                                        "latere datum.", code=code, date=f"{first:%d-%m-%Y}")
    running = [t for t in same if t.valid_to is None or t.valid_to >= valid_from]
    if not running:
        return None
    previous = max(running, key=lambda t: t.valid_from)
    return replace(previous, valid_to=valid_from - timedelta(days=1))
