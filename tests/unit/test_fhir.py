"""Tests for shared.fhir against the published Nictiz nl-core examples and hand-made edge cases."""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from decimal import Decimal
from typing import Any

import pytest
from fhir.resources.R4B.operationoutcome import OperationOutcome

from shared.fhir import (
    FHIR_JSON,
    FHIR_XML,
    FhirError,
    Issue,
    iter_references,
    operation_outcome,
    parse_body,
    ref_id,
    resolve_bundle_references,
    to_xml,
    unresolved_placeholders,
    validate_resource,
)
from tests.conftest import NL_CORE

EXAMPLES = sorted(path.stem for path in NL_CORE.glob("*.xml"))
BSN = "111222333"


def load_json(stem: str) -> dict:
    # Same number handling as parse_body, so decimals compare with their precision intact.
    return json.loads((NL_CORE / f"{stem}.json").read_bytes(), parse_float=Decimal)


def load_xml(stem: str) -> dict:
    return parse_body((NL_CORE / f"{stem}.xml").read_bytes(), FHIR_XML)


def comparable(node: Any) -> Any:
    """Remove what the provided JSON files got from their lossy converter rather than from the XML.

    The .json files were made with fhir.resources' XML loader (fhir_core.xml_utils), which
    - stores the narrative as lxml ``etree.tostring(div)``: ASCII output turns "é" into "&#233;", with_tail=True
      appends the whitespace that follows </div> in the source (it belongs to <text>, not to the div), and
      empty elements come out as <br/> where ElementTree writes <br />; same XHTML, so compare its C14N form;
    - turns XML comments into a "fhir_comments" property (Encounter "_status"), which FHIR R4 JSON does not have;
      XML comments are not content, so parse_body drops them.
    """
    if isinstance(node, list):
        return [comparable(item) for item in node]
    if not isinstance(node, dict):
        return node
    result = {}
    for key, value in node.items():
        if key == "div" and isinstance(value, str):
            result[key] = ET.canonicalize(value)
        elif key != "fhir_comments" and ((cleaned := comparable(value)) != {} or value == {}):
            result[key] = cleaned
    return result


def transaction_bundle() -> dict:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0",
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": BSN}],
                },
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "fullUrl": "urn:uuid:4b6e2f1a-8a3c-4f0e-9d55-2a1c7f3b9e21",
                "resource": {
                    "resourceType": "Coverage",
                    "status": "active",
                    "beneficiary": {"reference": "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0"},
                    "payor": [{"identifier": {"system": "http://fhir.nl/fhir/NamingSystem/uzovi", "value": "3332"}}],
                },
                "request": {"method": "POST", "url": "Coverage"},
            },
            {
                "fullUrl": "urn:uuid:9f0d7c52-3e1b-4a6f-8c2d-5b7e1a0f4d93",
                "resource": {
                    "resourceType": "ServiceRequest",
                    "status": "active",
                    "intent": "order",
                    "subject": {"reference": "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0"},
                    "insurance": [{"reference": "urn:uuid:4b6e2f1a-8a3c-4f0e-9d55-2a1c7f3b9e21"}],
                    "requester": {"reference": "Practitioner/nl-core-HealthProfessional-Practitioner-01"},
                    "performer": [{"reference": "urn:uuid:00000000-0000-4000-8000-000000000000"}],
                },
                "request": {"method": "POST", "url": "ServiceRequest"},
            },
        ],
    }


def expressions(issues: list[Issue]) -> set[str]:
    return {expression for issue in issues for expression in issue.expression}


def test_nl_core_examples_are_present() -> None:
    assert EXAMPLES
    assert all((NL_CORE / f"{stem}.json").exists() for stem in EXAMPLES)


@pytest.mark.parametrize("stem", EXAMPLES)
def test_every_nl_core_json_example_validates_without_issues(stem: str) -> None:
    assert validate_resource(load_json(stem)) == []


@pytest.mark.parametrize("stem", EXAMPLES)
def test_every_nl_core_xml_example_parses_to_its_json_counterpart(stem: str) -> None:
    assert comparable(load_xml(stem)) == comparable(load_json(stem))


@pytest.mark.parametrize("stem", EXAMPLES)
def test_parsed_nl_core_xml_validates_without_issues(stem: str) -> None:
    assert validate_resource(load_xml(stem)) == []


def test_converter_artifacts_are_only_in_the_provided_json() -> None:
    from_xml, from_json = load_xml("nl-core-Encounter-01"), load_json("nl-core-Encounter-01")
    assert from_json["_status"] == {"fhir_comments": from_json["_status"]["fhir_comments"]}
    assert "_status" not in from_xml
    assert from_xml["text"]["div"].endswith("</div>")
    assert "Patiënt" in load_xml("nl-core-EpisodeOfCare-01")["text"]["div"]
    assert "Pati&#235;nt" in load_json("nl-core-EpisodeOfCare-01")["text"]["div"]


def test_nl_core_patient_xml_keeps_primitive_extensions_and_repeats() -> None:
    patient = load_xml("nl-core-Patient-01")
    official = patient["name"][0]
    assert official["given"] == ["Johanna", "Petronella", "Maria"]
    assert [ext["extension"][0]["valueCode"] for ext in official["_given"]] == ["BR", "BR", "BR"]
    assert patient["_gender"]["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == "F"
    assert patient["deceasedBoolean"] is False and patient["multipleBirthBoolean"] is True
    assert isinstance(patient["contact"][0]["address"], dict)
    assert patient["text"]["div"].startswith('<div xmlns="http://www.w3.org/1999/xhtml">')


@pytest.mark.parametrize("stem", EXAMPLES)
def test_to_xml_round_trips_every_nl_core_xml_example(stem: str) -> None:
    parsed = load_xml(stem)
    assert parse_body(to_xml(parsed), FHIR_XML) == parsed


@pytest.mark.parametrize("stem", EXAMPLES)
def test_to_xml_round_trips_every_nl_core_json_example(stem: str) -> None:
    original = load_json(stem)
    assert comparable(parse_body(to_xml(original), FHIR_XML)) == comparable(original)


def test_to_xml_writes_fhir_namespace_element_order_and_attributes() -> None:
    root = ET.fromstring(to_xml(load_json("nl-core-Patient-01")))
    assert root.tag == "{http://hl7.org/fhir}Patient"
    names = [child.tag.split("}")[1] for child in root]
    assert names.index("id") < names.index("text") < names.index("extension") < names.index("identifier")
    extension = root.find("{http://hl7.org/fhir}extension")
    assert extension is not None
    assert extension.get("url") == "http://hl7.org/fhir/StructureDefinition/patient-nationality"
    assert root.find("{http://hl7.org/fhir}text/{http://www.w3.org/1999/xhtml}div") is not None


def test_xml_with_comments_parses() -> None:
    body = b"""<?xml version="1.0" encoding="UTF-8"?>
    <!-- before the root -->
    <Patient xmlns="http://hl7.org/fhir">
      <!-- before id -->
      <id value="p1"/>
      <active value="true"><!-- inside a primitive --></active>
      <name><!-- inside a complex element --><family value="Jansen"/></name>
    </Patient>"""
    assert parse_body(body, FHIR_XML) == {
        "resourceType": "Patient",
        "id": "p1",
        "active": True,
        "name": [{"family": "Jansen"}],
    }


def test_xml_with_namespace_prefixes_parses() -> None:
    body = b"""<f:Patient xmlns:f="http://hl7.org/fhir" xmlns:h="http://www.w3.org/1999/xhtml">
      <f:text><f:status value="generated"/><h:div><h:p>Jansen</h:p></h:div></f:text>
      <f:birthDate value="1980-02-29"/>
    </f:Patient>"""
    assert parse_body(body, "application/xml") == {
        "resourceType": "Patient",
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml"><p>Jansen</p></div>'},
        "birthDate": "1980-02-29",
    }


def test_xml_primitive_extension_becomes_underscore_property() -> None:
    body = b"""<Patient xmlns="http://hl7.org/fhir">
      <name>
        <given value="Jan"/>
        <given id="g2"><extension url="http://hl7.org/fhir/StructureDefinition/data-absent-reason">
          <valueCode value="unknown"/></extension></given>
      </name>
      <birthDate value="1980-02-29"><extension url="http://example.org/precision">
        <valueDecimal value="1.50"/></extension></birthDate>
    </Patient>"""
    parsed = parse_body(body, "text/xml; charset=utf-8")
    assert parsed["name"] == [
        {
            "given": ["Jan", None],
            "_given": [
                None,
                {
                    "id": "g2",
                    "extension": [
                        {"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}
                    ],
                },
            ],
        }
    ]
    decimal = parsed["_birthDate"]["extension"][0]["valueDecimal"]
    assert decimal == Decimal("1.50") and str(decimal) == "1.50"
    assert validate_resource(parsed) == []
    assert b'value="1.50"' in to_xml(parsed)


def test_xml_contained_resources_and_bundle_entries_nest_as_resources() -> None:
    body = b"""<Bundle xmlns="http://hl7.org/fhir">
      <type value="collection"/>
      <total value="1"/>
      <entry><resource><Patient>
        <contained><Organization><id value="o1"/><active value="true"/></Organization></contained>
        <managingOrganization><reference value="#o1"/></managingOrganization>
      </Patient></resource></entry>
    </Bundle>"""
    parsed = parse_body(body, FHIR_XML)
    patient = parsed["entry"][0]["resource"]
    assert parsed["total"] == 1
    assert patient["contained"] == [{"resourceType": "Organization", "id": "o1", "active": True}]
    assert validate_resource(parsed) == []


@pytest.mark.parametrize(
    "body",
    [
        b'<!DOCTYPE Patient SYSTEM "http://example.org/patient.dtd"><Patient xmlns="http://hl7.org/fhir"/>',
        b'<!DOCTYPE Patient [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b'<Patient xmlns="http://hl7.org/fhir"><id value="&xxe;"/></Patient>',
        b'<!DOCTYPE Patient [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b'<Patient xmlns="http://hl7.org/fhir"><id value="&b;"/></Patient>',
    ],
    ids=["external-dtd", "external-entity", "entity-expansion"],
)
def test_xml_with_doctype_or_entities_is_refused_with_400(body: bytes) -> None:
    with pytest.raises(FhirError) as caught:
        parse_body(body, FHIR_XML)
    assert caught.value.status_code == 400
    assert caught.value.issues[0].code == "security"


@pytest.mark.parametrize(
    ("body", "content_type", "expression"),
    [
        (b"<Patient xmlns='http://hl7.org/fhir'><id value='x'/>", FHIR_XML, ()),
        (b"<Patient xmlns='http://hl7.org/fhir'><nickname value='Jo'/></Patient>", FHIR_XML, ("Patient.nickname",)),
        (b"<Patient xmlns='http://hl7.org/fhir'><gender value='male'/><gender value='other'/></Patient>", FHIR_XML,
         ("Patient.gender",)),
        (b"<Patient xmlns='http://hl7.org/fhir'><active value='yes'/></Patient>", FHIR_XML, ("Patient.active",)),
        (b"<Patient><id value='x'/></Patient>", FHIR_XML, ()),
        (b'{"resourceType": "Patient",', FHIR_JSON, ()),
        (b'{"resourceType": "Patient", "id": "a", "id": "b"}', None, ()),
        (b'["Patient"]', "application/json", ()),
    ],
    ids=["truncated", "unknown-element", "repeated-single", "bad-boolean", "no-namespace", "bad-json",
         "duplicate-key", "not-an-object"],
)
def test_malformed_body_is_rejected_with_400(body: bytes, content_type: str | None, expression: tuple) -> None:
    with pytest.raises(FhirError) as caught:
        parse_body(body, content_type)
    assert caught.value.status_code == 400
    assert caught.value.issues[0].code in ("structure", "value")
    assert caught.value.issues[0].expression == expression


def test_unsupported_content_type_is_rejected_with_415() -> None:
    with pytest.raises(FhirError) as caught:
        parse_body(b"resourceType=Patient", "application/x-www-form-urlencoded")
    assert caught.value.status_code == 415


@pytest.mark.parametrize("content_type", [None, "", FHIR_JSON, "application/json; charset=UTF-8"])
def test_json_body_parses_and_keeps_decimal_precision(content_type: str | None) -> None:
    body = b'{"resourceType": "Observation", "valueQuantity": {"value": 37.50}, "status": "final"}'
    parsed = parse_body(body, content_type)
    assert str(parsed["valueQuantity"]["value"]) == "37.50"


def test_wrong_type_for_birth_date_is_reported_at_its_path() -> None:
    resource = {"resourceType": "Patient", "birthDate": 19340428}
    issues = validate_resource(resource)
    assert resource == {"resourceType": "Patient", "birthDate": 19340428}
    assert expressions(issues) == {"Patient.birthDate"}
    assert all(issue.severity == "error" for issue in issues)


def test_unknown_element_is_reported_as_structure_issue() -> None:
    issues = validate_resource({"resourceType": "Patient", "name": [{"family": "Jansen", "nickname": "Jo"}]})
    assert [(issue.code, issue.expression) for issue in issues] == [("structure", ("Patient.name[0].nickname",))]


def test_missing_resource_type_is_reported() -> None:
    issues = validate_resource({"id": "x"}, path="Bundle.entry[0].resource")
    assert [(issue.code, issue.expression) for issue in issues] == [("required", ("Bundle.entry[0].resource",))]


def test_path_prefix_is_used_for_bundle_entries() -> None:
    resource = {"resourceType": "ServiceRequest", "status": "active", "intent": "order"}
    issues = validate_resource(resource, path="Bundle.entry[1].resource")
    assert [(issue.code, issue.expression) for issue in issues] == [("required", ("Bundle.entry[1].resource.subject",))]


def test_unknown_required_code_is_reported() -> None:
    resource = {
        "resourceType": "ServiceRequest",
        "status": "bogus",
        "intent": "order",
        "subject": {"reference": "Patient/1"},
    }
    assert [(issue.code, issue.expression) for issue in validate_resource(resource)] == [
        ("value", ("ServiceRequest.status",))
    ]


def test_lax_json_types_that_pydantic_accepts_are_reported() -> None:
    resource = {"resourceType": "Patient", "active": "yes", "multipleBirthInteger": "2", "name": {"family": "Jansen"}}
    assert expressions(validate_resource(resource)) == {
        "Patient.active",
        "Patient.multipleBirthInteger",
        "Patient.name",
    }


def test_validation_diagnostics_never_contain_a_bsn() -> None:
    resource = {"resourceType": "Patient", "id": f"bsn-{BSN}!", "identifier": [{"value": int(BSN)}]}
    issues = validate_resource(resource)
    assert issues and not any(BSN in issue.diagnostics for issue in issues)
    assert BSN not in Issue("error", "value", f"bad identifier {BSN}").diagnostics


def test_operation_outcome_validates_as_r4b_operation_outcome() -> None:
    issues = [
        Issue("error", "required", "Missing subject", ("ServiceRequest.subject",)),
        Issue("warning", "business-rule", "No UZOVI on Coverage"),
    ]
    outcome = operation_outcome(issues)
    OperationOutcome.model_validate(outcome)
    assert validate_resource(outcome) == []
    assert outcome["issue"][0]["expression"] == ["ServiceRequest.subject"]
    assert "expression" not in outcome["issue"][1]


def test_operation_outcome_without_issues_still_has_one_issue() -> None:
    outcome = operation_outcome([])
    OperationOutcome.model_validate(outcome)
    assert outcome["issue"][0]["severity"] == "information"


def test_fhir_error_accepts_a_single_issue() -> None:
    error = FhirError(404, Issue("error", "not-found", "Patient/1 not found"))
    assert error.status_code == 404 and len(error.issues) == 1


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("Patient/123", ("Patient", "123")),
        ("https://fhir.regiozorg.nl/fhir/Coverage/c-1", ("Coverage", "c-1")),
        ("Patient/123/_history/2", ("Patient", "123")),
        ("urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0", None),
        ("#contained", None),
        ("Unknown/1", None),
        ("Patient?identifier=http://fhir.nl/fhir/NamingSystem/bsn|x", None),
    ],
)
def test_ref_id(reference: str, expected: tuple[str, str] | None) -> None:
    assert ref_id(reference) == expected


def test_resolve_bundle_references_rewrites_urn_uuid_references() -> None:
    bundle = transaction_bundle()
    original = copy.deepcopy(bundle)
    assigned = {
        "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0": "Patient/p-1",
        "urn:uuid:4b6e2f1a-8a3c-4f0e-9d55-2a1c7f3b9e21": "Coverage/c-1",
        "urn:uuid:9f0d7c52-3e1b-4a6f-8c2d-5b7e1a0f4d93": "ServiceRequest/s-1",
    }
    resolved = resolve_bundle_references(bundle, assigned)
    coverage, service_request = (entry["resource"] for entry in resolved["entry"][1:])
    assert coverage["beneficiary"] == {"reference": "Patient/p-1"}
    assert service_request["subject"] == {"reference": "Patient/p-1"}
    assert service_request["insurance"] == [{"reference": "Coverage/c-1"}]
    assert service_request["requester"]["reference"] == "Practitioner/nl-core-HealthProfessional-Practitioner-01"
    assert service_request["performer"][0]["reference"] == "urn:uuid:00000000-0000-4000-8000-000000000000"
    assert resolved["entry"][0]["fullUrl"] == original["entry"][0]["fullUrl"]
    assert bundle == original
    assert validate_resource(resolved) == []


def test_resolve_bundle_references_resolves_relative_references_against_absolute_full_urls() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": "https://partner.example/fhir/Patient/7", "resource": {"resourceType": "Patient"}},
            {
                "fullUrl": "https://partner.example/fhir/Coverage/8",
                "resource": {"resourceType": "Coverage", "beneficiary": {"reference": "Patient/7"}},
            },
        ],
    }
    resolved = resolve_bundle_references(bundle, {"https://partner.example/fhir/Patient/7": "Patient/p-1"})
    assert resolved["entry"][1]["resource"]["beneficiary"] == {"reference": "Patient/p-1"}


def test_iter_references_yields_locations_depth_first() -> None:
    service_request = transaction_bundle()["entry"][2]["resource"]
    assert list(iter_references(service_request)) == [
        ("ServiceRequest.subject.reference", "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0"),
        ("ServiceRequest.insurance[0].reference", "urn:uuid:4b6e2f1a-8a3c-4f0e-9d55-2a1c7f3b9e21"),
        ("ServiceRequest.requester.reference", "Practitioner/nl-core-HealthProfessional-Practitioner-01"),
        ("ServiceRequest.performer[0].reference", "urn:uuid:00000000-0000-4000-8000-000000000000"),
    ]
    assert ("Bundle.entry[1].resource.beneficiary.reference", service_request["subject"]["reference"]) in list(
        iter_references(transaction_bundle())
    )


def test_xml_element_that_must_be_an_attribute_is_rejected() -> None:
    body = b"<Patient xmlns='http://hl7.org/fhir'><extension><url value='http://x'/></extension></Patient>"
    with pytest.raises(FhirError) as caught:
        parse_body(body, FHIR_XML)
    assert caught.value.issues[0].expression == ("Patient.extension[0].url",)


OBSERVATION_WITH_EMPTY_ELEMENTS = [
    (b'{"resourceType": "Observation", "status": "final", "code": {"text": "RR"}, "identifier": [{}]}', FHIR_JSON,
     {"Observation.identifier[0]"}),
    (b'{"resourceType": "Observation", "status": "final", "code": {"text": "RR"}, "note": []}', FHIR_JSON,
     {"Observation.note"}),
    (b'{"resourceType": "Observation", "status": "final", "code": {}}', FHIR_JSON, {"Observation.code"}),
    (b'{"resourceType": "Observation", "status": "final", "code": {"text": ""}, "_status": {"extension": []},'
     b' "contained": [{"resourceType": "Patient", "name": [{"given": []}]}]}', FHIR_JSON,
     {"Observation.code.text", "Observation.status.extension", "Observation.contained[0].name[0].given"}),
    (b"<Observation xmlns='http://hl7.org/fhir'><identifier/><status value='final'/><code/>"
     b"<!-- a comment is no content --><note><text value=''/></note></Observation>", FHIR_XML,
     {"Observation.identifier[0]", "Observation.code", "Observation.note[0].text"}),
]


@pytest.mark.parametrize(("body", "content_type", "empty"), OBSERVATION_WITH_EMPTY_ELEMENTS,
                         ids=["identifier", "note", "code", "nested", "xml"])
def test_every_empty_element_is_refused_with_400_at_its_location(body: bytes, content_type: str,
                                                                 empty: set[str]) -> None:
    with pytest.raises(FhirError) as caught:
        parse_body(body, content_type)
    assert caught.value.status_code == 400
    assert expressions(caught.value.issues) == empty
    assert {issue.code for issue in caught.value.issues} == {"structure"}


def test_validation_reports_empty_elements_of_a_resource_not_read_from_a_body() -> None:
    task = {"resourceType": "Task", "status": "completed", "intent": "order", "businessStatus": {},
            "output": [{"type": {"coding": []}, "valueString": "x"}]}
    assert expressions(validate_resource(task)) == {"Task.businessStatus", "Task.output[0].type.coding"}


def test_placeholders_that_name_no_entry_are_located_at_their_reference_element() -> None:
    service_request = {
        "resourceType": "ServiceRequest", "subject": {"reference": "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0"},
        "reasonReference": [{"reference": "urn:uuid:75ca5045-3136-4da5-8f17-03448485e22b"}],
        "extension": [{"url": "https://x.example/e", "valueReference": {"reference": "URN:OID:1.2.3"}}],
        "contained": [{"resourceType": "Condition", "subject": {"reference": "urn:uuid:1"}}],
        "requester": {"reference": "Practitioner/p1"}, "insurance": [{"reference": "#coverage"}],
    }
    unresolved = unresolved_placeholders(service_request, "Bundle.entry[2].resource",
                                         {"urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0"})
    assert expressions(unresolved) == {"Bundle.entry[2].resource.reasonReference[0]",
                                       "Bundle.entry[2].resource.extension[0].valueReference",
                                       "Bundle.entry[2].resource.contained[0].subject"}
    assert {issue.code for issue in unresolved} == {"not-found"}
    assert expressions(unresolved_placeholders(service_request, "ServiceRequest", ())) == {
        "ServiceRequest.subject", "ServiceRequest.reasonReference[0]", "ServiceRequest.extension[0].valueReference",
        "ServiceRequest.contained[0].subject"}


@pytest.mark.parametrize("body", [
    b'{"resourceType": "Patient", "gender": "male\\b"}',
    b'{"resourceType": "Patient", "gender": "male\\f"}',
    b'{"resourceType": "Patient", "gender": "male\\u001F"}',
    b'{"resourceType": "Patient", "gender": "male\\u0000"}',
    b'{"resourceType": "Patient", "gend\\u0001er": "male"}',
    '{"resourceType": "Patient", "gender": "male\\u0007"}'.encode("utf-16"),
], ids=["backspace", "form-feed", "upper-case-hex", "nul", "in-a-key", "utf-16"])
def test_every_escaped_control_character_is_refused(body: bytes) -> None:
    with pytest.raises(FhirError) as caught:
        parse_body(body, FHIR_JSON)
    assert caught.value.status_code == 400
    assert "control characters" in caught.value.issues[0].diagnostics


@pytest.mark.parametrize("body", [
    b'{"resourceType": "Patient", "name": [ \n\t ]}',
    b'{"resourceType": "Patient", "name": [{ \r\n }]}',
    '{"resourceType": "Patient", "gender": ""}'.encode("utf-16"),
    '{"resourceType": "Patient", "gender": ""}'.encode("utf-32"),
], ids=["array-with-whitespace", "object-with-whitespace", "utf-16", "utf-32"])
def test_empty_elements_are_found_however_the_json_is_written(body: bytes) -> None:
    with pytest.raises(FhirError) as caught:
        parse_body(body, FHIR_JSON)
    assert caught.value.status_code == 400
    assert {issue.code for issue in caught.value.issues} == {"structure"}


def test_escapes_that_are_no_control_characters_are_accepted() -> None:
    body = b'{"resourceType": "Patient", "gender": "male", "name": [{"text": "Ren\\u00e9e \\\\b \\"x\\" []{}\\t"}]}'
    assert parse_body(body, FHIR_JSON)["name"][0]["text"] == 'Ren\u00e9e \\b "x" []{}\t'
