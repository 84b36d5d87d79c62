"""FHIRPath Patch as FHIR R4 defines it (add, insert, delete, replace, move; values as value[x] or parts), applied to
a Task as the product stores it, and compared with the JSON Patch that means the same."""

from __future__ import annotations

from typing import Any

import jsonpatch
import pytest

from infra.client import ACT_CODE, TASK_OUTPUT, completion_patch
from shared.fhir import FhirError
from shared.fhirpatch import apply_fhirpath_patch

START, END = "2026-11-30T21:10:00+01:00", "2026-11-30T21:40:00+01:00"
DELIVERED = {"coding": [{"system": TASK_OUTPUT, "code": "delivered-contact"}]}
HOME_VISIT = {"system": ACT_CODE, "code": "HH"}


def in_progress_task() -> dict[str, Any]:
    return {"resourceType": "Task", "id": "t1", "meta": {"versionId": "3"}, "status": "in-progress",
            "intent": "order", "for": {"identifier": {"system": "https://regiozorg.example/p", "value": "p-1"}},
            "owner": {"identifier": {"system": "http://fhir.nl/fhir/NamingSystem/ura", "value": "90000020"}}}


def operation(kind: str, path: str, **parts: Any) -> dict[str, Any]:
    """One operation parameter; keyword arguments are parts: a (value key, value) tuple, or a list of parts."""
    built = [{"name": "type", "valueCode": kind}, {"name": "path", "valueString": path}]
    for name, given in parts.items():
        if isinstance(given, list):
            built.append({"name": name, "part": given})
        else:
            built.append({"name": name, given[0]: given[1]})
    return {"name": "operation", "part": built}


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": list(operations)}


def delivered_contact_parts() -> list[dict[str, Any]]:
    return [{"name": "type", "valueCodeableConcept": DELIVERED}, {"name": "value", "valueCoding": HOME_VISIT}]


def completion() -> dict[str, Any]:
    """The owner's completion as a partner sends it by FHIRPath Patch (the issue's example)."""
    return patch(operation("replace", "Task.status", value=("valueCode", "completed")),
                 operation("add", "Task", name=("valueString", "executionPeriod"),
                           value=("valuePeriod", {"start": START, "end": END})),
                 operation("add", "Task", name=("valueString", "output"), value=delivered_contact_parts()))


def test_completion_with_a_delivered_contact_given_as_parts_equals_the_json_patch() -> None:
    task = in_progress_task()
    by_json_patch = jsonpatch.apply_patch(task, completion_patch(contact="HH", start=START, end=END))
    patched = apply_fhirpath_patch(task, completion())
    assert patched == by_json_patch
    assert patched["output"] == [{"type": DELIVERED, "valueCoding": HOME_VISIT}]
    assert task == in_progress_task()  # the stored Task is not touched


def test_insert_move_replace_and_delete_of_list_items_and_choice_values() -> None:
    task = {**in_progress_task(), "output": [{"type": DELIVERED, "valueCoding": HOME_VISIT}]}
    remote = [{"name": "type", "valueCodeableConcept": {"text": "advies"}},
              {"name": "value", "valueCoding": {"system": ACT_CODE, "code": "VR"}}]
    inserted = apply_fhirpath_patch(task, patch(operation("insert", "Task.output", index=("valueInteger", 0),
                                                          value=remote)))
    assert [o["valueCoding"]["code"] for o in inserted["output"]] == ["VR", "HH"]
    moved = apply_fhirpath_patch(inserted, patch(operation("move", "Task.output", source=("valueInteger", 0),
                                                           destination=("valueInteger", 1))))
    assert [o["valueCoding"]["code"] for o in moved["output"]] == ["HH", "VR"]
    retyped = apply_fhirpath_patch(moved, patch(operation("replace", "Task.output[1].value",
                                                          value=("valueString", "telefonisch advies"))))
    assert retyped["output"][1] == {"type": {"text": "advies"}, "valueString": "telefonisch advies"}
    recoded = apply_fhirpath_patch(moved, patch(operation("replace", "Task.output[0].value.code",
                                                          value=("valueCode", "AMB"))))
    assert recoded["output"][0]["valueCoding"] == {"system": ACT_CODE, "code": "AMB"}
    deleted = apply_fhirpath_patch(moved, patch(operation("delete", "Task.output[0]"),
                                                operation("delete", "Task.output[0]")))
    assert "output" not in deleted  # the last item gone, the list is absent rather than empty


def test_delete_of_an_absent_element_changes_nothing_and_leaves_no_empty_parent() -> None:
    task = {**in_progress_task(), "executionPeriod": {"start": START}}
    assert apply_fhirpath_patch(task, patch(operation("delete", "Task.businessStatus"))) == task
    assert "executionPeriod" not in apply_fhirpath_patch(task, patch(operation("delete", "Task.executionPeriod.start")))


def test_add_builds_nested_parts_and_replaces_a_single_element() -> None:
    period = [{"name": "start", "valueDateTime": START}]
    patched = apply_fhirpath_patch({**in_progress_task(), "executionPeriod": {"start": END}},
                                   patch(operation("add", "Task", name=("valueString", "executionPeriod"),
                                                   value=period),
                                         operation("add", "Task.executionPeriod", name=("valueString", "end"),
                                                   value=("valueDateTime", END))))
    assert patched["executionPeriod"] == {"start": START, "end": END}


@pytest.mark.parametrize(("parameters", "status", "location"), [
    ({"resourceType": "Bundle"}, 400, "Parameters"),
    (patch(), 400, "Parameters.parameter"),
    (patch({"name": "op", "part": [{"name": "type", "valueCode": "add"}]}), 400, "Parameters.parameter[0].name"),
    (patch(operation("upsert", "Task.status", value=("valueCode", "x"))), 400, "Parameters.parameter[0].part[0]"),
    (patch(operation("replace", "Task.status")), 400, "Parameters.parameter[0]"),
    (patch(operation("add", "Task", value=("valueCode", "x"))), 400, "Parameters.parameter[0]"),
    (patch({"name": "operation", "part": []}), 400, "Parameters.parameter[0].part"),
    (patch(operation("replace", "Task.businessStatus", value=("valueCodeableConcept", {"text": "x"}))), 422,
     "Parameters.parameter[0]"),
    (patch(operation("replace", "Task.output.where(type.text = 'x')", value=("valueString", "x"))), 422,
     "Parameters.parameter[0]"),
    (patch(operation("replace", "ServiceRequest.status", value=("valueCode", "x"))), 422, "Parameters.parameter[0]"),
    (patch(operation("add", "Task", name=("valueString", "colour"), value=("valueString", "red"))), 422,
     "Parameters.parameter[0]"),
    (patch(operation("add", "Task.output[0]", name=("valueString", "value"),
                     value=[{"name": "code", "valueCode": "HH"}])), 422, "Parameters.parameter[0]"),
    (patch(operation("insert", "Task.output", index=("valueInteger", 2), value=delivered_contact_parts())), 422,
     "Parameters.parameter[0]"),
    (patch(operation("move", "Task.output", source=("valueInteger", 0), destination=("valueInteger", 1))), 422,
     "Parameters.parameter[0]"),
    (patch(operation("replace", "Task.identifier", value=("valueIdentifier", {"value": "x"}))), 422,
     "Parameters.parameter[0]"),
    (patch(operation("insert", "Task.status", index=("valueInteger", 0), value=("valueCode", "x"))), 422,
     "Parameters.parameter[0]"),
    (patch(operation("add", "Task", name=("valueString", "output"),
                     value=[{"name": "type", "valueCodeableConcept": DELIVERED},
                            {"name": "type", "valueCodeableConcept": DELIVERED}])), 422,
     "Parameters.parameter[0].part[3].part[1]"),
])
def test_a_patch_that_is_malformed_is_400_and_one_that_cannot_apply_is_422_at_its_operation(
        parameters: dict[str, Any], status: int, location: str) -> None:
    task = {**in_progress_task(), "identifier": [{"value": "a"}, {"value": "b"}],
            "output": [{"type": DELIVERED, "valueCoding": HOME_VISIT}]}
    with pytest.raises(FhirError) as caught:
        apply_fhirpath_patch(task, parameters)
    assert caught.value.status_code == status
    assert location in {e for issue in caught.value.issues for e in issue.expression}
