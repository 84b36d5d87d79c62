"""Reads a partner's transaction Bundle into a referral: every rule checked, every problem reported at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.fhir import Issue, validate_resource
from shared.identifiers import AGB_SYSTEM, BSN_SYSTEM, URA_SYSTEM, UZOVI_SYSTEM, validate_identifier

ACCEPTED_TYPES = frozenset({
    "Patient", "Coverage", "ServiceRequest", "Condition", "Observation", "QuestionnaireResponse", "Organization",
    "Practitioner", "PractitionerRole", "CareTeam", "Encounter", "EpisodeOfCare", "AllergyIntolerance",
    "MedicationStatement", "DocumentReference", "RelatedPerson",
})
SERVICE_REQUEST_STATUS = frozenset({"draft", "active", "on-hold", "revoked", "completed", "entered-in-error",
                                    "unknown"})
SERVICE_REQUEST_INTENT = frozenset({"proposal", "plan", "directive", "order", "original-order", "reflex-order",
                                    "filler-order", "instance-order", "option"})
REQUEST_PRIORITY = frozenset({"routine", "urgent", "asap", "stat"})
COVERAGE_STATUS = frozenset({"active", "cancelled", "draft", "entered-in-error"})
REQUESTER_TYPES = frozenset({"Organization", "Practitioner", "PractitionerRole"})


@dataclass
class Entry:
    index: int
    full_url: str | None
    resource: dict[str, Any]
    if_none_exist: str | None

    @property
    def type(self) -> str:
        return str(self.resource.get("resourceType"))

    @property
    def path(self) -> str:
        return f"Bundle.entry[{self.index}].resource"


@dataclass
class Referral:
    """What the front door needs from a valid referral Bundle."""

    entries: list[Entry]
    service_request: Entry
    patient: Entry | None
    patient_reference: str | None  # "Patient/<id>" of an already stored patient
    bsn: str | None
    uzovi: str | None
    requester_org: str | None  # "system|value"
    priority: str | None
    bundle_identifier: str | None
    issues: list[Issue] = field(default_factory=list)


def _identifiers(resource: dict[str, Any]) -> list[dict[str, Any]]:
    value = resource.get("identifier")
    if isinstance(value, dict):
        return [value]
    return [i for i in value or [] if isinstance(i, dict)]


def _identifier_value(resource: dict[str, Any], systems: tuple[str, ...]) -> tuple[str, str] | None:
    for ident in _identifiers(resource):
        if ident.get("system") in systems and ident.get("value"):
            return str(ident["system"]), str(ident["value"])
    return None


def read_referral(bundle: dict[str, Any]) -> Referral | list[Issue]:
    """Return the Referral, or every issue found (with FHIRPath locations) when it cannot be accepted."""
    issues: list[Issue] = []
    if bundle.get("resourceType") != "Bundle":
        return [Issue("error", "structure", "a transaction Bundle is required", ("Bundle.resourceType",))]
    if bundle.get("type") != "transaction":
        return [Issue("error", "value", "Bundle.type must be 'transaction'", ("Bundle.type",))]
    raw_entries = bundle.get("entry")
    if not isinstance(raw_entries, list) or not raw_entries:
        return [Issue("error", "required", "the Bundle has no entries", ("Bundle.entry",))]

    entries: list[Entry] = []
    for index, raw in enumerate(raw_entries):
        where = f"Bundle.entry[{index}]"
        resource = raw.get("resource") if isinstance(raw, dict) else None
        if not isinstance(resource, dict):
            issues.append(Issue("error", "required", "entry has no resource", (f"{where}.resource",)))
            continue
        request = raw.get("request") or {}
        if request.get("method") != "POST":
            issues.append(Issue("error", "not-supported", "only POST entries are supported in a referral",
                                (f"{where}.request.method",)))
        rtype = resource.get("resourceType")
        if rtype not in ACCEPTED_TYPES:
            issues.append(Issue("error", "not-supported", f"resource type {rtype!r} is not accepted in a referral",
                                (f"{where}.resource.resourceType",)))
            continue
        entry = Entry(index, raw.get("fullUrl"), resource, request.get("ifNoneExist"))
        issues.extend(validate_resource(resource, path=entry.path))
        issues.extend(_identifier_issues(entry))
        entries.append(entry)

    full_urls = {e.full_url: e for e in entries if e.full_url}
    requests = [e for e in entries if e.type == "ServiceRequest"]
    if len(requests) != 1:
        issues.append(Issue("error", "invalid", "a referral holds exactly one ServiceRequest", ("Bundle.entry",)))
        return issues
    sr = requests[0]
    res = sr.resource
    issues.extend(_binding(res, "status", SERVICE_REQUEST_STATUS, sr.path, required=True))
    issues.extend(_binding(res, "intent", SERVICE_REQUEST_INTENT, sr.path, required=True))
    issues.extend(_binding(res, "priority", REQUEST_PRIORITY, sr.path, required=False))

    patient, patient_reference = _resolve_subject(sr, full_urls, issues)
    bsn = None
    if patient is not None:
        found = _identifier_value(patient.resource, (BSN_SYSTEM,))
        bsn = found[1] if found else None

    requester_org = _resolve_requester(sr, full_urls, issues)
    uzovi = _resolve_uzovi(entries, full_urls, issues)

    bundle_identifier = None
    ident = bundle.get("identifier")
    if isinstance(ident, dict) and ident.get("value"):
        bundle_identifier = f"{ident.get('system', '')}|{ident['value']}"

    if issues:
        return issues
    return Referral(entries=entries, service_request=sr, patient=patient, patient_reference=patient_reference,
                    bsn=bsn, uzovi=uzovi, requester_org=requester_org, priority=res.get("priority"),
                    bundle_identifier=bundle_identifier)


def _binding(resource: dict[str, Any], element: str, allowed: frozenset[str], path: str, *,
             required: bool) -> list[Issue]:
    value = resource.get(element)
    if value is None:
        return [Issue("error", "required", f"{element} is required", (f"{path}.{element}",))] if required else []
    if value not in allowed:
        return [Issue("error", "code-invalid",
                      f"{element} {value!r} is not in the required value set ({', '.join(sorted(allowed))})",
                      (f"{path}.{element}",))]
    return []


def _identifier_issues(entry: Entry) -> list[Issue]:
    issues = []
    for i, ident in enumerate(_identifiers(entry.resource)):
        problem = validate_identifier(str(ident.get("system", "")), str(ident.get("value", "")))
        if problem:
            issues.append(Issue("error", "value", problem, (f"{entry.path}.identifier[{i}].value",)))
    return issues


def _resolve_subject(sr: Entry, full_urls: dict[str, Entry], issues: list[Issue]) -> tuple[Entry | None, str | None]:
    subject = sr.resource.get("subject") or {}
    ref = subject.get("reference")
    where = (f"{sr.path}.subject",)
    if not ref:
        issues.append(Issue("error", "required", "ServiceRequest.subject must reference the Patient", where))
        return None, None
    if ref in full_urls:
        target = full_urls[ref]
        if target.type != "Patient":
            issues.append(Issue("error", "invalid", "ServiceRequest.subject must be a Patient", where))
            return None, None
        return target, None
    if ref.startswith("Patient/"):
        return None, ref
    issues.append(Issue("error", "not-found", "ServiceRequest.subject does not resolve to a Patient in the Bundle",
                        where))
    return None, None


def _org_identifier(resource: dict[str, Any]) -> tuple[str, str] | None:
    return _identifier_value(resource, (AGB_SYSTEM, URA_SYSTEM))


def _resolve_requester(sr: Entry, full_urls: dict[str, Entry], issues: list[Issue]) -> str | None:
    requester = sr.resource.get("requester") or {}
    where = (f"{sr.path}.requester",)
    found: tuple[str, str] | None = None
    ident = requester.get("identifier")
    if isinstance(ident, dict) and ident.get("system") in (AGB_SYSTEM, URA_SYSTEM):
        found = (ident["system"], str(ident.get("value", "")))
    elif requester.get("reference") in full_urls:
        target = full_urls[requester["reference"]]
        if target.type not in REQUESTER_TYPES:
            issues.append(Issue("error", "invalid", "requester must be an Organization, Practitioner or "
                                                    "PractitionerRole", where))
            return None
        found = _org_identifier(target.resource)
        if found is None and target.type == "PractitionerRole":
            org_ref = (target.resource.get("organization") or {}).get("reference")
            if org_ref in full_urls:
                found = _org_identifier(full_urls[org_ref].resource)
    if found is None:
        issues.append(Issue("error", "required", "requester must identify the referring organisation or "
                                                 "practitioner by AGB or URA", where))
        return None
    return f"{found[0]}|{found[1]}"


def _resolve_uzovi(entries: list[Entry], full_urls: dict[str, Entry], issues: list[Issue]) -> str | None:
    """The insurer of the patient; a patient without Dutch insurance is still accepted (acute care)."""
    coverages = [e for e in entries if e.type == "Coverage"]
    for cov in coverages:
        issues.extend(_binding(cov.resource, "status", COVERAGE_STATUS, cov.path, required=True))
        for i, payor in enumerate(cov.resource.get("payor") or []):
            where = (f"{cov.path}.payor[{i}]",)
            ident = payor.get("identifier")
            target = full_urls.get(payor.get("reference", "")) if payor.get("reference") else None
            if isinstance(ident, dict) and ident.get("system") == UZOVI_SYSTEM:
                return str(ident.get("value"))
            if target is not None:
                found = _identifier_value(target.resource, (UZOVI_SYSTEM,))
                if found:
                    return found[1]
            issues.append(Issue("error", "required", "Coverage.payor must identify the insurer by UZOVI", where))
    return None
