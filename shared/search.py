"""FHIR R4 search, once for every service: parameters and modifiers, date ranges and prefixes, paging, totals, links.

A service declares each search parameter once (`token`, `reference`, `date` or a `SearchParameter` of its own):
its name, FHIR type, what a value means there, and the SQL condition one occurrence makes. `parse` reads a
request against those declarations as the R4 search page says (https://hl7.org/fhir/R4/search.html), `fetch`
runs the query for one page and counts every match, and `searchset` builds the Bundle with its links. The same
declarations give the CapabilityStatement's `searchParam`s, so what is listed is what is implemented.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from typing import Any, Protocol
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, String, and_, false, func, not_, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from shared.fhir import FHIR_JSON, FhirError, Issue

# A date or a time without an offset is read in the region's zone: FHIR assumes "the server's local time zone".
LOCAL_ZONE = ZoneInfo("Europe/Amsterdam")
DATE_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
# ap: the value's range widened on each side by 10 % of the time between its start and now (the spec's suggestion).
APPROXIMATION = 0.1
RESULT_PARAMETERS = ("_count", "_offset", "_format")
JSON_FORMATS = frozenset({"json", "application/json", FHIR_JSON})
_FIRST_INSTANT = datetime(1, 1, 1, tzinfo=UTC)
_DATE = re.compile(r"(?P<year>[0-9]{4})(?:-(?P<month>[0-9]{2})(?:-(?P<day>[0-9]{2})"
                   r"(?:T(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})(?::(?P<second>[0-9]{2})(?:\.(?P<fraction>[0-9]{1,9}))?)?"
                   r"(?P<zone>Z|[+-][0-9]{2}:[0-9]{2})?)?)?)?")
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")
_UNESCAPED_COMMA = re.compile(r"(?<!\\),")
_WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")  # nine digits at most: no page lies beyond, and no integer overflows
# Bounds on one request's conditions: far beyond any real search, and well within the databases' expression limits.
MAX_CRITERIA, MAX_ALTERNATIVES = 50, 100


def _refused(parameter: str, message: str, code: str = "value") -> FhirError:
    return FhirError(400, Issue("error", code, f"{parameter}: {message}", (parameter,)))


# Dates --------------------------------------------------------------------------------------------------------------

Interval = tuple[datetime | None, datetime | None]
"""Instants from the first (inclusive; None: since ever) to the second (exclusive; None: for ever), in UTC."""


@dataclass(frozen=True)
class DateValue:
    """One value of a date parameter: its prefix, the range its precision gives it, and the instants it matches.

    `start` and `end` are UTC with `end` exclusive (None: the range runs past the year 9999). `matches` is the
    answer for a target that is one instant (an instant, or a dateTime to the microsecond, as every date this
    server searches is): R4 compares the parameter's range with the target's, and for a single instant t that is
    eq: start ≤ t < end; ne: the rest; gt and sa: t ≥ end; lt and eb: t < start; ge: t ≥ start; le: t < end;
    ap: the range widened by `APPROXIMATION` of the gap to now on each side.
    """

    prefix: str
    start: datetime
    end: datetime | None
    text: str  # as read: prefix and value, a '+' that arrived as a space restored
    matches: tuple[Interval, ...]

    def contains(self, instant: datetime) -> bool:
        """Whether an aware instant is matched (the same answer as the SQL of `instants_clause`)."""
        return any((low is None or instant >= low) and (high is None or instant < high) for low, high in self.matches)


def parse_date(value: str, *, now: datetime, parameter: str = "date") -> DateValue:
    """Read a date parameter's value: `[prefix]YYYY[-MM[-DD[Thh:mm[:ss[.fff]][Z|±hh:mm]]]]`.

    A '+' of an offset sent unencoded arrives as a space and is read as '+'. Without an offset the value is local
    (`LOCAL_ZONE`), so a day is that day in the Netherlands, daylight saving included. Fractions beyond
    microseconds are cut to the microsecond. `now` (aware) anchors `ap`. Raises FhirError 400 naming the
    parameter when the value is no FHIR date, or its range starts outside the years 0001 to 9999 in UTC.
    """
    prefix = value[:2] if value[:2] in DATE_PREFIXES else "eq"
    text = (value[2:] if value[:2] in DATE_PREFIXES else value).replace(" ", "+")
    form = _DATE.fullmatch(text)
    if form is None:
        raise _refused(parameter, f"{value!r} is not a FHIR date: [{'|'.join(DATE_PREFIXES)}]YYYY[-MM[-DD[Thh:mm"
                                  "[:ss[.fff]][Z|+hh:mm|-hh:mm]]]]")
    part = {name: int(digits) for name, digits in form.groupdict().items()
            if digits is not None and name not in ("fraction", "zone")}
    fraction = form["fraction"] or ""
    try:
        zone = _zone(form["zone"])
        start_there = datetime(part["year"], part.get("month", 1), part.get("day", 1), part.get("hour", 0),
                               part.get("minute", 0), part.get("second", 0), int(fraction[:6].ljust(6, "0")),
                               tzinfo=zone)
        start = start_there.astimezone(UTC)
    except ValueError as exc:
        raise _refused(parameter, f"{value!r} is not a valid date or time ({exc})") from exc
    except OverflowError as exc:
        raise _refused(parameter, f"{value!r} lies outside the instants searched (0001 to 9999 in UTC)") from exc
    end = _range_end(start_there, start, part, len(fraction))
    return DateValue(prefix, start, end, prefix + text if value[:2] in DATE_PREFIXES else text,
                     _matches(prefix, start, end, now))


def _zone(written: str | None) -> tzinfo:
    if written is None:
        return LOCAL_ZONE
    if written == "Z":
        return UTC
    hours, minutes = int(written[1:3]), int(written[4:6])
    if minutes > 59:
        raise ValueError(f"offset {written} has more than 59 minutes")
    sign = -1 if written[0] == "-" else 1
    return timezone(sign * timedelta(hours=hours, minutes=minutes))  # ValueError from 24 hours on


def _range_end(start_there: datetime, start: datetime, part: Mapping[str, int], digits: int) -> datetime | None:
    """The exclusive end of the value's range in UTC: the next year, month or day where it was written (wall clock,
    so a day of a daylight-saving change is 23 or 25 hours), or the next minute, second or fraction."""
    try:
        if "hour" not in part:
            if "month" not in part:
                following = date(part["year"] + 1, 1, 1)
            elif "day" not in part:
                following = date(part["year"] + part["month"] // 12, part["month"] % 12 + 1, 1)
            else:
                following = start_there.date() + timedelta(days=1)
            return datetime.combine(following, time(), tzinfo=start_there.tzinfo).astimezone(UTC)
        width = (timedelta(minutes=1) if "second" not in part else timedelta(seconds=1) if not digits
                 else timedelta(microseconds=10 ** (6 - min(digits, 6))))
        return start + width
    except (ValueError, OverflowError):
        return None  # the range runs past 9999-12-31: nothing stored lies beyond


def _matches(prefix: str, start: datetime, end: datetime | None, now: datetime) -> tuple[Interval, ...]:
    after: tuple[Interval, ...] = ((end, None),) if end is not None else ()
    before: tuple[Interval, ...] = ((None, start),)
    if prefix == "ap":
        margin = abs(now - start) * APPROXIMATION
        try:
            low = start - margin
        except OverflowError:
            low = _FIRST_INSTANT
        try:
            high = end + margin if end is not None else None
        except OverflowError:
            high = None
        return ((low, high),)
    return {"eq": ((start, end),), "ne": before + after, "gt": after, "sa": after, "lt": before, "eb": before,
            "ge": ((start, None),), "le": ((None, end),)}[prefix]


def instants_clause(column: Any, intervals: Iterable[Interval]) -> ColumnElement[bool]:
    """SQL that holds when `column` (an aware instant stored in UTC) lies in one of the intervals."""
    parts = []
    for low, high in intervals:
        bounds = [*(() if low is None else (column >= low,)), *(() if high is None else (column < high,))]
        parts.append(and_(true(), *bounds))
    return or_(false(), *parts)


# Parameters ---------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Criterion:
    """One occurrence of a search parameter: occurrences all hold (AND); the values are alternatives (OR).

    `values` are the comma-separated alternatives with `\\,` read as a comma; `dates` the same read as dates (for
    a date parameter); for `:missing` the one value is "true" or "false".
    """

    name: str
    modifier: str | None
    values: tuple[str, ...]
    dates: tuple[DateValue, ...] = ()

    @property
    def missing(self) -> bool:
        return self.values == ("true",)


class Condition(Protocol):
    def __call__(self, criterion: Criterion, /) -> ColumnElement[bool]: ...


@dataclass(frozen=True)
class SearchParameter:
    """A search parameter a service serves: the FHIR type, what a value means there, the modifiers it implements
    (any other is refused), and the SQL condition of one occurrence."""

    name: str
    type: str
    documentation: str
    where: Condition
    modifiers: tuple[str, ...] = ()
    required: bool = False

    def capability(self) -> dict[str, str]:
        """The CapabilityStatement.rest.resource.searchParam: its documentation names the modifiers (and, for a
        date, the prefixes) implemented."""
        modifiers = ", ".join(f":{m}" for m in self.modifiers) or "none"
        text = (f"{self.documentation} {'Required. ' if self.required else ''}Commas separate alternatives (OR), "
                f"a repeated parameter must also hold (AND). Modifiers: {modifiers}; any other is refused with 400.")
        if self.type == "date":
            text += (f" Prefixes: {' '.join(DATE_PREFIXES)} (eq when none). A value is the range its precision "
                     "gives (a year, month, day, minute, second or fraction), in Europe/Amsterdam time when it has "
                     "no offset; a '+' of the offset that arrives as a space is read as '+'. ap widens the range "
                     "by 10 % of the time between its start and now on each side.")
        return {"name": self.name, "type": self.type, "documentation": text}


def _missing(column: Any, criterion: Criterion) -> ColumnElement[bool]:
    return column.is_(None) if criterion.missing else column.is_not(None)


def token(name: str, column: Any, *, documentation: str, system: str | None = None) -> SearchParameter:
    """A code kept in one column: `code` or `system|code` (the system, when given, must be `system`); `:not`
    matches what has none of the codes (or no code at all), `:missing` what has no code or has one."""
    def where(criterion: Criterion) -> ColumnElement[bool]:
        if criterion.modifier == "missing":
            return _missing(column, criterion)
        codes = {code for value in criterion.values if (code := _code(value, system)) is not None}
        matched = column.in_(codes) if codes else false()
        return or_(column.is_(None), not_(matched)) if criterion.modifier == "not" else matched
    return SearchParameter(name, "token", documentation, where, ("not", "missing"))


def _code(value: str, system: str | None) -> str | None:
    if "|" not in value:
        return value
    given, _, code = value.partition("|")
    return code if system is not None and given == system else None


def reference(name: str, column: Any, *, documentation: str, read: Callable[[str], str | None],
              identifier: bool = False, missing: bool = True, required: bool = False) -> SearchParameter:
    """A reference kept in one column as the key `read` makes of a value (None: the value matches nothing; `read`
    raises FhirError 400 for a value it cannot read). `:identifier` reads the same values, for references that
    are identifiers here; `:missing` matches an empty or a filled column."""
    def where(criterion: Criterion) -> ColumnElement[bool]:
        if criterion.modifier == "missing":
            return _missing(column, criterion)
        keys = {key for value in criterion.values if (key := read(value)) is not None}
        return column.in_(keys) if keys else false()
    modifiers = (*(("identifier",) if identifier else ()), *(("missing",) if missing else ()))
    return SearchParameter(name, "reference", documentation, where, modifiers, required)


def date_parameter(name: str, column: Any, *, documentation: str) -> SearchParameter:
    """An instant kept in one column (UTC), searched with every prefix; `:missing` matches an empty or a filled one."""
    def where(criterion: Criterion) -> ColumnElement[bool]:
        if criterion.modifier == "missing":
            return _missing(column, criterion)
        return or_(false(), *(instants_clause(column, value.matches) for value in criterion.dates))
    return SearchParameter(name, "date", documentation, where, ("missing",))


# Reading a request --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Search:
    """A search request as the server read it: the criteria it applies, the page asked for, and the parameters
    used (for the self link: unknown ones a lenient search ignored are left out, as R4 asks)."""

    criteria: tuple[Criterion, ...]
    count: int
    offset: int
    used: tuple[tuple[str, str], ...]
    format: str | None = None
    include: tuple[str, ...] = ()  # the `_include` values asked for, each one the resource declares

    def values(self, name: str) -> list[str]:
        """Every alternative given for `name` without a modifier (or with :identifier), in order."""
        return [value for c in self.criteria if c.name == name and c.modifier in (None, "identifier")
                for value in c.values]

    def conditions(self, parameters: Mapping[str, SearchParameter]) -> list[ColumnElement[bool]]:
        """The SQL conditions of every criterion, each by its parameter's declaration."""
        return [parameters[c.name].where(c) for c in self.criteria]


def handling(prefer: str | None) -> str:
    """`strict` or `lenient` (the default) from the Prefer header(s), e.g. `return=minimal, handling=strict`."""
    for preference in re.split(r"[,;]", prefer or ""):
        key, _, value = preference.partition("=")
        if key.strip().lower() == "handling" and value.strip().strip('"').lower() in ("strict", "lenient"):
            return value.strip().strip('"').lower()
    return "lenient"


def parse(items: Iterable[tuple[str, str]], *, parameters: Mapping[str, SearchParameter], prefer: str | None,
          now: datetime, default_count: int, max_count: int, includes: Sequence[str] = ()) -> Search:
    """Read the query parameters of a search (decoded `(name, value)` pairs in request order).

    Rules (R4 search): a known parameter with an empty value is no condition; an unknown parameter is ignored
    unless `Prefer: handling=strict`, which refuses it; a modifier the parameter does not implement is refused
    whatever the handling; `_count` is 0 (the total alone) up to `max_count` (a larger one is read as
    `max_count`), default `default_count`; `_offset` is a whole number; `_format` is kept for the route to check;
    `_include` (repeatable) takes the values in `includes` (e.g. `Task:patient`), another value is refused, and
    where the resource declares none it is an unknown parameter like any other.
    Raises FhirError 400 with an OperationOutcome naming the parameter or modifier.
    """
    criteria: list[Criterion] = []
    used: list[tuple[str, str]] = []
    unknown: list[str] = []
    paging: dict[str, str] = {}
    include: list[str] = []
    for key, value in items:
        if key == "_include" and includes:
            if value not in includes:
                raise _refused(key, f"{value!r} is not supported (supported: {', '.join(includes)})", "not-supported")
            if value not in include:
                include.append(value)
                used.append((key, value))
            continue
        if key in RESULT_PARAMETERS:
            if key in paging:
                raise _refused(key, "is given more than once")
            paging[key] = value
            continue
        name, colon, modifier = key.partition(":")
        parameter = parameters.get(name)
        if parameter is None:
            unknown.append(key)
            continue
        if colon and modifier not in parameter.modifiers:
            implemented = ", ".join(f":{m}" for m in parameter.modifiers) or "no modifiers"
            raise _refused(key, f"the modifier :{modifier} is not supported on {name} (supported: {implemented})",
                           "not-supported")
        if _CONTROL_CHARACTER.search(value):
            raise _refused(key, "contains a control character")
        criterion = _criterion(parameter, modifier or None, value, now, key)
        if criterion is not None:
            if len(criteria) == MAX_CRITERIA:
                raise _refused(key, f"a search takes at most {MAX_CRITERIA} conditions")
            criteria.append(criterion)
            used.append((key, ",".join(d.text for d in criterion.dates) if criterion.dates else value))
    if unknown and handling(prefer) == "strict":
        supported = ", ".join([*parameters, *RESULT_PARAMETERS])
        raise FhirError(400, Issue("error", "not-supported", f"unknown search parameter {', '.join(unknown)} "
                                   f"(Prefer: handling=strict); supported: {supported}", tuple(unknown)))
    for parameter in parameters.values():
        if parameter.required and not any(c.name == parameter.name and c.modifier != "missing" for c in criteria):
            raise FhirError(400, Issue("error", "required", f"{parameter.name} is required", (parameter.name,)))
    count = min(_whole_number(paging, "_count", default_count), max_count)
    offset = _whole_number(paging, "_offset", 0)
    if "_format" in paging:
        used.append(("_format", paging["_format"]))
    return Search(tuple(criteria), count, offset, tuple(used), paging.get("_format"), tuple(include))


def _criterion(parameter: SearchParameter, modifier: str | None, value: str, now: datetime,
               key: str) -> Criterion | None:
    if modifier == "missing":
        if value not in ("true", "false"):
            raise _refused(key, f"takes true or false, not {value!r}")
        return Criterion(parameter.name, modifier, (value,))
    alternatives = tuple(v.replace("\\,", ",") for v in _UNESCAPED_COMMA.split(value) if v)
    if not alternatives:
        return None
    if len(alternatives) > MAX_ALTERNATIVES:
        raise _refused(key, f"takes at most {MAX_ALTERNATIVES} alternatives")
    dates = tuple(parse_date(v, now=now, parameter=key) for v in alternatives) if parameter.type == "date" else ()
    return Criterion(parameter.name, modifier, alternatives, dates)


def _whole_number(paging: Mapping[str, str], name: str, default: int) -> int:
    raw = paging.get(name)
    if raw is None or raw == "":
        return default
    if not _WHOLE_NUMBER.fullmatch(raw):
        raise _refused(name, "must be a whole number of at most nine digits")
    return int(raw)


class _Request(Protocol):
    @property
    def query_params(self) -> Any: ...

    @property
    def headers(self) -> Any: ...


def read_request(request: _Request, parameters: Mapping[str, SearchParameter], *, default_count: int = 50,
                 max_count: int = 500, now: datetime | None = None, includes: Sequence[str] = ()) -> Search:
    """`parse` for a Starlette request: its query parameters and every Prefer header; `now` defaults to the clock."""
    return parse(request.query_params.multi_items(), parameters=parameters,
                 prefer=", ".join(request.headers.getlist("prefer")), now=now or datetime.now(UTC),
                 default_count=default_count, max_count=max_count, includes=includes)


def require_json(search: Search) -> None:
    """For searches answered in JSON only: a `_format` asking for anything else is 406."""
    if search.format is not None and search.format.split(";")[0].strip().replace(" ", "+").lower() not in JSON_FORMATS:
        raise FhirError(406, Issue("error", "not-supported", "_format must be json here", ("_format",)))


# Running a search and answering it ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Page:
    """One page of rows and the number of all matches."""

    rows: list[Any]
    total: int


async def fetch(session: AsyncSession, query: Select[Any], *, order_by: Sequence[Any], count: int,
                offset: int) -> Page:
    """The page `offset`..`offset+count` of `query` in `order_by` (which must end in a unique key, so pages neither
    overlap nor skip), and `total`, a COUNT of every row the query matches. `count` 0 reads no rows."""
    total = (await session.execute(select(func.count()).select_from(query.order_by(None).subquery()))).scalar_one()
    if not count:
        return Page([], total)
    rows = (await session.execute(query.order_by(*order_by).offset(offset).limit(count))).scalars()
    return Page(list(rows), total)


def searchset(*, base: str, resource_type: str, search: Search, total: int,
              resources: Iterable[Mapping[str, Any]],
              included: Iterable[tuple[Mapping[str, Any], str]] = ()) -> dict[str, Any]:
    """The searchset Bundle: `total` (all matches), absolute fullUrls on `base` (the service's public FHIR base),
    and `self`, `first`, `previous` and `next` links that repeat exactly the parameters used; then the `included`
    resources (resource, absolute fullUrl) with search mode `include`; no `entry` when the page is empty."""
    def url(offset: int) -> str:
        query = urlencode([*search.used, ("_count", str(search.count)), ("_offset", str(offset))],
                          quote_via=quote, safe=":|,/")
        return f"{base}/{resource_type}?{query}"

    links = [{"relation": "self", "url": url(search.offset)}, {"relation": "first", "url": url(0)}]
    if search.count and search.offset > 0:
        links.append({"relation": "previous", "url": url(max(0, search.offset - search.count))})
    if search.count and search.offset + search.count < total:
        links.append({"relation": "next", "url": url(search.offset + search.count)})
    entries = [{"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "match"}}
               for r in resources]
    entries += [{"fullUrl": url, "resource": r, "search": {"mode": "include"}} for r, url in included]
    bundle = {"resourceType": "Bundle", "type": "searchset", "total": total, "link": links}
    return {**bundle, "entry": entries} if entries else bundle  # FHIR JSON has no empty arrays


def paging_documentation(*, default_count: int, max_count: int, order: str) -> str:
    """The CapabilityStatement words for what every search of a resource does beyond its parameters."""
    return (f"Search: _count 0 to {max_count} (default {default_count}; more is read as {max_count}; 0 answers the "
            f"total alone), _offset; total counts every match; self, first, previous and next links. {order} "
            "An unknown parameter is ignored and left out of the self link, or refused with 400 under "
            "Prefer: handling=strict; an unsupported modifier is always refused with 400.")


# JSON inside a text column ------------------------------------------------------------------------------------------

_JSON_KEY = re.compile(r"[A-Za-z][A-Za-z0-9]*")


class _JsonText(FunctionElement[str]):
    type = String()
    inherit_cache = False  # the path is compiled into the SQL but is no part of a cache key
    name = "json_text"


def json_text(column: Any, *path: str) -> ColumnElement[str]:
    """The text at `path` (object keys) of the JSON document a text column holds, NULL where there is none; on SQLite
    `json_extract`, on PostgreSQL `json_extract_path_text`. The keys are code, never request input."""
    if not path or not all(_JSON_KEY.fullmatch(key) for key in path):
        raise ValueError(f"json_text takes plain object keys, not {path!r}")
    expression = _JsonText(column)
    expression.path = path  # type: ignore[attr-defined]
    return expression


@compiles(_JsonText, "sqlite")
def _json_text_sqlite(element: _JsonText, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(list(element.clauses)[0], **kw)
    return f"json_extract({column}, '$.{'.'.join(element.path)}')"  # type: ignore[attr-defined]


@compiles(_JsonText, "postgresql")
def _json_text_postgresql(element: _JsonText, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(list(element.clauses)[0], **kw)
    keys = ", ".join(f"'{key}'" for key in element.path)  # type: ignore[attr-defined]
    return f"json_extract_path_text(CAST({column} AS JSON), {keys})"
