"""The product's JSON text, in one place: written by orjson, read exactly by the standard library's C parser.

Writing (`dump_bytes`, `dumps`): compact (`,` and `:` without spaces), UTF-8 as is (no `\\uXXXX` for non-ASCII), as
bytes (what HTTP responses and Kafka values carry) or text (what the database's text columns hold). A `Decimal` is
written with the digits it holds ("1.50" stays 1.50: FHIR R4 datatypes, decimal: "the precision of the decimal value
has significance") through `orjson.Fragment`; a non-finite one (NaN, Infinity) is refused. Datetimes and dataclasses
are refused unless `default` handles them, as simplejson and the standard library did (orjson would write its own
format). An integer beyond 64 bits, or a key that is an int, float, bool or None, is written as the standard library
writes it, on a slower path.

Reading (`loads`, `parse_object`): every number that is not an integer comes back as an exact `Decimal`, integers as
`int` of any size, and NaN/Infinity are refused. orjson reads numbers as floats and keeps the last of repeated
property names without saying so, and every check that makes up for that on the text (which documents hold a
non-integer number outside their strings; how many property names the text has against the parsed document) cost
as much on a referral Bundle as the standard library's own C parse with `parse_float=Decimal` (tests/unit/
test_jsontext.py's docstring has the figures): so reading stays with the standard library, in this one module.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson

# orjson's own datetime and dataclass output would differ from what the product wrote before (an error, or what
# `default` makes of it); passing them through lets `default` decide, as it did with the standard library.
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_INT64 = range(-(2 ** 63), 2 ** 64)  # what orjson writes as an integer itself
_DEPTH = 200  # below orjson's own limit, with room for what `default` returns


def dump_bytes(data: Any, *, default: Callable[[Any], Any] | None = None) -> bytes:
    """`data` as compact UTF-8 JSON bytes; Decimals with their own digits.

    `default` (optional) turns any other value JSON has no type for (a datetime, say) into one it has, or raises
    TypeError. Raises TypeError (orjson.JSONEncodeError is one) for what neither handles, a non-finite Decimal, a
    string with a lone surrogate (it has no UTF-8).
    """
    hook = _decimal if default is None else _with(default)
    try:
        return orjson.dumps(data, default=hook, option=_OPTIONS)
    except orjson.JSONEncodeError as exc:
        if not str(exc).startswith(("Integer exceeds 64-bit range", "Dict key must be str", "Recursion limit")):
            raise
    # What the standard library writes and orjson does not: big integers, keys that are not strings, and nesting
    # deeper than orjson's limit of 254 (each part below _DEPTH levels is written on its own, as a fragment).
    return orjson.dumps(_portable(data, default, 0), default=hook, option=_OPTIONS)


def dumps(data: Any, *, default: Callable[[Any], Any] | None = None) -> str:
    """`dump_bytes` as text (for a text column or a log line)."""
    return dump_bytes(data, default=default).decode()


def loads(text: str | bytes) -> Any:
    """The value in JSON text: non-integer numbers as exact Decimals, integers as int.

    Bytes may be UTF-8, -16 or -32 (RFC 8259 §8.1 asks for UTF-8; the standard library tells them apart by their
    NULs). Raises ValueError (json.JSONDecodeError, or UnicodeDecodeError for bytes in no such encoding) for what is
    not JSON, NaN, Infinity and -Infinity included.
    """
    return json.loads(text, parse_float=Decimal, parse_constant=_no_constant)


def check(text: str | bytes) -> None:
    """Raise ValueError unless `text` is strict JSON in UTF-8 (RFC 8259: no NaN or Infinity, no lone surrogate, no
    byte order mark), nested at most 1024 deep; cheaper than `loads`, as it builds no Decimals (orjson)."""
    orjson.loads(text)


def parse_object(body: str | bytes) -> Any:
    """`loads`, refusing a repeated property name in any object (RFC 8259 §4: names SHOULD be unique; FHIR's JSON
    format allows none, and a repeated one would make the value read depend on the parser): ValueError
    "duplicate property name"."""
    return json.loads(body, parse_float=Decimal, object_pairs_hook=_unique_object, parse_constant=_no_constant)


def _unique_object(pairs: list[tuple[str, Any]]) -> dict:
    data = dict(pairs)
    if len(data) != len(pairs):
        raise ValueError("duplicate property name")
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _decimal(value: Any) -> Any:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise TypeError(f"{value} is not a JSON number")
        return orjson.Fragment(str(value))
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _with(default: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def hook(value: Any) -> Any:
        return _decimal(value) if isinstance(value, Decimal) else default(value)
    return hook


def _portable(node: Any, default: Callable[[Any], Any] | None, depth: int) -> Any:
    """`node` with integers beyond 64 bits as number fragments, keys written as the standard library does, and
    containers `_DEPTH` levels down as fragments of their own."""
    if isinstance(node, dict | list | tuple) and depth == _DEPTH:
        return orjson.Fragment(dump_bytes(node, default=default))
    # Loops, not comprehensions: one Python frame a level, as deep as the standard library's parser goes.
    if isinstance(node, dict):
        mapped = {}
        for key, value in node.items():
            mapped[_key(key)] = _portable(value, default, depth + 1)
        return mapped
    if isinstance(node, list | tuple):
        items = []
        for item in node:
            items.append(_portable(item, default, depth + 1))
        return items
    if isinstance(node, int) and not isinstance(node, bool) and node not in _INT64:
        return orjson.Fragment(int.__repr__(node))
    return node


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, bool | int | float):
        return json.dumps(key)  # null, true, false, int.__repr__, float.__repr__: as json and simplejson wrote keys
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")
