"""FHIR R4 search semantics of shared/search.py: date ranges and prefixes, parameters and modifiers, paging, links."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, create_engine, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from shared import search
from shared.fhir import FhirError

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
INSTANTS = st.datetimes(min_value=datetime(1850, 1, 1), max_value=datetime(2150, 12, 31), timezones=st.just(UTC))
ZONES = {"": AMSTERDAM, "Z": UTC, "+01:00": timezone(timedelta(hours=1)),
         "-05:30": timezone(-timedelta(hours=5, minutes=30)), "+14:00": timezone(timedelta(hours=14))}
FORMATS = {"year": "%Y", "month": "%Y-%m", "day": "%Y-%m-%d", "minute": "%Y-%m-%dT%H:%M", "second": "%Y-%m-%dT%H:%M:%S"}


@st.composite
def written_dates(draw: st.DrawFn) -> tuple[str, str, str]:
    """A FHIR date value as a client writes it: (text, precision, zone written)."""
    moment = draw(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 12, 31)))
    precision = draw(st.sampled_from(sorted(FORMATS)))
    zone = draw(st.sampled_from(sorted(ZONES))) if precision in ("minute", "second") else ""
    return moment.strftime(FORMATS[precision]) + zone, precision, zone


def date(value: str) -> search.DateValue:
    return search.parse_date(value, now=NOW, parameter="_lastUpdated")


# The issue's examples, at the level of the value.

def test_offset_that_arrived_as_a_space_is_read_as_plus() -> None:
    as_sent = date("ge2026-11-01T00:00:00 01:00")  # "+01:00" sent unencoded: the query string decodes it to a space
    assert as_sent == date("ge2026-11-01T00:00:00+01:00")
    assert as_sent.start == datetime(2026, 10, 31, 23, 0, tzinfo=UTC)
    assert as_sent.text == "ge2026-11-01T00:00:00+01:00"
    assert as_sent.contains(datetime(2026, 10, 31, 23, 0, tzinfo=UTC))
    assert not as_sent.contains(datetime(2026, 10, 31, 22, 59, 59, 999999, tzinfo=UTC))


def test_lt_a_day_matches_everything_before_that_day_began_in_amsterdam() -> None:
    before_2000 = date("lt2000-01-01")
    assert before_2000.contains(datetime(1999, 12, 31, 22, 59, 59, tzinfo=UTC))
    assert not before_2000.contains(datetime(1999, 12, 31, 23, 0, tzinfo=UTC))  # 2000-01-01T00:00 in Amsterdam
    assert not before_2000.contains(NOW)


@pytest.mark.parametrize(("value", "start", "end"), [
    ("2026", datetime(2025, 12, 31, 23, tzinfo=UTC), datetime(2026, 12, 31, 23, tzinfo=UTC)),
    ("2026-07", datetime(2026, 6, 30, 22, tzinfo=UTC), datetime(2026, 7, 31, 22, tzinfo=UTC)),
    ("2026-12", datetime(2026, 11, 30, 23, tzinfo=UTC), datetime(2026, 12, 31, 23, tzinfo=UTC)),
    ("2026-03-29", datetime(2026, 3, 28, 23, tzinfo=UTC), datetime(2026, 3, 29, 22, tzinfo=UTC)),  # 23 hours
    ("2026-10-25", datetime(2026, 10, 24, 22, tzinfo=UTC), datetime(2026, 10, 25, 23, tzinfo=UTC)),  # 25 hours
    ("2026-11-01T10:00Z", datetime(2026, 11, 1, 10, tzinfo=UTC), datetime(2026, 11, 1, 10, 1, tzinfo=UTC)),
    ("2026-11-01T10:00:05-01:00", datetime(2026, 11, 1, 11, 0, 5, tzinfo=UTC),
     datetime(2026, 11, 1, 11, 0, 6, tzinfo=UTC)),
    ("2026-11-01T10:00:05.25Z", datetime(2026, 11, 1, 10, 0, 5, 250000, tzinfo=UTC),
     datetime(2026, 11, 1, 10, 0, 5, 260000, tzinfo=UTC)),
    ("2026-11-01T10:00:05.1234567Z", datetime(2026, 11, 1, 10, 0, 5, 123456, tzinfo=UTC),
     datetime(2026, 11, 1, 10, 0, 5, 123457, tzinfo=UTC)),
    ("9999", datetime(9998, 12, 31, 23, tzinfo=UTC), None),
    ("9999-12-31T23:59:59Z", datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), None),
])
def test_a_partial_date_or_time_is_the_range_of_its_precision(value: str, start: datetime,
                                                              end: datetime | None) -> None:
    parsed = date(value)
    assert (parsed.prefix, parsed.start, parsed.end) == ("eq", start, end)


@pytest.mark.parametrize("value", ["yesterday", "2026-13", "2026-02-30", "2026-11-01T24:00Z", "2026-11-01T10Z",
                                   "2026-11-01T10:00+2:00", "2026-11-01T10:00+01:60", "2026-11-01T10:00+24:00",
                                   "0000", "0001-01-01T00:00+01:00", "2026-11-01Z", "20261101", "xx2026", "ge", ""])
def test_what_is_no_fhir_date_is_refused_naming_the_parameter(value: str) -> None:
    with pytest.raises(FhirError) as refused:
        date(value)
    assert refused.value.status_code == 400
    assert refused.value.issues[0].expression == ("_lastUpdated",)


@given(written_dates(), INSTANTS)
def test_a_value_without_prefix_matches_exactly_the_instants_written_the_same_way_where_it_was_written(
        written: tuple[str, str, str], instant: datetime) -> None:
    text, precision, zone = written
    local = instant.astimezone(ZONES[zone])
    assert date(text).contains(instant) == (local.strftime(FORMATS[precision]) + zone == text)


@given(written_dates(), INSTANTS)
def test_each_prefix_and_its_opposite_split_every_instant(written: tuple[str, str, str], instant: datetime) -> None:
    text = written[0]
    matched = {prefix: date(prefix + text).contains(instant) for prefix in search.DATE_PREFIXES}
    assert matched["ge"] != matched["lt"]
    assert matched["gt"] != matched["le"]
    assert matched["eq"] != matched["ne"]
    assert matched["eq"] == (matched["ge"] and matched["le"])
    assert (matched["sa"], matched["eb"]) == (matched["gt"], matched["lt"])  # the same for a single instant
    assert not matched["eq"] or matched["ap"]


@given(written_dates())
def test_the_range_starts_at_its_first_instant_and_ends_before_the_next(written: tuple[str, str, str]) -> None:
    value = date(written[0])
    assert value.contains(value.start)
    assert value.end is not None and not value.contains(value.end)
    assert not value.contains(value.start - timedelta(microseconds=1))


def test_ap_widens_the_range_by_a_tenth_of_its_distance_to_now() -> None:
    ten_days_ago = date("ap2026-11-20T12:00Z")
    assert ten_days_ago.matches == ((datetime(2026, 11, 19, 12, 0, tzinfo=UTC),
                                     datetime(2026, 11, 21, 12, 1, tzinfo=UTC)),)
    assert date("ap0001-01-02T00:00Z").matches[0][0] == datetime(1, 1, 1, tzinfo=UTC)  # widened past the first: clamped


# Reading parameters.

def _owner_key(value: str) -> str | None:
    return value.upper() if value.isalpha() else None


TABLE = Table("thing", MetaData(), Column("id", Integer, primary_key=True), Column("status", String, nullable=True),
              Column("owner", String, nullable=True), Column("updated", DateTime(timezone=True), nullable=True))
PARAMETERS = {p.name: p for p in (
    search.token("status", TABLE.c.status, documentation="Thing.status.", system="http://example.org/status"),
    search.reference("owner", TABLE.c.owner, documentation="Thing.owner.", read=_owner_key, identifier=True),
    search.date_parameter("_lastUpdated", TABLE.c.updated, documentation="When."),
)}


def parsed(*items: tuple[str, str], prefer: str | None = None, parameters: dict[str, Any] | None = None,
           max_count: int = 500) -> search.Search:
    return search.parse(items, parameters=parameters or PARAMETERS, prefer=prefer, now=NOW, default_count=50,
                        max_count=max_count)


def refusal(*items: tuple[str, str], prefer: str | None = None) -> tuple[int, str, tuple[str, ...]]:
    with pytest.raises(FhirError) as refused:
        parsed(*items, prefer=prefer)
    issue = refused.value.issues[0]
    return refused.value.status_code, issue.diagnostics, issue.expression


def test_unknown_parameters_are_ignored_and_left_out_of_what_was_used_unless_handling_is_strict() -> None:
    lenient = parsed(("status", "active"), ("subject", "Patient/1"), ("_sort", "-_lastUpdated"))
    assert [c.name for c in lenient.criteria] == ["status"]
    assert lenient.used == (("status", "active"),)
    assert parsed(("subject", "x"), prefer="handling=lenient").criteria == ()
    status, diagnostics, expression = refusal(("subject", "x"), ("_sort", "y"),
                                              prefer="return=minimal, handling=strict")
    assert status == 400 and expression == ("subject", "_sort")
    assert "subject" in diagnostics and "_sort" in diagnostics


@pytest.mark.parametrize(("prefer", "handling"), [
    (None, "lenient"), ("", "lenient"), ("handling=strict", "strict"), ("HANDLING = Strict", "strict"),
    ('respond-async, handling="strict"', "strict"), ("return=minimal; handling=lenient", "lenient"),
    ("handling=sloppy", "lenient")])
def test_the_prefer_header_chooses_the_handling(prefer: str | None, handling: str) -> None:
    assert search.handling(prefer) == handling


@pytest.mark.parametrize("key", ["status:text", "status:in", "owner:type", "_lastUpdated:not", "status:"])
def test_a_modifier_that_is_not_implemented_is_refused_whatever_the_handling(key: str) -> None:
    for prefer in (None, "handling=lenient"):
        status, diagnostics, expression = refusal((key, "x"), prefer=prefer)
        assert status == 400 and expression == (key,)
        assert "modifier" in diagnostics


def test_values_are_alternatives_repeats_must_all_hold_and_empty_values_are_no_condition() -> None:
    read = parsed(("status", "a,b\\,c"), ("status", ""), ("owner", "x"), ("_lastUpdated", "ge2026,lt2000"),
                  ("_lastUpdated", ",,"))
    assert [(c.name, c.values) for c in read.criteria] == [
        ("status", ("a", "b,c")), ("owner", ("x",)), ("_lastUpdated", ("ge2026", "lt2000"))]
    assert [d.prefix for d in read.criteria[2].dates] == ["ge", "lt"]
    assert read.used == (("status", "a,b\\,c"), ("owner", "x"), ("_lastUpdated", "ge2026,lt2000"))


def test_a_date_is_named_in_the_self_link_as_it_was_read() -> None:
    read = parsed(("_lastUpdated", "ge2026-11-01T00:00:00 01:00"))
    assert read.used == (("_lastUpdated", "ge2026-11-01T00:00:00+01:00"),)


@pytest.mark.parametrize(("items", "count", "offset"), [
    ((), 50, 0), ((("_count", "0"),), 0, 0), ((("_count", "7"), ("_offset", "14")), 7, 14),
    ((("_count", "100000"),), 500, 0), ((("_count", ""),), 50, 0)])
def test_count_and_offset(items: tuple[tuple[str, str], ...], count: int, offset: int) -> None:
    read = parsed(*items)
    assert (read.count, read.offset) == (count, offset)


@pytest.mark.parametrize("items", [
    (("_count", "-1"),), (("_count", "many"),), (("_count", "1.5"),), (("_offset", "1234567890"),),
    (("_count", "٣"),), (("_count", "1"), ("_count", "2")), (("owner:missing", "yes"),), (("status", "a\x00b"),)])
def test_malformed_paging_modifier_values_and_control_characters_are_400(items: tuple[tuple[str, str], ...]) -> None:
    assert refusal(*items)[0] == 400


def test_a_required_parameter_must_be_given_with_a_value() -> None:
    required = {"owner": search.reference("owner", TABLE.c.owner, documentation="x", read=_owner_key,
                                          required=True)}
    assert parsed(("owner", "a"), parameters=required).values("owner") == ["a"]
    for items in ((), (("owner", ""),), (("owner:missing", "false"),)):
        with pytest.raises(FhirError) as refused:
            parsed(*items, parameters=required)
        assert refused.value.issues[0].code == "required"


def test_the_capability_documentation_names_exactly_the_modifiers_and_prefixes() -> None:
    status = PARAMETERS["status"].capability()
    assert status["name"] == "status" and status["type"] == "token"
    assert "Modifiers: :not, :missing;" in status["documentation"]
    owner = PARAMETERS["owner"].capability()["documentation"]
    assert "Modifiers: :identifier, :missing;" in owner and "Prefixes" not in owner
    when = PARAMETERS["_lastUpdated"].capability()["documentation"]
    assert "Modifiers: :missing;" in when and "Prefixes: eq ne gt lt ge le sa eb ap" in when


# Answering.

def links(bundle: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    return {link["relation"]: parse_qsl(urlsplit(link["url"]).query, keep_blank_values=True)
            for link in bundle["link"]}


def test_searchset_has_the_total_absolute_full_urls_and_links_that_repeat_what_was_used() -> None:
    read = parsed(("status:not", "done"), ("ignored", "1"), ("_lastUpdated", "ge2026-11-01T00:00:00 01:00"),
                  ("_count", "2"), ("_offset", "2"), ("_format", "json"))
    bundle = search.searchset(base="https://c.example/fhir", resource_type="Task", search=read, total=5,
                              resources=[{"resourceType": "Task", "id": "t1"}])
    assert bundle["total"] == 5 and bundle["type"] == "searchset"
    assert bundle["entry"] == [{"fullUrl": "https://c.example/fhir/Task/t1", "resource": {"resourceType": "Task",
                                                                                           "id": "t1"},
                                "search": {"mode": "match"}}]
    used = [("status:not", "done"), ("_lastUpdated", "ge2026-11-01T00:00:00+01:00"), ("_format", "json")]
    assert links(bundle) == {"self": [*used, ("_count", "2"), ("_offset", "2")],
                             "first": [*used, ("_count", "2"), ("_offset", "0")],
                             "previous": [*used, ("_count", "2"), ("_offset", "0")],
                             "next": [*used, ("_count", "2"), ("_offset", "4")]}
    assert "%2B01%3A00" in bundle["link"][0]["url"] or "%2B01:00" in bundle["link"][0]["url"]
    assert bundle["link"][0]["url"].startswith("https://c.example/fhir/Task?")


def test_count_zero_answers_the_total_with_no_entries_and_no_page_links() -> None:
    bundle = search.searchset(base="b", resource_type="Task", search=parsed(("_count", "0")), total=5, resources=[])
    assert bundle["total"] == 5 and "entry" not in bundle
    assert [link["relation"] for link in bundle["link"]] == ["self", "first"]


@pytest.mark.parametrize(("wanted", "refused"), [("json", False), ("application/fhir+json", False),
                                                 ("application/fhir json", False), ("xml", True), ("html", True)])
def test_json_only_searches_refuse_another_format_with_406(wanted: str, refused: bool) -> None:
    read = parsed(("_format", wanted))
    if refused:
        with pytest.raises(FhirError) as answer:
            search.require_json(read)
        assert answer.value.status_code == 406
    else:
        search.require_json(read)


# The SQL says what the Python says.

@pytest.fixture(scope="module")
def database() -> Iterator[Connection]:
    engine = create_engine("sqlite://")
    TABLE.metadata.create_all(engine)
    with engine.connect() as connection:
        yield connection
    engine.dispose()


def found(connection: Connection, *items: tuple[str, str]) -> set[int]:
    conditions = parsed(*items).conditions(PARAMETERS)
    return set(connection.execute(select(TABLE.c.id).where(*conditions)).scalars())


@settings(max_examples=60, deadline=None)
@given(written_dates(), st.sampled_from(search.DATE_PREFIXES), st.lists(INSTANTS, min_size=1, max_size=12))
def test_the_sql_of_a_date_matches_the_same_instants(database: Connection, written: tuple[str, str, str],
                                                      prefix: str, instants: list[datetime]) -> None:
    value = date(prefix + written[0])
    database.execute(TABLE.delete())
    database.execute(TABLE.insert(), [{"id": i, "updated": t} for i, t in enumerate(instants)])
    assert found(database, ("_lastUpdated", prefix + written[0])) == {
        i for i, t in enumerate(instants) if value.contains(t)}


def test_token_not_and_missing_and_reference_identifier_in_sql(database: Connection) -> None:
    database.execute(TABLE.delete())
    database.execute(TABLE.insert(), [{"id": 1, "status": "done", "owner": "A"},
                                      {"id": 2, "status": "open", "owner": None},
                                      {"id": 3, "status": None, "owner": "B"}])
    assert found(database, ("status", "done,open")) == {1, 2}
    assert found(database, ("status", "http://example.org/status|done")) == {1}
    assert found(database, ("status", "http://other.example|done")) == set()
    assert found(database, ("status:not", "done")) == {2, 3}  # no code at all is "not done" too
    assert found(database, ("status:missing", "true")) == {3}
    assert found(database, ("status:missing", "false")) == {1, 2}
    assert found(database, ("owner", "a")) == found(database, ("owner:identifier", "a")) == {1}
    assert found(database, ("owner", "1")) == set()  # read as no owner at all
    assert found(database, ("owner:missing", "true")) == {2}
    assert found(database, ("status", "done,open"), ("owner:missing", "false")) == {1}


def test_json_text_reads_a_path_on_sqlite_and_compiles_for_postgresql(database: Connection) -> None:
    document = Table("doc", MetaData(), Column("content", String))
    document.create(database)
    database.execute(document.insert(), [{"content": '{"focus": {"reference": "ServiceRequest/1"}}'},
                                         {"content": '{"focus": {"identifier": {"value": "x"}}}'}])
    reference = search.json_text(document.c.content, "focus", "reference")
    assert list(database.execute(select(reference)).scalars()) == ["ServiceRequest/1", None]
    assert "json_extract_path_text(CAST(doc.content AS JSON), 'focus', 'reference')" in str(
        select(reference).compile(dialect=postgresql.dialect()))
    with pytest.raises(ValueError):
        search.json_text(document.c.content, "focus'); DROP TABLE doc; --")


KEYS = st.sampled_from(["status", "status:not", "status:missing", "status:text", "owner", "owner:identifier",
                        "owner:missing", "_lastUpdated", "_lastUpdated:missing", "_count", "_offset", "_format",
                        "unknown", "owner.name", "_sort"])
VALUES = st.one_of(st.text(max_size=40), st.from_regex(r"(eq|ne|gt|lt|ge|le|sa|eb|ap)?[0-9]{4}(-[0-9]{2}){0,2}"
                                                       r"(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?"
                                                       r"([ +-][0-9]{2}:[0-9]{2}|Z)?)?", fullmatch=True))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(KEYS, VALUES), max_size=6), st.sampled_from([None, "handling=strict"]))
def test_any_query_is_read_or_refused_with_a_4xx_and_what_is_read_runs_on_the_database(
        database: Connection, items: list[tuple[str, str]], prefer: str | None) -> None:
    try:
        read = parsed(*items, prefer=prefer)
    except FhirError as refused:
        assert refused.status_code == 400 and refused.issues[0].expression
        return
    query = select(TABLE.c.id).where(*read.conditions(PARAMETERS))
    database.execute(query).all()
    str(query.compile(dialect=postgresql.dialect()))
    bundle = search.searchset(base="https://c.example/fhir", resource_type="Thing", search=read, total=0, resources=[])
    assert parse_qsl(urlsplit(bundle["link"][0]["url"]).query, keep_blank_values=True)[:len(read.used)] == list(
        read.used)


def test_a_search_has_bounded_conditions_and_alternatives() -> None:
    assert refusal(*[("status", "a")] * (search.MAX_CRITERIA + 1))[0] == 400
    assert refusal(("status", ",".join(["a"] * (search.MAX_ALTERNATIVES + 1))))[0] == 400
    assert len(parsed(*[("status", ",".join(["a"] * search.MAX_ALTERNATIVES))] * search.MAX_CRITERIA).criteria) == 50
