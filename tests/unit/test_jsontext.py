"""shared.jsontext: JSON written by orjson and read by the standard library, with FHIR's guarantees kept.

Why reading stays with the standard library (measured on a referral Bundle of 2.6 kB, process CPU, best of 9 x 2000,
on the development machine): orjson.loads 5.2 us; json.loads(parse_float=Decimal) 11.9 us (simplejson with
use_decimal 12.0 us); orjson.loads plus a walk for floats 12.9 us, plus a regular expression for non-integer number
tokens 23 us; the client-body parse with duplicate refusal 20.1 us (json with object_pairs_hook) against 40.5 us for
orjson plus counting property names in the text. Writing the same Bundle: simplejson 35.6 us, orjson 1.7 us.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import uuid
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared import jsontext
from shared.bus.envelope import EnvelopeError, Event, decode
from shared.bus.topics import REFERRAL_RECEIVED
from shared.fhir import FHIR_JSON, FhirError, parse_body
from shared.responses import FhirJSONResponse, JSONResponse

finite_decimals = st.decimals(allow_nan=False, allow_infinity=False)
# Text without lone surrogates (no UTF-8 has them; a client's body cannot carry them).
text = st.text(st.characters(exclude_categories=("Cs",)))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2 ** 63), max_value=2 ** 64 - 1) | text | finite_decimals,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=20,
)


def _same(a: Any, b: Any) -> bool:
    """Equal, and every Decimal with the same digits and exponent (1.50 is not 1.5)."""
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        return isinstance(a, Decimal) and isinstance(b, Decimal) and a.as_tuple() == b.as_tuple()
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _as_read(value: Any) -> Any:
    """What JSON text can say of `value`: a Decimal with an integer's text ("5", "-0") is read as an int."""
    if isinstance(value, Decimal):
        written = str(value)
        return int(written) if written.lstrip("-").isdigit() else value
    if isinstance(value, dict):
        return {key: _as_read(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_read(item) for item in value]
    return value


@given(finite_decimals)
def test_a_decimal_is_written_with_its_own_digits_and_read_back_exactly(value: Decimal) -> None:
    written = jsontext.dumps({"valueDecimal": value})
    assert written == '{"valueDecimal":' + str(value) + "}"
    assert _same(jsontext.loads(written)["valueDecimal"], _as_read(value))
    assert _same(jsontext.parse_object(written.encode())["valueDecimal"], _as_read(value))


@pytest.mark.parametrize("text_", ["1.50", "0.10", "-0.0", "1E+2", "1.0e-7", "37.500", "123456789012345678901.5"])
def test_fhir_decimal_text_keeps_its_precision_both_ways(text_: str) -> None:
    body = ('{"resourceType": "Observation", "status": "final", "valueQuantity": {"value": ' + text_ + "}}").encode()
    parsed = parse_body(body, FHIR_JSON)
    assert parsed["valueQuantity"]["value"] == Decimal(text_)
    assert str(parsed["valueQuantity"]["value"]) == str(Decimal(text_))
    assert jsontext.dump_bytes(parsed).endswith(b'"valueQuantity":{"value":' + str(Decimal(text_)).encode() + b"}}")


@given(json_values)
def test_what_is_written_reads_back_the_same(value: Any) -> None:
    written = jsontext.dump_bytes(value)
    assert _same(jsontext.loads(written), _as_read(value))
    assert jsontext.dumps(value) == written.decode()


@given(st.recursive(st.none() | st.booleans() | st.integers() | text,
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
                    max_leaves=20))
def test_output_is_the_standard_librarys_compact_utf8_text(value: Any) -> None:
    # Byte for byte what json (and simplejson) wrote with ensure_ascii=False and compact separators: escapes
    # only for the quote, the backslash and control characters; integers of any size.
    assert jsontext.dumps(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def test_non_ascii_is_written_as_utf8_not_escaped() -> None:
    data = {"name": [{"text": "Renée Çelik – 日本 🙂"}]}
    assert jsontext.dump_bytes(data) == '{"name":[{"text":"Renée Çelik – 日本 🙂"}]}'.encode()
    assert parse_body(jsontext.dump_bytes(data), FHIR_JSON) == data


@pytest.mark.parametrize("body", [
    b'{"resourceType": "Patient", "id": "a", "id": "b"}',
    b'{"resourceType": "Patient", "name": [{"given": ["A"], "family": "B", "given": ["C"]}]}',
    b'{"resourceType": "Bundle", "type": "batch", "entry": [{"resource": {"resourceType": "Patient",'
    b' "gender": "male", "gender": "female"}}]}',
    b'{"resourceType": "Patient", "gen\\u0064er": "male", "gender": "female"}',
], ids=["top", "nested", "in-an-entry", "escaped-name"])
def test_a_repeated_property_name_is_refused_with_400(body: bytes) -> None:
    with pytest.raises(FhirError) as caught:
        parse_body(body, FHIR_JSON)
    assert caught.value.status_code == 400
    assert "duplicate property name" in caught.value.issues[0].diagnostics


@given(st.dictionaries(st.text(max_size=3), st.integers(), min_size=1, max_size=5), st.data())
def test_any_repeated_name_is_refused_however_the_object_is_built(members: dict[str, int], data: Any) -> None:
    repeated = data.draw(st.sampled_from(sorted(members)))
    written = [f"{json.dumps(key)}:{value}" for key, value in members.items()]
    at = data.draw(st.integers(min_value=0, max_value=len(written)))
    with_repeat = [*written[:at], f"{json.dumps(repeated)}:0", *written[at:]]
    with pytest.raises(ValueError, match="duplicate property name"):
        jsontext.parse_object(("{" + ",".join(with_repeat) + "}").encode())
    with pytest.raises(ValueError, match="duplicate property name"):  # however deep
        jsontext.parse_object(('[{"a":{"b":[{' + ",".join(with_repeat) + "}]}}]").encode())
    assert jsontext.parse_object(("{" + ",".join(written) + "}").encode()) == members


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_are_refused_in_a_body_and_in_stored_text(constant: bytes) -> None:
    body = b'{"resourceType": "Observation", "status": "final", "valueQuantity": {"value": ' + constant + b"}}"
    with pytest.raises(FhirError) as caught:
        parse_body(body, FHIR_JSON)
    assert caught.value.status_code == 400
    with pytest.raises(ValueError):
        jsontext.loads(body)
    with pytest.raises(ValueError):
        jsontext.check(body)


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("-Infinity"), Decimal("sNaN")])
def test_a_non_finite_decimal_is_never_written(value: Decimal) -> None:
    with pytest.raises(TypeError):
        jsontext.dumps({"value": value})


def test_an_event_whose_value_is_no_strict_json_is_poison() -> None:
    headers = Event.of(topic=REFERRAL_RECEIVED, key="k", source="/triage", subject="s",
                       payload={"a": 1}).headers()
    for value in (b'{"value": NaN}', b'{"a": "\xff"}', b'{"a": "\\ud800"}'):
        with pytest.raises(EnvelopeError):
            decode(REFERRAL_RECEIVED, b"k", value, headers)


def test_an_event_value_is_compact_utf8_with_exact_decimals() -> None:
    event = Event.of(topic=REFERRAL_RECEIVED, key="k", source="/triage", subject="s",
                     payload={"text": "Renée", "value": Decimal("1.50")})
    assert event.data == '{"text":"Renée","value":1.50}'.encode()
    assert _same(event.json(), {"text": "Renée", "value": Decimal("1.50")})


@pytest.mark.parametrize("escape", [b"\\ud800", b"\\uDFFF", b"x\\udc00y", b"\\ude00\\ud83d"])
def test_a_lone_surrogate_in_a_body_is_refused_with_400_not_a_failure_when_written(escape: bytes) -> None:
    body = b'{"resourceType": "Patient", "name": [{"text": "' + escape + b'"}]}'
    with pytest.raises(FhirError) as caught:
        parse_body(body, FHIR_JSON)
    assert caught.value.status_code == 400
    assert caught.value.issues[0].expression == ("Patient.name[0].text",)
    paired = parse_body(b'{"resourceType": "Patient", "name": [{"text": "\\ud83d\\ude00"}]}', FHIR_JSON)
    assert jsontext.dump_bytes(paired) == '{"resourceType":"Patient","name":[{"text":"😀"}]}'.encode()


@pytest.mark.parametrize(("body", "accepted"), [
    ('{"resourceType": "Patient", "gender": "male"}'.encode("utf-16"), True),
    ('{"resourceType": "Patient", "gender": "male"}'.encode("utf-32"), True),
    (b'{"resourceType": "Patient", "gender": "\xffmale"}', False),
    (b'{"resourceType": "Patient", "gender": "\xc3"}', False),
], ids=["utf-16", "utf-32", "invalid-byte", "truncated-sequence"])
def test_encodings_are_handled_as_before(body: bytes, accepted: bool) -> None:
    if accepted:
        assert parse_body(body, FHIR_JSON) == {"resourceType": "Patient", "gender": "male"}
    else:
        with pytest.raises(FhirError) as caught:
            parse_body(body, FHIR_JSON)
        assert caught.value.status_code == 400


def test_datetimes_uuids_and_dataclasses_are_written_as_before() -> None:
    moment = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC)

    @dataclasses.dataclass
    class Point:
        x: int

    for value in (moment, moment.date(), Point(1)):
        with pytest.raises(TypeError):  # simplejson and json refused them without a default
            jsontext.dumps({"at": value})
    assert jsontext.dumps({"at": moment}, default=str) == json.dumps({"at": moment}, default=str, separators=(",", ":"))
    identifier = uuid.UUID("0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0")
    assert jsontext.dumps({"id": identifier}, default=str) == '{"id":"0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0"}'


def test_big_integers_and_non_string_keys_are_written_as_the_standard_library_writes_them() -> None:
    value = {"big": [2 ** 64, -(2 ** 63) - 1, 10 ** 40], 1: "one", 2.5: "x", None: 0, False: Decimal("0.10")}
    assert jsontext.dumps(value) == '{"big":[18446744073709551616,-9223372036854775809,' + "1" + "0" * 40 + \
        '],"1":"one","2.5":"x","null":0,"false":0.10}'
    assert jsontext.loads(jsontext.dumps({"big": 10 ** 40}))["big"] == 10 ** 40


def test_nesting_deeper_than_orjsons_limit_is_still_written() -> None:
    value: Any = [Decimal("1.50")]
    for _ in range(400):  # 800 levels; orjson alone writes 254
        value = {"extension": [value]}
    assert jsontext.dumps(value) == '{"extension":[' * 400 + "[1.50]" + "]}" * 400


def test_responses_are_the_written_bytes() -> None:
    content = {"resourceType": "Patient", "name": [{"text": "Renée"}], "x": Decimal("2.50")}
    assert FhirJSONResponse(content).body == jsontext.dump_bytes(content)
    assert FhirJSONResponse(content).media_type == FHIR_JSON
    assert JSONResponse({"ok": "é"}).body == '{"ok":"é"}'.encode()
