"""Derive the shadow-billing prestation code for a closed request from its delivered contacts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

ADV = "ADV"  # advies op afstand
VIS = "VIS"  # visite aan huis
CON = "CON"  # consult op fysieke locatie

CODE_FOR_CLASS = {"VR": ADV, "HH": VIS, "AMB": CON}
INTENSITY = {ADV: 1, VIS: 2, CON: 3}

HOSPITAL_REFERRAL = "hospital-referral"
DELIMITED_DBC = "delimited-dbc"
NO_DUTCH_INSURER = "no-dutch-insurer"


def _require_aware(moment: datetime | None, what: str) -> None:
    if moment is not None and (moment.tzinfo is None or moment.utcoffset() is None):
        raise ValueError(f"{what} must be timezone-aware")


@dataclass(frozen=True)
class Contact:
    """A delivered patient contact; act_class is the v3 ActCode encounter class (VR, HH, AMB)."""

    contact_id: str
    act_class: str
    start: datetime

    def __post_init__(self) -> None:
        _require_aware(self.start, f"start of contact {self.contact_id}")


@dataclass(frozen=True)
class RequestFacts:
    """What billing needs to know about a request."""

    request_id: str
    disposition: str | None
    uzovi: str | None
    triaged_at: datetime | None
    closed: bool
    open_dbc: bool = False

    def __post_init__(self) -> None:
        _require_aware(self.triaged_at, f"triaged_at of request {self.request_id}")


@dataclass(frozen=True)
class Derivation:
    """The derived prestation (or why there is none) and a readable account of the rule that applied."""

    request_id: str
    code: str | None
    exclusion_reason: str | None
    service_date: datetime | None
    contacts: tuple[str, ...]
    rule: str


def _unique(contacts: Iterable[Contact]) -> list[Contact]:
    by_id: dict[str, Contact] = {}
    for contact in contacts:
        seen = by_id.setdefault(contact.contact_id, contact)
        # Picking one of two differing versions would make the result depend on input order.
        if seen != contact:
            raise ValueError(f"contact {contact.contact_id} appears twice with different details")
    return sorted(by_id.values(), key=lambda c: c.contact_id)


def _listing(contacts: list[Contact]) -> str:
    return ", ".join(f"{c.contact_id} {c.act_class}" for c in contacts) or "none"


def derive(facts: RequestFacts, contacts: Iterable[Contact]) -> Derivation | None:
    """Return the Derivation for a closed request, or None while the request is still open.

    A hospital referral or open DBC is billed in the hospital's DBC, so gets no code ("delimited-dbc").
    Otherwise the most intensive known contact decides (CON > VIS > ADV; ties: earliest start, then id),
    and a request with no contacts is triage only (ADV on the triage time). Without a UZOVI the code is
    still derived but excluded as "no-dutch-insurer". Contacts with unknown classes are ignored.
    """
    if not facts.closed:
        return None
    unique = _unique(contacts)
    known = [c for c in unique if c.act_class in CODE_FOR_CLASS]
    unknown = [c for c in unique if c.act_class not in CODE_FOR_CLASS]
    considered = tuple(c.contact_id for c in known)
    notes = f"; contacts considered: {_listing(known)}"
    if unknown:
        notes += f"; ignored unknown classes: {_listing(unknown)}"

    if facts.disposition == HOSPITAL_REFERRAL or facts.open_dbc:
        cause = "open DBC" if facts.open_dbc else "hospital referral"
        return Derivation(
            request_id=facts.request_id,
            code=None,
            exclusion_reason=DELIMITED_DBC,
            service_date=None,
            contacts=considered,
            rule=f"delimited DBC ({cause}): no prestation{notes}",
        )

    # Blank counts as missing: an empty UZOVI cannot be billed to any insurer.
    exclusion = None if facts.uzovi else NO_DUTCH_INSURER
    if exclusion:
        notes += "; excluded: no Dutch insurer (no UZOVI)"
    if not known:
        return Derivation(
            request_id=facts.request_id,
            code=ADV,
            exclusion_reason=exclusion,
            service_date=facts.triaged_at,
            contacts=(),
            rule=f"triage only: no delivered contacts → ADV{notes}",
        )

    decisive = min(known, key=lambda c: (-INTENSITY[CODE_FOR_CLASS[c.act_class]], c.start, c.contact_id))
    code = CODE_FOR_CLASS[decisive.act_class]
    return Derivation(
        request_id=facts.request_id,
        code=code,
        exclusion_reason=exclusion,
        service_date=decisive.start,
        contacts=considered,
        rule=f"most intensive delivered contact: {decisive.act_class} ({decisive.contact_id}) → {code}{notes}",
    )
