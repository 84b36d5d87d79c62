"""Reads a partner's referral (a transaction Bundle, or one ServiceRequest): every rule checked, every problem
reported at once with its FHIRPath location."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.fhir import Issue, bundle_reference, ref_id, unresolved_placeholders, validate_resource
from shared.identifiers import AGB_SYSTEM, BSN_SYSTEM, URA_SYSTEM, UZOVI_SYSTEM, validate_identifier

ACCEPTED_TYPES = frozenset({
    "Patient", "Coverage", "ServiceRequest", "Condition", "Observation", "QuestionnaireResponse", "Organization",
    "Practitioner", "PractitionerRole", "CareTeam", "Encounter", "EpisodeOfCare", "AllergyIntolerance",
    "MedicationStatement", "DocumentReference", "RelatedPerson",
})
# Who and what a care provider is, not patient data: never filed under the referral's patient.
DIRECTORY_TYPES = frozenset({"Organization", "Practitioner", "PractitionerRole"})
SERVICE_REQUEST_STATUS = frozenset({"draft", "active", "on-hold", "revoked", "completed", "entered-in-error",
                                    "unknown"})
SERVICE_REQUEST_INTENT = frozenset({"proposal", "plan", "directive", "order", "original-order", "reflex-order",
                                    "filler-order", "instance-order", "option"})
REQUEST_PRIORITY = frozenset({"routine", "urgent", "asap", "stat"})
COVERAGE_STATUS = frozenset({"active", "cancelled", "draft", "entered-in-error"})
REQUESTER_TYPES = frozenset({"Organization", "Practitioner", "PractitionerRole"})
# The types a referral may point at when they were stored by an earlier referral (subject, requester, payor).
FOLLOWED_TYPES = REQUESTER_TYPES | {"Patient"}
# Receipt keys are "ServiceRequest:<system>|<value>" in a 400-character column.
MAX_IDENTIFIER_PART = 190


@dataclass
class Entry:
    index: int
    full_url: str | None
    resource: dict[str, Any]
    if_none_exist: str | None
    root: str | None = None  # the FHIRPath root of a resource posted on its own rather than in a Bundle

    @property
    def type(self) -> str:
        return str(self.resource.get("resourceType"))

    @property
    def path(self) -> str:
        return self.root or f"Bundle.entry[{self.index}].resource"


@dataclass
class Referral:
    """What the front door needs from a valid referral."""

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


@dataclass(frozen=True)
class _Targets:
    """Where references lead: entries of the Bundle by fullUrl, or resources stored here that the caller may see."""

    full_urls: Mapping[str, Entry]
    stored: Mapping[str, dict[str, Any]]

    def resolve(self, reference: object, referrer: Entry | None) -> tuple[dict[str, Any], Entry | None] | None:
        if not isinstance(reference, str) or not reference:
            return None
        meant = bundle_reference(reference, referrer.full_url if referrer else None)
        if meant in self.full_urls:
            target = self.full_urls[meant]
            return target.resource, target
        if meant in self.stored:
            return self.stored[meant], None
        return None


def _obj(value: object) -> dict[str, Any]:
    # Shapes are reported by validate_resource; the rules below read whatever is there without tripping over it.
    return value if isinstance(value, dict) else {}


def _identifiers(resource: dict[str, Any]) -> list[dict[str, Any]]:
    value = resource.get("identifier")
    if isinstance(value, dict):
        return [value]
    return [i for i in value if isinstance(i, dict)] if isinstance(value, list) else []


def _identifier_value(resource: dict[str, Any], systems: tuple[str, ...]) -> tuple[str, str] | None:
    for ident in _identifiers(resource):
        if ident.get("system") in systems and ident.get("value"):
            return str(ident["system"]), str(ident["value"])
    return None


def followed_references(resources: Iterable[object]) -> set[str]:
    """The local references ("Patient/<id>") by which these resources may point at resources stored here: a
    ServiceRequest's subject and requester, a Coverage's payors, a PractitionerRole's organization."""
    found = set()
    for resource in resources:
        res = _obj(resource)
        payors = res.get("payor")
        pointers = {"ServiceRequest": [res.get("subject"), res.get("requester")],
                    "Coverage": payors if isinstance(payors, list) else [],
                    "PractitionerRole": [res.get("organization")]}.get(str(res.get("resourceType")), [])
        for pointer in pointers:
            reference = _obj(pointer).get("reference")
            parsed = ref_id(reference) if isinstance(reference, str) else None
            if parsed and parsed[0] in FOLLOWED_TYPES and reference == f"{parsed[0]}/{parsed[1]}":
                found.add(reference)
    return found


def read_referral(bundle: dict[str, Any], *, stored: Mapping[str, dict[str, Any]] | None = None
                  ) -> Referral | list[Issue]:
    """Return the Referral in a transaction Bundle, or every issue found when it cannot be accepted.

    `stored` maps local references ("Patient/<id>") to the resources stored here that the caller may see.
    """
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        return [Issue("error", "structure", "a transaction Bundle is required", ("Bundle.resourceType",))]
    if bundle.get("type") != "transaction":
        return [Issue("error", "value", "Bundle.type must be 'transaction'", ("Bundle.type",))]
    raw_entries = bundle.get("entry")
    if not isinstance(raw_entries, list) or not raw_entries:
        return [Issue("error", "required", "the Bundle has no entries", ("Bundle.entry",))]

    issues: list[Issue] = []
    bundle_identifier = _bundle_identifier(bundle.get("identifier"), issues)
    entries: list[Entry] = []
    seen_urls: set[str] = set()
    for index, raw in enumerate(raw_entries):
        entry = _entry(index, raw, seen_urls, issues)
        if entry is not None:
            entries.append(entry)
    return _read(entries, issues, stored or {}, bundle_identifier)


def read_service_request(resource: dict[str, Any], *, if_none_exist: str | None,
                         stored: Mapping[str, dict[str, Any]] | None = None) -> Referral | list[Issue]:
    """The same rules for a ServiceRequest posted on its own: its subject and requester are already stored here
    (or the requester is a logical identifier), locations are rooted at "ServiceRequest"."""
    if not isinstance(resource, dict) or resource.get("resourceType") != "ServiceRequest":
        return [Issue("error", "invalid", "the body must be a ServiceRequest", ("ServiceRequest.resourceType",))]
    entry = Entry(0, None, resource, if_none_exist, root="ServiceRequest")
    return _read([entry], _resource_issues(entry), stored or {}, None)


def _bundle_identifier(ident: object, issues: list[Issue]) -> str | None:
    if ident is None:
        return None
    value = _obj(ident).get("value")
    system = _obj(ident).get("system", "")
    if not isinstance(value, str) or not value or not isinstance(system, str):
        issues.append(Issue("error", "invalid", "Bundle.identifier needs a string value (and system)",
                            ("Bundle.identifier",)))
        return None
    if len(system) > MAX_IDENTIFIER_PART or len(value) > MAX_IDENTIFIER_PART:
        issues.append(Issue("error", "too-long", "Bundle.identifier system and value are at most "
                                                 f"{MAX_IDENTIFIER_PART} characters each", ("Bundle.identifier",)))
        return None
    return f"{system}|{value}"


def _entry(index: int, raw: object, seen_urls: set[str], issues: list[Issue]) -> Entry | None:
    where = f"Bundle.entry[{index}]"
    if not isinstance(raw, dict):
        issues.append(Issue("error", "structure", "an entry must be an object", (where,)))
        return None
    resource = raw.get("resource")
    if not isinstance(resource, dict):
        issues.append(Issue("error", "required", "entry has no resource", (f"{where}.resource",)))
        return None
    request = _obj(raw.get("request"))
    if request.get("method") != "POST":
        issues.append(Issue("error", "not-supported", "only POST entries are supported in a referral",
                            (f"{where}.request.method",)))
    if_none_exist = request.get("ifNoneExist")
    if if_none_exist is not None and not isinstance(if_none_exist, str):
        issues.append(Issue("error", "structure", "ifNoneExist must be a string", (f"{where}.request.ifNoneExist",)))
        if_none_exist = None
    full_url = raw.get("fullUrl")
    if full_url is not None and not isinstance(full_url, str):
        issues.append(Issue("error", "structure", "fullUrl must be a string", (f"{where}.fullUrl",)))
        full_url = None
    elif full_url in seen_urls:
        issues.append(Issue("error", "invalid", "another entry has the same fullUrl, so references to it are "
                                                "ambiguous", (f"{where}.fullUrl",)))
    elif full_url:
        seen_urls.add(full_url)
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str) or rtype not in ACCEPTED_TYPES:
        issues.append(Issue("error", "not-supported", f"resource type {rtype!r} is not accepted in a referral",
                            (f"{where}.resource.resourceType",)))
        return None
    entry = Entry(index, full_url, resource, if_none_exist)
    issues.extend(_resource_issues(entry))
    return entry


def _resource_issues(entry: Entry) -> list[Issue]:
    return [*_validated(entry), *_identifier_issues(entry)]


# The texts of directory resources (the sender's Organization, Practitioner, PractitionerRole) found valid lately:
# a partner sends the same ones with every referral, and validating one costs 35-90 µs of CPU (the R4B model).
# Only valid ones, and never patient data: a Patient, ServiceRequest or Coverage differs per referral anyway.
_VALID_DIRECTORY: dict[str, None] = {}
_VALID_DIRECTORY_MAX = 512


def _validated(entry: Entry) -> list[Issue]:
    """validate_resource's issues of the entry's resource; a directory resource found valid before is not
    validated again (the outcome is a function of its JSON text alone)."""
    if entry.type not in DIRECTORY_TYPES:
        return validate_resource(entry.resource, path=entry.path)
    try:
        text = json.dumps(entry.resource, sort_keys=True, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        return validate_resource(entry.resource, path=entry.path)
    if text in _VALID_DIRECTORY:
        return []
    issues = validate_resource(entry.resource, path=entry.path)
    if not issues:
        if len(_VALID_DIRECTORY) >= _VALID_DIRECTORY_MAX:
            del _VALID_DIRECTORY[next(iter(_VALID_DIRECTORY))]  # the oldest
        _VALID_DIRECTORY[text] = None
    return issues


def _read(entries: list[Entry], issues: list[Issue], stored: Mapping[str, dict[str, Any]],
          bundle_identifier: str | None) -> Referral | list[Issue]:
    requests = [e for e in entries if e.type == "ServiceRequest"]
    if len(requests) != 1:
        issues.append(Issue("error", "invalid", "a referral holds exactly one ServiceRequest", ("Bundle.entry",)))
        return issues
    full_urls: dict[str, Entry] = {}
    for entry in entries:
        if entry.full_url:
            full_urls.setdefault(entry.full_url, entry)  # a repeated fullUrl is reported; the first one counts
    targets = _Targets(full_urls, stored)
    sr = requests[0]
    res = sr.resource
    issues.extend(_binding(res, "status", SERVICE_REQUEST_STATUS, sr.path, required=True))
    issues.extend(_binding(res, "intent", SERVICE_REQUEST_INTENT, sr.path, required=True))
    issues.extend(_binding(res, "priority", REQUEST_PRIORITY, sr.path, required=False))

    patient, patient_reference = _resolve_subject(sr, targets, issues)
    bsn = None
    if patient is not None:
        found = _identifier_value(patient.resource, (BSN_SYSTEM,))
        bsn = found[1] if found else None

    requester_org = _resolve_requester(sr, targets, issues)
    uzovi = _resolve_uzovi(entries, targets, issues)
    reported = {issue.expression for issue in issues}
    for entry in entries:
        issues.extend(issue for issue in unresolved_placeholders(entry.resource, entry.path, full_urls.keys())
                      if issue.expression not in reported)

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
    if not isinstance(value, str) or value not in allowed:
        return [Issue("error", "code-invalid",
                      f"{element} {value!r} is not in the required value set ({', '.join(sorted(allowed))})",
                      (f"{path}.{element}",))]
    return []


def _identifier_issues(entry: Entry) -> list[Issue]:
    issues = []
    for i, ident in enumerate(_identifiers(entry.resource)):
        issues.extend(_identifier_problems(ident, f"{entry.path}.identifier[{i}]"))
    return issues


def _identifier_problems(ident: dict[str, Any], where: str) -> Iterator[Issue]:
    system, value = ident.get("system", ""), ident.get("value", "")
    problem = validate_identifier(str(system), str(value))
    if problem:
        yield Issue("error", "value", problem, (f"{where}.value",))
    if len(str(system)) > MAX_IDENTIFIER_PART or len(str(value)) > MAX_IDENTIFIER_PART:
        yield Issue("error", "too-long", f"identifier system and value are at most {MAX_IDENTIFIER_PART} "
                                         "characters each", (where,))


def _resolve_subject(sr: Entry, targets: _Targets, issues: list[Issue]) -> tuple[Entry | None, str | None]:
    ref = _obj(sr.resource.get("subject")).get("reference")
    where = (f"{sr.path}.subject",)
    if not ref:
        issues.append(Issue("error", "required", "ServiceRequest.subject must reference the Patient", where))
        return None, None
    target = targets.resolve(ref, sr)
    if target is None:
        issues.append(Issue("error", "not-found", "ServiceRequest.subject resolves neither to a Patient in the "
                                                  "Bundle nor to a Patient stored here", where))
        return None, None
    resource, entry = target
    if resource.get("resourceType") != "Patient":
        issues.append(Issue("error", "invalid", "ServiceRequest.subject must be a Patient", where))
        return None, None
    return (entry, None) if entry else (None, ref)


def _org_identifier(resource: dict[str, Any]) -> tuple[str, str] | None:
    return _identifier_value(resource, (AGB_SYSTEM, URA_SYSTEM))


def _resolve_requester(sr: Entry, targets: _Targets, issues: list[Issue]) -> str | None:
    requester = _obj(sr.resource.get("requester"))
    where = f"{sr.path}.requester"
    found: tuple[str, str] | None = None
    ident = _obj(requester.get("identifier"))
    if ident.get("system") in (AGB_SYSTEM, URA_SYSTEM):
        problems = list(_identifier_problems(ident, f"{where}.identifier"))
        if problems:
            issues.extend(problems)
            return None
        found = (ident["system"], str(ident.get("value", "")))
    elif requester.get("reference"):
        target = targets.resolve(requester["reference"], sr)
        if target is None:
            issues.append(Issue("error", "not-found", "requester resolves neither to an entry of the Bundle nor to "
                                                      "a resource stored here", (where,)))
            return None
        resource, entry = target
        if resource.get("resourceType") not in REQUESTER_TYPES:
            issues.append(Issue("error", "invalid", "requester must be an Organization, Practitioner or "
                                                    "PractitionerRole", (where,)))
            return None
        found = _org_identifier(resource)
        if found is None and resource.get("resourceType") == "PractitionerRole":
            # A role names the practitioner; the organisation it works for carries the AGB or URA.
            organization = targets.resolve(_obj(resource.get("organization")).get("reference"), entry)
            if organization and organization[0].get("resourceType") == "Organization":
                found = _org_identifier(organization[0])
    if found is None:
        issues.append(Issue("error", "required", "requester must identify the referring organisation or "
                                                 "practitioner by AGB or URA", (where,)))
        return None
    return f"{found[0]}|{found[1]}"


def _resolve_uzovi(entries: list[Entry], targets: _Targets, issues: list[Issue]) -> str | None:
    """The insurer of the patient; a patient without Dutch insurance is still accepted (acute care)."""
    uzovi = None
    for cov in (e for e in entries if e.type == "Coverage"):
        issues.extend(_binding(cov.resource, "status", COVERAGE_STATUS, cov.path, required=True))
        payors = cov.resource.get("payor")
        for i, payor in enumerate(payors if isinstance(payors, list) else []):
            where = f"{cov.path}.payor[{i}]"
            ident = _obj(_obj(payor).get("identifier"))
            found = None
            if ident.get("system") == UZOVI_SYSTEM:
                problems = list(_identifier_problems(ident, f"{where}.identifier"))
                issues.extend(problems)
                found = None if problems else str(ident.get("value"))
            else:
                target = targets.resolve(_obj(payor).get("reference"), cov)
                if target is not None:
                    value = _identifier_value(target[0], (UZOVI_SYSTEM,))
                    found = value[1] if value else None
                if found is None:
                    issues.append(Issue("error", "required", "Coverage.payor must identify the insurer by UZOVI",
                                        (where,)))
            uzovi = uzovi or found
    return uzovi
