"""Which regular tariff code each delivered contact would have been billed under (the shadow administration)."""

from __future__ import annotations

from services.billing_shadow.domain.derivation import Contact

HOSPITAL_KINDS = frozenset({"hospital"})
NURSING_KINDS = frozenset({"community-nursing"})


def shadow_code(contact: Contact, performer_kind: str | None) -> str:
    """Remote → telephone consult; home → GP visit or a nursing hour; on site → GP consult or an SEH DBC."""
    if contact.act_class == "VR":
        return "TEL"
    if contact.act_class == "HH":
        return "WV-UUR" if performer_kind in NURSING_KINDS else "12002"
    return "SEH-DBC" if performer_kind in HOSPITAL_KINDS else "12011"


TRIAGE_ONLY_CODE = "TEL"
HOSPITAL_REFERRAL_CODE = "SEH-DBC"
