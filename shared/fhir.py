"""FHIR R4 helpers: JSON/XML parsing and serialisation, validation, OperationOutcome and reference handling."""

from __future__ import annotations

import copy
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from functools import cache, lru_cache, partial
from itertools import zip_longest
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir_core.fhirabstractmodel import FHIRAbstractModel
from fhir_core.utils import (
    determine_version_prefix_from_class,
    get_fhir_type_name,
    is_list_type,
    is_primitive_type,
)
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from shared import jsontext

FHIR_JSON = "application/fhir+json"
FHIR_XML = "application/fhir+xml"

FHIR_NS = "http://hl7.org/fhir"
XHTML_NS = "http://www.w3.org/1999/xhtml"

_JSON_TYPES = {FHIR_JSON, "application/json"}
_XML_TYPES = {FHIR_XML, "application/xml", "text/xml"}
_INTEGER_TYPES = {"integer", "unsignedInt", "positiveInt"}
_JSON_KIND = {"boolean": "boolean", "decimal": "number", **dict.fromkeys(_INTEGER_TYPES, "integer")}
_INTEGER = re.compile(r"[-+]?(0|[1-9][0-9]*)")
_DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_REFERENCE = re.compile(
    r"(?P<base>https?://[^\s?#]+/)?(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})"
    r"(/_history/[A-Za-z0-9\-.]{1,64})?"
)
_ABSTRACT_RESOURCES = {"Resource", "DomainResource"}
PLACEHOLDER_PREFIXES = ("urn:uuid:", "urn:oid:")
_BSN = re.compile(r"(?<!\d)\d{9}(?!\d)")
# A lone surrogate (half of a UTF-16 pair) is no character: no UTF-8 text can hold it, so it could be neither
# stored nor written back (shared.jsontext refuses it), and the parser keeps one only from an escape like \ud800.
_CONTROL_CHARACTER = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
# In JSON text a control character can only be escaped (\b, \f, \u0000-\u001f; raw ones are refused by the
# parser), and an empty element only be written {}, [] or "" (with any whitespace inside the brackets).
_MAY_HOLD_CONTROL = re.compile(rb"\\(?:[bf]|u00[01]|ud[89a-f])", re.IGNORECASE)
_MAY_BE_EMPTY = re.compile(rb'\{\s*\}|\[\s*\]|""')
_PYDANTIC_ERRORS = {
    "missing": ("required", "Required element is missing"),
    "model_field_validation.missing": ("required", "Required element is missing"),
    "extra_forbidden": ("structure", "Unknown element"),
}


@dataclass(frozen=True)
class Issue:
    severity: str
    code: str
    diagnostics: str
    expression: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Diagnostics reach responses and logs and may quote input; masking here keeps BSNs out for every producer.
        object.__setattr__(self, "diagnostics", _BSN.sub("*********", self.diagnostics))


class FhirError(Exception):
    """Raised by edges to answer with an OperationOutcome."""

    def __init__(self, status_code: int, issues: list[Issue] | Issue) -> None:
        self.status_code = status_code
        self.issues = [issues] if isinstance(issues, Issue) else list(issues)
        super().__init__(f"{status_code}: " + "; ".join(issue.diagnostics for issue in self.issues))


@dataclass(frozen=True)
class FhirElement:
    """One element of a FHIR type as its model declares it: repeating or not, its type (with the model of a complex
    type), the codes of a required binding when the model knows them all, and the choice group ("value" for
    valueCoding) of a choice element."""

    many: bool
    type: str
    model: type[FHIRAbstractModel] | None
    codes: frozenset[str]
    choice: str | None = None

    @property
    def primitive(self) -> bool:
        return self.model is None and self.type != "Resource"


def operation_outcome(issues: Iterable[Issue]) -> dict:
    entries = [
        {
            "severity": issue.severity,
            "code": issue.code,
            **({"diagnostics": issue.diagnostics} if issue.diagnostics else {}),
            **({"expression": list(issue.expression)} if issue.expression else {}),
        }
        for issue in issues
    ]
    # OperationOutcome.issue is 1..*, so "nothing wrong" still needs one issue.
    return {
        "resourceType": "OperationOutcome",
        "issue": entries or [{"severity": "information", "code": "informational", "diagnostics": "No issues detected"}],
    }


def dumps(data: Any) -> str:
    """FHIR JSON text (compact, non-ASCII as is); decimals keep the precision they were sent with."""
    return jsontext.dumps(data)


def dump_bytes(data: Any) -> bytes:
    """FHIR JSON as UTF-8 bytes, for a response or an event value: `dumps` without the text in between."""
    return jsontext.dump_bytes(data)


def loads(text: str | bytes) -> Any:
    """A resource from FHIR JSON text (stored or in an event): non-integer numbers as exact Decimals."""
    return jsontext.loads(text)


def parse_body(body: bytes, content_type: str | None) -> dict:
    """The resource in a request body, FHIR JSON or XML by its content type (JSON when none is given).

    Raises FhirError 415 for another content type, and 400 for what is not FHIR at the level of the format: malformed
    JSON or XML, a DOCTYPE, duplicate JSON properties, control characters, a body that is not an object, and every
    empty element (`{}`, `[]`, `""`; XML `<code/>`), all of those named at once.
    """
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime and mime not in _JSON_TYPES | _XML_TYPES:
        raise FhirError(415, Issue("error", "not-supported", f"Unsupported content type '{mime}'"))
    is_xml = mime in _XML_TYPES
    control = None
    try:
        if is_xml:
            data = _xml_resource(_safe_xml(body), "")
        else:
            data = jsontext.parse_object(body)
            # UTF-8 JSON text shows where a control character or an empty element could be at all; most bodies
            # have neither, and are not walked for them (UTF-16 or -32 text, with NULs, always is).
            plain = b"\x00" not in body[:4]
            control = _control_character_path(data, _root(data)) \
                if not plain or _MAY_HOLD_CONTROL.search(body) else None
        empty = empty_elements(data, _root(data)) if is_xml or not plain or _MAY_BE_EMPTY.search(body) else []
    except (ET.ParseError, ValueError) as exc:
        raise _structure(f"Malformed {'XML' if is_xml else 'JSON'}: {exc}") from None
    except RecursionError:
        raise _structure("Content is nested too deeply") from None
    if control is not None:
        # XML cannot carry these at all; escaped in JSON they must not slip through to storage (PostgreSQL refuses NUL).
        raise _structure("FHIR strings do not contain control characters other than tab, CR and LF, nor lone "
                         "surrogates (\\ud800-\\udfff not part of a pair)", control)
    if not isinstance(data, dict):
        raise _structure("A FHIR JSON body must be an object")
    if empty:
        raise FhirError(400, empty)
    return data


def empty_elements(node: Any, path: str) -> list[Issue]:
    """Every element of `node` (a resource as JSON, at FHIRPath `path`) that has neither a value nor children, at
    its location: `{}`, `[]` and `""`, in extensions, contained resources and Bundle entries too.

    Source: FHIR R4 ele-1 ("All FHIR elements must have a @value or children") and the JSON format (an array with no
    items is left out, not sent empty). fhir.resources accepts `{}` and `[]`. Nulls are left to validate_resource:
    inside primitive arrays they align values with their extensions.
    """
    found: list[Issue] = []
    if _has_empty(node):  # a walk without locations first: most resources have none
        _collect_empty(node, path, found)
    return found


def _has_empty(node: Any) -> bool:
    if isinstance(node, dict):
        return not node or any(_has_empty(value) for key, value in node.items() if key != "resourceType")
    if isinstance(node, list):
        return not node or any(_has_empty(item) for item in node)
    return node == ""


def _collect_empty(node: Any, path: str, found: list[Issue]) -> None:
    if isinstance(node, dict):
        if not node:
            found.append(_empty_issue(path, "an object without properties"))
        for key, value in node.items():
            if key != "resourceType":
                _collect_empty(value, f"{path}.{key.removeprefix('_')}", found)
    elif isinstance(node, list):
        if not node:
            found.append(_empty_issue(path, "an array without items"))
        for index, item in enumerate(node):
            _collect_empty(item, f"{path}[{index}]", found)
    elif isinstance(node, str) and not node:
        found.append(_empty_issue(path, "an empty string"))


def _empty_issue(path: str, what: str) -> Issue:
    return Issue("error", "structure", f"{path} is {what}: a FHIR element has a value or children, so leave out an "
                                       "element that has neither (an array with no items is absent, not [])", (path,))


def _root(data: Any) -> str:
    resource_type = data.get("resourceType") if isinstance(data, dict) else None
    return resource_type if isinstance(resource_type, str) and resource_type else "Resource"


def validate_resource(data: dict, *, path: str | None = None) -> list[Issue]:
    """Every problem of a resource as FHIR R4 (R4B models) defines it, located by FHIRPath from `path` (default: its
    resourceType): empty elements, JSON shapes and types, codes of required bindings the model knows in full, nested
    resourceTypes, then what pydantic reports. An empty list means valid."""
    resource_type = data.get("resourceType") if isinstance(data, dict) else None
    model = _resource_model(resource_type) if isinstance(resource_type, str) else None
    root = path or (resource_type if model else "Resource")
    if not isinstance(data, dict):
        return [Issue("error", "structure", "A resource must be a JSON object", (root,))]
    if resource_type is None:
        return [Issue("error", "required", "The resource has no resourceType", (root,))]
    if model is None:
        return [Issue("error", "not-supported", f"Unknown resourceType '{resource_type}'", (root,))]
    try:
        issues = [*empty_elements(data, root), *_json_issues(data, model, root)]
    except RecursionError:
        # A body nested deeper than Python's stack (hundreds of extensions in extensions) is a client's fault.
        return [Issue("error", "structure", "Content is nested too deeply", (root,))]
    flagged = {issue.expression for issue in issues}
    try:
        model.model_validate(data)
    except ValidationError as exc:
        pydantic_issues = (_pydantic_issue(error, root) for error in exc.errors())
        issues += [issue for issue in pydantic_issues if issue.expression not in flagged]
    except Exception:  # noqa: BLE001 - fhir.resources raises KeyError etc. for e.g. unknown nested resourceTypes
        if not issues:
            issues.append(Issue("error", "invalid", "The resource could not be validated", (root,)))
    return issues


def to_xml(data: dict) -> bytes:
    root = _resource_to_xml(data, "")
    # Unqualified tags plus a literal xmlns keep the FHIR and XHTML namespaces unprefixed, as FHIR XML is written.
    root.set("xmlns", FHIR_NS)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def ref_id(reference: str) -> tuple[str, str] | None:
    match = _REFERENCE.fullmatch(reference)
    if match is None or _resource_model(match["type"]) is None:
        return None
    return match["type"], match["id"]


def resolve_bundle_references(bundle: dict, assigned: dict[str, str]) -> dict:
    """A copy of a transaction Bundle (FHIR JSON) whose entries' references point at the ids the server assigned:
    `assigned` maps a fullUrl (placeholder or absolute) to "Type/id"; a relative reference in an entry with an
    absolute fullUrl becomes absolute unless it names an entry (FHIR R4 http.html#trules). `bundle` is left as it
    was (a retried transaction resolves it again)."""
    result = {key: _json_copy(value) for key, value in bundle.items() if key != "entry"}
    if "entry" in bundle:
        result["entry"] = [_resolved_entry(entry, assigned) for entry in bundle["entry"] or []] \
            if isinstance(bundle["entry"], list) else _json_copy(bundle["entry"])
    return result


def _resolved_entry(entry: Any, assigned: dict[str, str]) -> Any:
    if not isinstance(entry, dict):
        return _json_copy(entry)
    target = partial(_resolved, full_url=entry.get("fullUrl"), assigned=assigned)
    return {key: _rewritten(value, target) if key == "resource" else _json_copy(value) for key, value in entry.items()}


def bundle_reference(reference: str, full_url: str | None) -> str:
    """What a reference inside a Bundle entry means: a relative reference in an entry with an absolute fullUrl is
    relative to that fullUrl's base (FHIR Bundle rules), so it becomes absolute; any other reference is itself."""
    match = _REFERENCE.fullmatch(full_url) if isinstance(full_url, str) else None
    if match and match["base"] and "://" not in reference and ref_id(reference):
        return match["base"] + reference
    return reference


def iter_references(resource: dict) -> Iterator[tuple[str, str]]:
    yield from _references(resource, str(resource.get("resourceType", "Resource")))


def unresolved_placeholders(resource: dict, path: str, full_urls: Collection[str]) -> list[Issue]:
    """Each `urn:uuid:` or `urn:oid:` reference anywhere in `resource` (at FHIRPath `path`: extensions, contained
    resources and backbone elements included) that is not the fullUrl of an entry in `full_urls`, located at its
    Reference element.

    Source: FHIR R4 http.html#trules: a transaction replaces such placeholders by the ids it assigns to the entries
    they name; one that names no entry would be stored as a reference to nothing. Outside a Bundle (no fullUrls)
    every placeholder is unresolved.
    """
    return [Issue("error", "not-found", f"{where.removesuffix('.reference')}: {reference} is the fullUrl of no entry "
                                        "of this Bundle", (where.removesuffix(".reference"),))
            for where, reference in _references(resource, path)
            if reference.lower().startswith(PLACEHOLDER_PREFIXES) and reference not in full_urls]


def resource_model(name: str) -> type[FHIRAbstractModel] | None:
    """The fhir.resources (R4B) model of a concrete resource type, None for anything else."""
    return _resource_model(name)


def elements(model: type[FHIRAbstractModel]) -> dict[str, FhirElement]:
    """The elements of a FHIR type's model by JSON property name (a choice element by each of its names:
    valueCoding, valueString, ...), in FHIR element order."""
    return _fields(model)


# --- model metadata ---------------------------------------------------------------------------------------


@lru_cache(maxsize=512)
def _resource_model(name: str) -> type[FHIRAbstractModel] | None:
    try:
        model = get_fhir_model_class(name)
    except ValueError:
        return None
    return model if model.has_resource_base() and name not in _ABSTRACT_RESOURCES else None


@cache
def _fields(model: type[FHIRAbstractModel]) -> dict[str, FhirElement]:
    prefix = determine_version_prefix_from_class(model)
    aliases = model.get_alias_mapping()
    fields = {}
    for name in model.elements_sequence():
        info = model.model_fields[aliases[name]]
        type_name = get_fhir_type_name(info, prefix=prefix)
        complex_model = None if is_primitive_type(info) or type_name == "Resource" else get_fhir_model_class(type_name)
        codes = (info.json_schema_extra or {}).get("enum_values", [])  # type: ignore[union-attr]
        # enum_values is scraped from the element's short text; "+" / "etc." / prose mark it as incomplete.
        complete = codes and not any(code in ("+", "etc.") or " " in code for code in codes)
        choice = (info.json_schema_extra or {}).get("one_of_many")  # type: ignore[union-attr]
        fields[name] = FhirElement(is_list_type(info), type_name, complex_model,
                                   frozenset(codes if complete else ()), choice if isinstance(choice, str) else None)
    return fields


def _primitive_extension_model() -> type[FHIRAbstractModel]:
    return get_fhir_model_class("FHIRPrimitiveExtension")


def _xml_attributes(model: type[FHIRAbstractModel]) -> tuple[str, ...]:
    if model.has_resource_base():
        return ()
    return ("id", "url") if model.get_resource_type() == "Extension" else ("id",)


# --- validation -------------------------------------------------------------------------------------------


def _json_issues(data: dict, model: type[FHIRAbstractModel], path: str) -> Iterator[Issue]:
    """What pydantic's lax mode lets through: JSON shapes and types, unknown codes, nested resourceTypes."""
    fields = _fields(model)
    for key, value in data.items():
        name = key.removeprefix("_")
        field = fields.get(name)
        is_extension = key != name
        if field is None or (is_extension and not field.primitive):
            continue  # pydantic reports unknown elements
        where = f"{path}.{name}"
        if field.many != isinstance(value, list):
            yield _shape_issue(where, "a JSON array" if field.many else "a single value, not an array")
            continue
        for index, item in enumerate(value) if field.many else [(None, value)]:
            at = where if index is None else f"{where}[{index}]"
            if item is None:
                if not (field.many and field.primitive):  # nulls only align primitive arrays with their _extensions
                    yield _shape_issue(at, "a value, not null")
            elif is_extension or not field.primitive:
                if not isinstance(item, dict):
                    yield _shape_issue(at, "a JSON object")
                elif is_extension:
                    yield from _json_issues(item, _primitive_extension_model(), at)
                elif field.model is not None:
                    yield from _json_issues(item, field.model, at)
                else:
                    yield from _nested_resource_issues(item, at)
            elif not _json_type_ok(item, field.type):
                yield _shape_issue(at, f"a JSON {_JSON_KIND.get(field.type, 'string')} for a FHIR {field.type}")
            elif field.codes and item not in field.codes:
                allowed = ", ".join(sorted(field.codes))
                yield Issue("error", "value", f"{at}: '{item}' is not a valid code (allowed: {allowed})", (at,))


def _nested_resource_issues(data: dict, path: str) -> Iterator[Issue]:
    resource_type = data.get("resourceType")
    model = _resource_model(resource_type) if isinstance(resource_type, str) else None
    if model is None:
        yield Issue("error", "structure", f"{path}: missing or unknown resourceType", (path,))
    else:
        yield from _json_issues(data, model, path)


def _shape_issue(path: str, expected: str) -> Issue:
    return Issue("error", "structure", f"{path}: expected {expected}", (path,))


def _json_type_ok(value: Any, type_name: str) -> bool:
    kind = _JSON_KIND.get(type_name, "string")
    if isinstance(value, bool):
        return kind == "boolean"
    if isinstance(value, int):
        return kind in ("integer", "number")
    return isinstance(value, (float, Decimal)) if kind == "number" else isinstance(value, str) and kind == "string"


def _pydantic_issue(error: ErrorDetails, root: str) -> Issue:
    steps = (f"[{part}]" if isinstance(part, int) else f".{part.removeprefix('_')}" for part in error["loc"])
    where = root + "".join(steps)
    fallback = ("structure" if error["type"].endswith("_type") else "value", " ".join(error["msg"].split()))
    code, message = _PYDANTIC_ERRORS.get(error["type"], fallback)
    return Issue("error", code, f"{where}: {message}", (where,))


# --- JSON / XML -------------------------------------------------------------------------------------------


def _structure(message: str, path: str | None = None) -> FhirError:
    return FhirError(400, Issue("error", "structure", message, (path,) if path else ()))


def _control_character_path(node: Any, path: str) -> str | None:
    if isinstance(node, str):
        return path if _CONTROL_CHARACTER.search(node) else None
    if isinstance(node, dict):
        for key, value in node.items():
            found = _control_character_path(key, path) or _control_character_path(value, f"{path}.{key}")
            if found:
                return found
    elif isinstance(node, list):
        for index, item in enumerate(node):
            found = _control_character_path(item, f"{path}[{index}]")
            if found:
                return found
    return None


class _TreeBuilder(ET.TreeBuilder):
    # A DOCTYPE is where entities (billion laughs, XXE) get declared; FHIR XML never needs one.
    def doctype(self, name: str, pubid: str | None, system: str | None) -> None:
        raise FhirError(400, Issue("error", "security", "DOCTYPE declarations are not allowed"))


def _safe_xml(data: bytes | str) -> ET.Element:
    parser = ET.XMLParser(target=_TreeBuilder())
    parser.feed(data)
    return parser.close()


def _split(tag: str) -> tuple[str, str]:
    namespace, _, name = tag[1:].rpartition("}") if tag.startswith("{") else ("", "", tag)
    return namespace, name


def _xml_resource(element: ET.Element, path: str) -> dict:
    namespace, name = _split(element.tag)
    model = _resource_model(name) if namespace == FHIR_NS else None
    if model is None:
        raise _structure(f"'{name}' is not a FHIR resource in the {FHIR_NS} namespace", path or None)
    return {"resourceType": name, **_xml_element(element, model, path or name)}


def _xml_element(element: ET.Element, model: type[FHIRAbstractModel], path: str, skip: str = "") -> dict:
    data: dict[str, Any] = {}
    for attribute, value in element.attrib.items():
        if attribute == skip or attribute.startswith("{"):  # e.g. xsi:schemaLocation carries no FHIR content
            continue
        if attribute not in _xml_attributes(model):
            raise _structure(f"Unexpected attribute '{attribute}'", path)
        data[attribute] = value
    fields = _fields(model)
    values: dict[str, list[Any]] = {}
    extensions: dict[str, list[dict | None]] = {}
    _no_text(element.text, path)
    for child in element:
        _no_text(child.tail, path)
        namespace, name = _split(child.tag)
        field = fields.get(name)
        where = f"{path}.{name}"
        expected_namespace = XHTML_NS if field and field.type == "xhtml" else FHIR_NS
        if field is None or name in _xml_attributes(model) or namespace != expected_namespace:
            raise _structure(f"Unknown element '{name}'", where)
        if field.many:
            where += f"[{len(values.get(name, []))}]"
        value, extension = _xml_value(child, field, where)
        values.setdefault(name, []).append(value)
        extensions.setdefault(name, []).append(extension)
    for name, items in values.items():
        field = fields[name]
        if len(items) > 1 and not field.many:
            raise _structure(f"Element '{name}' may occur only once", f"{path}.{name}")
        for key, column in ((name, items), ("_" + name, extensions[name])):
            if any(item is not None for item in column):
                data[key] = column if field.many else column[0]
    return data


def _xml_value(element: ET.Element, field: FhirElement, path: str) -> tuple[Any, dict | None]:
    if field.type == "xhtml":
        return _xhtml_string(element), None
    if field.type == "Resource":
        children = list(element)
        if len(children) != 1:
            raise _structure("Expected exactly one resource", path)
        _no_text(element.text, path)
        _no_text(children[0].tail, path)
        return _xml_resource(children[0], path), None
    if field.model is not None:
        return _xml_element(element, field.model, path), None
    raw = element.get("value")
    value = None if raw is None else _primitive(raw, field.type, path)
    extension = _xml_element(element, _primitive_extension_model(), path, skip="value") or None
    if value is None and extension is None:
        raise _structure("Element has neither a value nor extensions", path)
    return value, extension


def _primitive(raw: str, type_name: str, path: str) -> Any:
    if type_name == "boolean" and raw in ("true", "false"):
        return raw == "true"
    if type_name in _INTEGER_TYPES and _INTEGER.fullmatch(raw):
        return int(raw)
    if type_name == "decimal" and _DECIMAL.fullmatch(raw):
        return Decimal(raw)
    if type_name in _INTEGER_TYPES | {"boolean", "decimal"}:
        raise FhirError(400, Issue("error", "value", f"Invalid {type_name} value", (path,)))
    return raw


def _no_text(text: str | None, path: str) -> None:
    if text and text.strip():
        raise _structure("FHIR XML elements do not contain text", path)


def _xhtml_string(element: ET.Element) -> str:
    div = _unprefixed_xhtml(copy.deepcopy(element))
    div.tail = None  # ElementTree would otherwise serialise the whitespace after </div>
    return ET.tostring(div, encoding="unicode")


def _resource_to_xml(data: dict, name: str) -> ET.Element:
    resource_type = data.get("resourceType")
    model = _resource_model(resource_type) if isinstance(resource_type, str) else None
    if model is None:
        raise ValueError(f"{name or 'root'}: missing or unknown resourceType")
    element = ET.Element(resource_type)
    _fill_xml(element, data, model, resource_type)
    return element


def _fill_xml(element: ET.Element, data: dict, model: type[FHIRAbstractModel], path: str) -> None:
    fields = _fields(model)
    unknown = {key.removeprefix("_") for key in data} - fields.keys() - {"resourceType", "fhir_comments"}
    if unknown:
        raise ValueError(f"{path}: unknown elements {sorted(unknown)}")
    for name, field in fields.items():  # XML is order-sensitive: follow the FHIR element order
        value, extension = data.get(name), data.get("_" + name)
        if value is None and extension is None:
            continue
        if name in _xml_attributes(model):
            element.set(name, str(value))
        elif field.type == "xhtml":
            element.append(_unprefixed_xhtml(_safe_xml(value)))
        elif field.many:
            for item, item_extension in zip_longest(value or [], extension or []):
                _append_xml(element, name, field, item, item_extension, path)
        else:
            _append_xml(element, name, field, value, extension, path)


def _append_xml(parent: ET.Element, name: str, field: FhirElement, value: Any, extension: dict | None,
                path: str) -> None:
    if value is None and extension is None:
        return
    child = ET.SubElement(parent, name)
    if field.type == "Resource":
        child.append(_resource_to_xml(value, f"{path}.{name}"))
    elif field.model is not None:
        _fill_xml(child, value, field.model, f"{path}.{name}")
    else:
        if value is not None:
            child.set("value", ("true" if value else "false") if isinstance(value, bool) else str(value))
        if extension:
            _fill_xml(child, extension, _primitive_extension_model(), f"{path}.{name}")


def _unprefixed_xhtml(div: ET.Element) -> ET.Element:
    # ElementTree would invent an "html:" prefix; narrative is conventionally written with a default xmlns.
    for node in div.iter():
        namespace, name = _split(node.tag)
        if namespace == XHTML_NS:
            node.tag = name
    div.attrib = {"xmlns": XHTML_NS, **div.attrib}
    return div


# --- references -------------------------------------------------------------------------------------------


def _references(node: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{path}.{key.removeprefix('_')}"
            if key == "reference" and isinstance(value, str):
                yield where, value
            else:
                yield from _references(value, where)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _references(item, f"{path}[{index}]")


def _resolved(reference: str, full_url: str | None, assigned: dict[str, str]) -> str:
    if reference in assigned:
        return assigned[reference]
    # Stored here, a reference that pointed outside the Bundle keeps its meaning only in its absolute form.
    meant = bundle_reference(reference, full_url)
    return assigned.get(meant, meant)


def _rewritten(node: Any, target: Callable[[str], str]) -> Any:
    """A copy of JSON `node` with every string `reference` replaced by `target(reference)` (one pass: copying and
    rewriting, where copy.deepcopy and a walk took three times as long)."""
    if isinstance(node, dict):
        return {key: target(value) if key == "reference" and isinstance(value, str) else _rewritten(value, target)
                for key, value in node.items()}
    if isinstance(node, list):
        return [_rewritten(item, target) for item in node]
    return node


def _json_copy(node: Any) -> Any:
    """A deep copy of parsed JSON: dicts and lists are copied, their leaves (str, int, Decimal, bool, None) are
    immutable and shared."""
    if isinstance(node, dict):
        return {key: _json_copy(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_json_copy(item) for item in node]
    return node
