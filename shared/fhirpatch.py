"""FHIRPath Patch (FHIR R4 fhirpatch.html): a Parameters resource of add, insert, delete, replace and move
operations, applied to a resource held as FHIR JSON, with values given as value[x] or built from parts.

Paths are the simple FHIRPath a patch of workflow elements needs: the resource type, then element names, each with an
optional `[n]` indexer (`Task.status`, `Task.output[0].value`, `Task.executionPeriod.end`); functions such as
`where()` are refused as not supported. No library applies FHIRPath Patch to plain JSON (fhirpathpy evaluates
expressions to values, not to the places that hold them), hence this module.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fhir_core.fhirabstractmodel import FHIRAbstractModel

from shared.fhir import FhirElement, FhirError, Issue, elements, resource_model, validate_resource

OPERATIONS = ("add", "insert", "delete", "replace", "move")
# Which parts each operation type takes (FHIR R4 fhirpatch.html, "Operations"), besides `type` and `path`.
_PARTS = {"add": {"name", "value"}, "insert": {"value", "index"}, "delete": set(), "replace": {"value"},
          "move": {"source", "destination"}}
_SEGMENT = re.compile(r"(?P<name>[A-Za-z][A-Za-z0-9_]*)(\[(?P<index>[0-9]{1,6})\])?")

Pointer = tuple[str | int, ...]
Model = type[FHIRAbstractModel]


@dataclass(frozen=True)
class _Found:
    """An element a path resolved to: where it is, its element definition, and the model of its type."""

    pointer: Pointer
    element: FhirElement | None  # None for the resource itself
    model: Model | None  # None for a primitive (or a contained resource, which paths do not enter)


@dataclass(frozen=True)
class _Operation:
    kind: str
    path: list[tuple[str, int | None]]
    parts: dict[str, tuple[int, dict[str, Any]]]
    where: str


def apply_fhirpath_patch(resource: dict[str, Any], parameters: Any) -> dict[str, Any]:
    """The resource after the operations of a FHIRPath Patch, applied in order to a copy (`resource` is untouched).

    Raises FhirError 400 when `parameters` is not a valid FHIRPath Patch (not a Parameters resource, an operation
    without its type, path or value, an unknown type), and 422, located at `Parameters.parameter[i]`, when an
    operation cannot be applied: a path that is not supported or does not resolve as its type requires (replace: one
    element; delete: at most one; add: one parent; insert and move: one list with the index in range), an element
    the resource's type does not have, a choice element given without its type. The result is not validated: that is
    the caller's job, as for a JSON Patch.
    """
    operations = _operations(parameters, str(resource.get("resourceType")))
    patched = copy.deepcopy(resource)
    for operation in operations:
        _apply(patched, operation)
    return patched


# --- reading the Parameters -------------------------------------------------------------------------------


def _bad(where: str, message: str, code: str = "structure") -> FhirError:
    return FhirError(400, Issue("error", code, f"{where}: {message}", (where,)))


def _unapplicable(where: str, message: str, code: str = "processing") -> FhirError:
    return FhirError(422, Issue("error", code, f"{where}: {message}", (where,)))


def _operations(parameters: Any, resource_type: str) -> list[_Operation]:
    if not isinstance(parameters, dict) or parameters.get("resourceType") != "Parameters":
        raise _bad("Parameters", "a FHIRPath Patch is a Parameters resource")
    issues = validate_resource(parameters)
    if issues:
        raise FhirError(400, issues)
    operations = []
    for index, parameter in enumerate(parameters.get("parameter") or []):
        where = f"Parameters.parameter[{index}]"
        if parameter.get("name") != "operation":
            raise _bad(f"{where}.name", "each parameter of a FHIRPath Patch is named 'operation'")
        parts: dict[str, tuple[int, dict[str, Any]]] = {}
        for number, part in enumerate(parameter.get("part") or []):
            if part.get("name") in parts:
                raise _bad(f"{where}.part[{number}]", f"part '{part.get('name')}' is given twice")
            parts[str(part.get("name"))] = (number, part)
        kind = _primitive(parts, "type", "valueCode", where)
        if kind not in OPERATIONS:
            raise _bad(f"{where}.part[{parts['type'][0]}]", f"type must be one of {', '.join(OPERATIONS)}", "value")
        unexpected = sorted(set(parts) - {"type", "path"} - _PARTS[kind])
        missing = sorted(_PARTS[kind] - set(parts))
        if unexpected or missing:
            raise _bad(where, f"a {kind} operation takes type, path" + "".join(f", {p}" for p in sorted(_PARTS[kind]))
                       + (f"; missing: {', '.join(missing)}" if missing else "")
                       + (f"; not expected: {', '.join(unexpected)}" if unexpected else ""))
        path = _path(_primitive(parts, "path", "valueString", where), resource_type, where)
        operations.append(_Operation(kind, path, parts, where))
    if not operations:
        raise _bad("Parameters.parameter", "a FHIRPath Patch has at least one operation", "required")
    return operations


def _primitive(parts: dict[str, tuple[int, dict[str, Any]]], name: str, value_key: str, where: str) -> Any:
    if name not in parts:
        raise _bad(where, f"the operation has no '{name}' part", "required")
    number, part = parts[name]
    if value_key not in part:
        raise _bad(f"{where}.part[{number}]", f"'{name}' is given as {value_key}")
    return part[value_key]


def _path(expression: str, resource_type: str, where: str) -> list[tuple[str, int | None]]:
    root, *rest = expression.split(".")
    segments = [_SEGMENT.fullmatch(segment) for segment in rest]
    if root != resource_type or not all(segments):
        raise _unapplicable(where, f"path '{expression}' is not supported: it starts with {resource_type} and names "
                                   "elements, each with an optional [n] indexer (e.g. Task.output[0].value)",
                            "not-supported")
    return [(match["name"], None if match["index"] is None else int(match["index"]))
            for match in segments if match is not None]


# --- resolving paths --------------------------------------------------------------------------------------


def _at(resource: dict[str, Any], pointer: Pointer) -> Any:
    node: Any = resource
    for step in pointer:
        node = node[step]
    return node


def _keys(model: Model, node: dict[str, Any], name: str, where: str) -> list[str]:
    """The JSON properties of `node` that element `name` of `model` names: itself, or the one present of a choice."""
    fields = elements(model)
    if name in fields:
        return [name] if name in node else []
    choices = [key for key, field in fields.items() if field.choice == name]
    if not choices:
        raise _unapplicable(where, f"{model.get_resource_type()} has no element '{name}'", "not-found")
    return [key for key in choices if key in node]


def _resolve(resource: dict[str, Any], path: list[tuple[str, int | None]], where: str) -> list[_Found]:
    found = [_Found((), None, resource_model(str(resource.get("resourceType"))))]
    for name, index in path:
        matches = []
        for parent in found:
            node = _at(resource, parent.pointer)
            if parent.model is None or not isinstance(node, dict):
                continue  # a primitive's value has no child elements a patch may name
            for key in _keys(parent.model, node, name, where):
                element = elements(parent.model)[key]
                value = node[key]
                pointers = [(*parent.pointer, key, i) for i in range(len(value))] if isinstance(value, list) \
                    else [(*parent.pointer, key)]
                matches += [_Found(pointer, element, element.model) for pointer in pointers]
        found = matches if index is None else matches[index:index + 1]
    return found


def _single(found: list[_Found], where: str, allow_none: bool = False) -> _Found | None:
    if len(found) > 1:
        raise _unapplicable(where, f"the path matches {len(found)} elements; this operation needs one (use an [n] "
                                   "indexer)")
    if not found and not allow_none:
        raise _unapplicable(where, "the path matches no element", "not-found")
    return found[0] if found else None


def _list_of(resource: dict[str, Any], operation: _Operation) -> tuple[dict[str, Any], str, FhirElement]:
    """The element holding the list an insert or move names (its last path step, without an indexer)."""
    name, index = operation.path[-1] if operation.path else ("", None)
    if not operation.path or index is not None:
        raise _unapplicable(operation.where, f"an {operation.kind} names a list, as in Task.output", "not-supported")
    parent = _single(_resolve(resource, operation.path[:-1], operation.where), operation.where)
    assert parent is not None
    holder = _at(resource, parent.pointer)
    if parent.model is None or not isinstance(holder, dict):
        raise _unapplicable(operation.where, "the path's parent is not an element with children")
    key, element = _child(parent.model, name, None, operation.where)
    if not element.many:
        raise _unapplicable(operation.where, f"{name} is not a list", "not-supported")
    return holder, key, element


# --- values -----------------------------------------------------------------------------------------------


def _value_key(part: dict[str, Any]) -> str | None:
    return next((key for key in part if key.startswith("value")), None)


def _child(model: Model, name: str, value_key: str | None, where: str) -> tuple[str, FhirElement]:
    """The JSON property and definition of child `name`; a choice element takes its type from the value[x] given."""
    fields = elements(model)
    if name in fields:
        return name, fields[name]
    if any(field.choice == name for field in fields.values()):
        typed = name + value_key.removeprefix("value") if value_key else None
        if typed is None or typed not in fields or fields[typed].choice != name:
            raise _unapplicable(where, f"{name} is a choice element: give its value as a value[x] of one of its "
                                       "types", "not-supported")
        return typed, fields[typed]
    raise _unapplicable(where, f"{model.get_resource_type()} has no element '{name}'", "not-found")


def _value(part: dict[str, Any], element: FhirElement, where: str) -> Any:
    """A part's value: its value[x] as it is, or an element built from its own parts (FHIRPath Patch's way of giving
    a backbone element such as Task.output, which no value[x] type can carry)."""
    value_key = _value_key(part)
    if value_key is not None:
        return copy.deepcopy(part[value_key])
    parts = part.get("part")
    if not parts:
        raise _bad(where, "the value has neither a value[x] nor parts", "required")
    if element.model is None:
        raise _unapplicable(where, f"a {element.type} takes a value[x], not parts", "not-supported")
    built: dict[str, Any] = {}
    for number, child_part in enumerate(parts):
        at = f"{where}.part[{number}]"
        key, child = _child(element.model, str(child_part.get("name")), _value_key(child_part), at)
        value = _value(child_part, child, at)
        if child.many:
            built.setdefault(key, []).append(value)
        elif key in built:
            raise _unapplicable(at, f"{key} occurs once")
        else:
            built[key] = value
    return built


def _given(operation: _Operation, element: FhirElement) -> Any:
    number, part = operation.parts["value"]
    return _value(part, element, f"{operation.where}.part[{number}]")


def _integer(operation: _Operation, name: str) -> int:
    value = _primitive(operation.parts, name, "valueInteger", operation.where)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"{operation.where}.part[{operation.parts[name][0]}]", f"{name} is a valueInteger")
    return value


# --- operations -------------------------------------------------------------------------------------------


def _apply(resource: dict[str, Any], operation: _Operation) -> None:
    where = operation.where
    if operation.kind == "add":
        parent = _single(_resolve(resource, operation.path, where), where)
        assert parent is not None
        holder = _at(resource, parent.pointer)
        if parent.model is None or not isinstance(holder, dict):
            raise _unapplicable(where, "the path does not name an element with children")
        name = _primitive(operation.parts, "name", "valueString", where)
        key, element = _child(parent.model, str(name), _value_key(operation.parts["value"][1]), where)
        value = _given(operation, element)
        if element.many:
            holder.setdefault(key, []).append(value)
        else:
            for other in _same_choice(parent.model, element, key):
                holder.pop(other, None)
            holder[key] = value
    elif operation.kind == "insert":
        holder, key, element = _list_of(resource, operation)
        items = holder.get(key, [])
        index = _integer(operation, "index")
        if not 0 <= index <= len(items):
            raise _unapplicable(where, f"index {index} is outside 0..{len(items)}", "value")
        items.insert(index, _given(operation, element))
        holder[key] = items
    elif operation.kind == "move":
        holder, key, _ = _list_of(resource, operation)
        items = holder.get(key, [])
        source, destination = _integer(operation, "source"), _integer(operation, "destination")
        if not (0 <= source < len(items) and 0 <= destination < len(items)):
            raise _unapplicable(where, f"source and destination must lie within 0..{len(items) - 1}", "value")
        items.insert(destination, items.pop(source))
    elif operation.kind == "replace":
        found = _single(_resolve(resource, operation.path, where), where)
        assert found is not None
        if found.element is None:
            raise _unapplicable(where, "the resource itself is not replaced by a patch; use PUT", "not-supported")
        _replace(resource, found, operation)
    else:  # delete: nothing to delete is not an error
        found = _single(_resolve(resource, operation.path, where), where, allow_none=True)
        if found is not None:
            if not found.pointer:
                raise _unapplicable(where, "the resource itself is not deleted by a patch", "not-supported")
            _remove(resource, found.pointer)


def _same_choice(model: Model, element: FhirElement, key: str) -> Iterator[str]:
    """The other properties of the choice element `key` belongs to: one value[x] replaces another."""
    if element.choice:
        yield from (other for other, field in elements(model).items() if field.choice == element.choice
                    and other != key)


def _replace(resource: dict[str, Any], found: _Found, operation: _Operation) -> None:
    assert found.element is not None
    *holder_pointer, last = found.pointer
    holder = _at(resource, tuple(holder_pointer))
    element, key = found.element, last
    if element.choice and isinstance(last, str):
        # The new value's type names the property: Task.output[0].value replaced by a valueString is valueString.
        parent_pointer = tuple(holder_pointer)
        parent = _resolve_model(resource, parent_pointer)
        if parent is not None:
            key, element = _child(parent, element.choice, _value_key(operation.parts["value"][1]), operation.where)
            holder.pop(last)
    holder[key] = _given(operation, element)


def _resolve_model(resource: dict[str, Any], pointer: Pointer) -> Model | None:
    model = resource_model(str(resource.get("resourceType")))
    for step in pointer:
        if isinstance(step, str) and model is not None:
            model = elements(model)[step].model
    return model


def _remove(resource: dict[str, Any], pointer: Pointer) -> None:
    """Delete the element at `pointer`, and any element left without children by that (FHIR has no empty
    elements)."""
    *holder_pointer, last = pointer
    holder = _at(resource, tuple(holder_pointer))
    del holder[last]
    if not holder and holder_pointer:
        _remove(resource, tuple(holder_pointer))
