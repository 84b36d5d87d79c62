"""Builds referral transaction Bundles as a partner EHR sends them (demo loader, tests and benchmarks)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from shared.identifiers import AGB_SYSTEM, BSN_SYSTEM, URA_SYSTEM, UZOVI_SYSTEM

NL_CORE_PATIENT = "http://nictiz.nl/fhir/StructureDefinition/nl-core-Patient"


@dataclass(frozen=True)
class DemoPatient:
    bsn: str | None
    given: str
    family: str
    birth_date: str
    gender: str
    uzovi: str | None


DEMO_PATIENTS: tuple[DemoPatient, ...] = (
    DemoPatient("999990007", "Jan", "de Vries", "1941-03-12", "male", "9001"),
    DemoPatient("999990019", "Aaltje", "Bakker", "1937-11-02", "female", "9001"),
    DemoPatient("999990020", "Mohamed", "El Amrani", "1968-06-21", "male", "9002"),
    DemoPatient("999990032", "Ingrid", "Jansen", "1952-01-30", "female", "9002"),
    DemoPatient("999990044", "Sören", "Müller-Lüdenscheidt", "1979-09-09", "male", None),
    DemoPatient("999990056", "Fatma", "Yılmaz", "1990-04-17", "female", "9001"),
)


def referral_bundle(*, bsn: str | None, given: str = "Jan", family: str = "de Vries", birth_date: str = "1950-01-01",
                    gender: str = "unknown", uzovi: str | None = "9001", requester_agb: str | None = "01000001",
                    requester_ura: str | None = None, reason: str = "Dyspneu, toenemend sinds vanochtend",
                    priority: str = "urgent", referral_id: str | None = None,
                    bundle_id: str | None = None, open_dbc: bool = False,
                    authored_on: str = "2026-11-22T10:00:00+01:00", address: tuple[str, str, str] | None = None,
                    phone: str | None = None, general_practitioner_agb: str | None = None) -> dict[str, Any]:
    """A transaction Bundle with Patient, optional Coverage, the requesting Organization and the ServiceRequest
    (`authored_on`: when the referrer wrote it, ISO 8601 with zone). The Patient gets a home `address`
    (street and number, postal code, city), a mobile `phone` and a GP practice (AGB) when given."""
    patient_url, org_url, payer_url, sr_url, cov_url = (f"urn:uuid:{uuid.uuid4()}" for _ in range(5))
    referral_id = referral_id or uuid.uuid4().hex
    patient: dict[str, Any] = {"resourceType": "Patient", "meta": {"profile": [NL_CORE_PATIENT]},
                               "name": [{"family": family, "given": [given], "text": f"{given} {family}"}],
                               "birthDate": birth_date, "gender": gender}
    if bsn:
        patient["identifier"] = [{"system": BSN_SYSTEM, "value": bsn}]
    if address:
        patient["address"] = [{"use": "home", "line": [address[0]], "postalCode": address[1], "city": address[2],
                               "country": "NL"}]
    if phone:
        patient["telecom"] = [{"system": "phone", "value": phone, "use": "mobile"}]
    if general_practitioner_agb:
        patient["generalPractitioner"] = [{"identifier": {"system": AGB_SYSTEM, "value": general_practitioner_agb},
                                           "display": "Huisartsenpraktijk"}]
    if requester_ura:
        org_ident = {"system": URA_SYSTEM, "value": requester_ura}
    else:
        org_ident = {"system": AGB_SYSTEM, "value": requester_agb}
    entries: list[dict[str, Any]] = [
        {"fullUrl": patient_url, "resource": patient,
         "request": {"method": "POST", "url": "Patient",
                     **({"ifNoneExist": f"identifier={BSN_SYSTEM}|{bsn}"} if bsn else {})}},
        {"fullUrl": org_url, "resource": {"resourceType": "Organization", "identifier": [org_ident],
                                          "name": "Verwijzende praktijk"},
         "request": {"method": "POST", "url": "Organization",
                     "ifNoneExist": f"identifier={org_ident['system']}|{org_ident['value']}"}},
    ]
    if uzovi:
        entries.append({"fullUrl": payer_url, "resource": {"resourceType": "Organization", "identifier": [
            {"system": UZOVI_SYSTEM, "value": uzovi}], "name": f"Zorgverzekeraar {uzovi}"},
            "request": {"method": "POST", "url": "Organization",
                        "ifNoneExist": f"identifier={UZOVI_SYSTEM}|{uzovi}"}})
        entries.append({"fullUrl": cov_url, "resource": {
            "resourceType": "Coverage", "status": "active", "beneficiary": {"reference": patient_url},
            "payor": [{"reference": payer_url}]}, "request": {"method": "POST", "url": "Coverage"}})
    referral_system = f"https://regiozorg.example/fhir/NamingSystem/referral/{org_ident['value']}"
    entries.append({"fullUrl": sr_url, "resource": {
        "resourceType": "ServiceRequest",
        "identifier": [{"system": referral_system, "value": referral_id}],
        "status": "active", "intent": "order", "priority": priority,
        "code": {"text": "Beoordeling acute zorg"},
        "reasonCode": [{"text": reason}],
        "subject": {"reference": patient_url},
        "requester": {"reference": org_url},
        "authoredOn": authored_on,
    }, "request": {"method": "POST", "url": "ServiceRequest",
                   "ifNoneExist": f"identifier={referral_system}|{referral_id}"}})
    if open_dbc:  # the referrer knows of a running DBC for this condition
        entries[-1]["resource"]["extension"] = [{"url": "https://regiozorg.example/fhir/StructureDefinition/open-dbc",
                                                 "valueBoolean": True}]
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    if bundle_id:
        bundle["identifier"] = {"system": f"https://regiozorg.example/fhir/NamingSystem/bundle/{org_ident['value']}",
                                "value": bundle_id}
    return bundle
