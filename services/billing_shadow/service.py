"""Use cases of shadow billing: collect facts from events, derive and price the prestation, build feeds.

Facts may arrive late, twice or out of order across topics; every handler stores its fact
and re-derives, so the line for a request depends only on the set of facts, not their order.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import json
import logging
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Row, bindparam, delete, exists, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.billing_shadow import events
from services.billing_shadow.domain import ledger
from services.billing_shadow.domain.derivation import Contact, RequestFacts, derive
from services.billing_shadow.domain.seed import DESCRIPTIONS, SEED, SHADOW
from services.billing_shadow.domain.shadow import HOSPITAL_REFERRAL_CODE, TRIAGE_ONLY_CODE, shadow_code
from services.billing_shadow.domain.tariffs import (
    AMSTERDAM,
    Tariff,
    close_for_new_version,
    select_tariff,
    service_day,
)
from services.billing_shadow.models import (
    ContactFact,
    FeedDirty,
    FeedRevision,
    OpenDbcReport,
    PrestationLine,
    RequestFact,
    ShadowLine,
    TariffRow,
)
from shared import metrics
from shared.bus.consumer import PoisonMessage
from shared.bus.envelope import Event
from shared.identifiers import UZOVI_SYSTEM
from shared.refusals import Refused
from shared.region import ORGANISATIONS
from shared.writes import Writes

ACUTE_REQUEST_SYSTEM = "https://regiozorg.example/fhir/NamingSystem/acute-request"
log = logging.getLogger(__name__)
KIND_OF_ORG = {o.token: o.kind for o in ORGANISATIONS}

# The consumers' path (a fact in, the prestation derived) reads and writes through SQLAlchemy Core on these tables,
# with statements built once here; corrections and reports read the models.
FACT = RequestFact.__table__  # type: ignore[attr-defined]
CONTACT = ContactFact.__table__  # type: ignore[attr-defined]
LEDGER = PrestationLine.__table__  # type: ignore[attr-defined]
SHADOW_LEDGER = ShadowLine.__table__  # type: ignore[attr-defined]
TARIFF = TariffRow.__table__  # type: ignore[attr-defined]
DIRTY = FeedDirty.__table__  # type: ignore[attr-defined]
REVISION = FeedRevision.__table__  # type: ignore[attr-defined]
OPEN_DBC = OpenDbcReport.__table__  # type: ignore[attr-defined]
_FACT = select(FACT).where(FACT.c.id == bindparam("request_id"))
_CONTACTS = select(CONTACT.c.id, CONTACT.c.act_class, CONTACT.c.performer, CONTACT.c.start).where(
    CONTACT.c.acute_request_id == bindparam("request_id"))
_OPEN_DBC = select(OPEN_DBC.c.end).where(OPEN_DBC.c.pseudonym == bindparam("pseudonym"),
                                         OPEN_DBC.c.start <= bindparam("day"))
_TARIFFS = select(TARIFF.c.key, TARIFF.c.code, TARIFF.c.price_cents, TARIFF.c.valid_from, TARIFF.c.valid_to,
                  TARIFF.c.source)
_LINES = select(LEDGER).where(LEDGER.c.acute_request_id == bindparam("request_id")).order_by(LEDGER.c.sequence)
_SET_CHANGED_AFTER_LOCK = update(FACT).where(FACT.c.id == bindparam("request_id")).values(
    changed_after_lock=bindparam("changed"))
# Returned with the fact, so that deriving needs no query for them in the usual case: whether the tariff table
# changed since it was last read (`_tariffs`) and whether a hospital reported any open DBC for the patient.
_FACT_EXTRAS = (select(func.count()).select_from(TARIFF).scalar_subquery().label("tariff_rows"),
                select(func.max(TARIFF.c.pk)).scalar_subquery().label("tariff_last"),
                select(func.count()).select_from(OPEN_DBC).where(OPEN_DBC.c.pseudonym == bindparam("pseudonym"))
                .scalar_subquery().label("dbc_reports"))
# Tariff tables as last read, per database and stamp (rows, highest key): a new version always adds a row (and at
# most ends the one before it in the same transaction), and prices are never edited in place (domain.tariffs).
_TARIFF_TABLES: dict[tuple[str, int, int | None], list[Tariff]] = {}
# A fact's defaults when its first event makes it (RequestFact's own).
_NEW_FACT = {"pseudonym": "", "disposition": None, "uzovi": None, "triaged_at": None, "open_dbc": False,
             "closed_at": None, "expected_contacts": "[]", "withdrawn_reason": None, "changed_after_lock": False}


def _dialect_insert(dialect: str) -> Any:
    return postgresql_insert if dialect == "postgresql" else sqlite_insert


@functools.cache
def _fact_upsert(dialect: str, updated: tuple[str, ...]) -> Any:
    """Make the request's fact or set `updated` on it, locked for this transaction and returned: one statement
    for what `_locked_fact` and the assignments after it did in three."""
    upsert = _dialect_insert(dialect)(FACT).values({"id": bindparam("request_id"),
                                                    **{name: bindparam(name) for name in _NEW_FACT}})
    # Nothing to set still takes the row lock: the pseudonym is set to itself.
    changes = {name: getattr(upsert.excluded, name) for name in updated} or {"pseudonym": FACT.c.pseudonym}
    return upsert.on_conflict_do_update(index_elements=[FACT.c.id], set_=changes).returning(
        *FACT.c, *_FACT_EXTRAS)


@functools.cache
def _contact_insert(dialect: str) -> Any:
    return _dialect_insert(dialect)(CONTACT).values(
        id=bindparam("contact_id"), acute_request_id=bindparam("request_id"), act_class=bindparam("act_class"),
        performer=bindparam("performer"), start=bindparam("start")).on_conflict_do_nothing(
        index_elements=[CONTACT.c.id])


@functools.cache
def _dirty_upsert(dialect: str) -> Any:
    """A feed changed: marked dirty, or its change counter bumped (what `_mark_dirty` did in up to two)."""
    return _dialect_insert(dialect)(DIRTY).values(
        uzovi=bindparam("uzovi"), period=bindparam("period"), changes=1, since=bindparam("at")).on_conflict_do_update(
        index_elements=[DIRTY.c.uzovi, DIRTY.c.period], set_={"changes": DIRTY.c.changes + 1})


async def _upsert_fact(session: AsyncSession, request_id: str, values: dict[str, Any],
                       updated: tuple[str, ...]) -> Row[Any]:
    """The request's fact after setting `values` (those named in `updated` also on an existing fact), locked."""
    dialect = session.get_bind().dialect.name
    params = {"request_id": request_id, **_NEW_FACT, **values}
    return (await session.execute(_fact_upsert(dialect, updated), params)).one()


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def seed_tariffs(session: AsyncSession) -> None:
    if (await session.execute(select(func.count()).select_from(TariffRow))).scalar_one():
        return
    for t in SEED:
        session.add(TariffRow(key=t.key, code=t.code, description=DESCRIPTIONS[t.code], price_cents=t.price_cents,
                              valid_from=t.valid_from, valid_to=t.valid_to, source=t.source))


async def tariffs(session: AsyncSession) -> list[Tariff]:
    rows = (await session.execute(select(TariffRow))).scalars()
    return [Tariff(r.key, r.code, r.price_cents, r.valid_from, r.valid_to, r.source) for r in rows]


async def add_tariff_version(session: AsyncSession, *, key: str, code: str, price_cents: int, valid_from: date,
                             source: str, today: date) -> TariffRow:
    """Add a new tariff version for key/code from `valid_from` (today or later) at `price_cents`.

    The only change to an existing row is the end date of the version running into the new one (the day
    before `valid_from`); prices are never edited in place. Raises ValueError (Dutch, for the admin) for an
    unknown key/code or a start in the past or on/before an existing version's start. Caller commits.
    """
    rows = list((await session.execute(select(TariffRow).where(TariffRow.key == key, TariffRow.code == code)
                                       .with_for_update())).scalars())
    if not rows:
        raise Refused("unknown-tariff", f"Onbekende tarieftabel of code: {key} {code}.", key=key, code=code)
    versions = [Tariff(r.key, r.code, r.price_cents, r.valid_from, r.valid_to, r.source) for r in rows]
    closed = close_for_new_version(versions, key=key, code=code, valid_from=valid_from, today=today)
    if closed is not None:
        previous = next(r for r in rows if r.valid_from == closed.valid_from)
        previous.valid_to = closed.valid_to
    description = max(rows, key=lambda r: r.valid_from).description
    row = TariffRow(key=key, code=code, description=description, price_cents=price_cents, valid_from=valid_from,
                    valid_to=None, source=source)
    session.add(row)
    await session.flush()
    return row


def _acute_request_id(resource: dict[str, Any]) -> str:
    for based in resource.get("basedOn", []) or []:
        ident = based.get("identifier") or {}
        if ident.get("system") == ACUTE_REQUEST_SYSTEM:
            return str(ident["value"])
    raise PoisonMessage("the resource names no acute request (basedOn identifier)")


async def _locked_fact(session: AsyncSession, request_id: str, pseudonym: str, **values: Any) -> RequestFact:
    """Facts of one request are handled one transaction at a time; otherwise, on PostgreSQL, a contact and
    the close arriving together could each miss the other's uncommitted row and nobody would derive.

    A fact made here starts with `values` (inserted with them rather than updated right after)."""
    fact = await session.get(RequestFact, request_id, with_for_update=True)
    if fact is None:
        fact = RequestFact(id=request_id, **{"pseudonym": pseudonym, **values})
        session.add(fact)
        await session.flush()  # a concurrent first insert fails here and the consumer retries
    return fact


async def on_triage_completed(session: AsyncSession, event: Event, *, grace: timedelta) -> None:
    """The routing order's facts (pseudonym, open DBC, disposition, UZOVI, triage time) on the request's fact."""
    order = event.json()
    try:
        request_id = order["id"]
        coverages = [c for c in order.get("contained", []) if c.get("resourceType") == "Coverage"]
        uzovi = next((p["identifier"]["value"] for c in coverages for p in c.get("payor", [])
                      if p.get("identifier", {}).get("system") == UZOVI_SYSTEM), None)
        fact_values = {"pseudonym": order["subject"]["identifier"]["value"],
                       "open_dbc": any(e.get("url", "").endswith("/open-dbc") and e.get("valueBoolean") is True
                                       for e in order.get("extension", [])),
                       "disposition": order["code"]["coding"][0]["code"], "uzovi": uzovi,
                       "triaged_at": datetime.fromisoformat(order["authoredOn"])}
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise PoisonMessage(f"triage-completed value is not a routing order: {exc.__class__.__name__}") from exc
    fact = await _upsert_fact(session, request_id, fact_values, tuple(fact_values))
    await rederive(session, request_id, traceparent=event.traceparent, grace=grace, fact=fact)


async def on_contact_delivered(session: AsyncSession, event: Event, *, grace: timedelta) -> None:
    """A delivered contact (Encounter) stored once per id on its request."""
    encounter = event.json()
    try:
        contact_id = encounter["id"]
        act_class = encounter["class"]["code"]
        start = datetime.fromisoformat(encounter["period"]["start"])
        ident = encounter["serviceProvider"]["identifier"]
        performer = f"{ident['system']}|{ident['value']}"
        pseudonym = encounter["subject"]["identifier"]["value"]
    except (KeyError, TypeError, ValueError) as exc:
        raise PoisonMessage(f"contact-delivered value is not a readable Encounter: {exc.__class__.__name__}") from exc
    request_id = _acute_request_id(encounter)
    fact = await _upsert_fact(session, request_id, {"pseudonym": pseudonym}, ())
    await session.execute(_contact_insert(session.get_bind().dialect.name), {
        "contact_id": contact_id, "request_id": request_id, "act_class": act_class, "performer": performer,
        "start": start})
    await rederive(session, request_id, traceparent=event.traceparent, grace=grace, fact=fact)


async def on_acute_request_closed(session: AsyncSession, event: Event, *, grace: timedelta) -> None:
    """The request closed, with the Encounters it was closed with: the prestation is derived once they are all in."""
    closed = event.json()
    try:
        request_id = closed["id"]
        pseudonym = closed["subject"]["identifier"]["value"]
        closed_at = next((datetime.fromisoformat(e["valueDateTime"]) for e in closed.get("extension", [])
                          if e.get("url", "").endswith("/closed-at")), event.time)
        expected = sorted(ref["reference"].split("/", 1)[1] for ref in closed.get("supportingInfo", [])
                          if ref.get("reference", "").startswith("Encounter/"))
    except (KeyError, TypeError, ValueError) as exc:
        raise PoisonMessage(f"acute-request-closed value unreadable: {exc.__class__.__name__}") from exc
    fact = await _upsert_fact(session, request_id, {"pseudonym": pseudonym, "closed_at": closed_at,
                                                    "expected_contacts": json.dumps(expected)},
                              ("closed_at", "expected_contacts"))
    await rederive(session, request_id, traceparent=event.traceparent, grace=grace, fact=fact)


def _values(line: PrestationLine) -> ledger.LineValues:
    return ledger.LineValues(code=line.code, exclusion_reason=line.exclusion_reason, uzovi=line.uzovi,
                             period=line.period, service_date=line.service_date,
                             unit_price_cents=line.unit_price_cents, tariff_source=line.tariff_source,
                             shadow_amount_cents=line.shadow_amount_cents, explanation=line.explanation)


async def effective_line(session: AsyncSession, request_id: str) -> PrestationLine | None:
    """The line that currently stands for a request: the newest original or rebill that no credit cancels."""
    lines = list((await session.execute(select(PrestationLine).where(
        PrestationLine.acute_request_id == request_id).order_by(PrestationLine.sequence))).scalars())
    return _standing(lines)


def _standing(lines: list[PrestationLine]) -> PrestationLine | None:
    """Of one request's lines in sequence order, the one that stands."""
    credited = {line.corrects for line in lines if line.kind == "credit"}
    standing = [line for line in lines if line.kind != "credit" and line.id not in credited]
    return standing[-1] if standing else None


async def rederive(session: AsyncSession, request_id: str, *, traceparent: str | None, grace: timedelta,
                   reason: str | None = None, actor: str = "derivation",
                   fact: Any = None) -> PrestationLine | None:
    """Derive and price the request from all facts known now. Lines are only ever added: a change credits
    the standing line and rebills it. Until the line locks, changed facts do this by themselves; after the
    lock only a person does (a billing officer's correction, a hospital's report), with a reason.

    `fact` is the request's fact as the caller holds it locked (a RequestFact or its row), else it is read. Reads:
    the contacts, reported open DBCs, tariffs and the request's lines; the writes (line, shadow lines, feed
    marked dirty, prestation-recorded event, the fact's lock flag) go in one statement on PostgreSQL. Returns the
    line that stands (a PrestationLine not attached to the session), or None while facts are missing."""
    await session.flush()
    fact = fact if fact is not None else (await session.execute(_FACT, {"request_id": request_id})).first()
    if fact is None or fact.closed_at is None or fact.triaged_at is None:
        return None  # the remaining facts are still on their way
    contact_rows = (await session.execute(_CONTACTS, {"request_id": request_id})).all()
    if not set(json.loads(fact.expected_contacts)) <= {c.id for c in contact_rows}:
        return None  # a contact the request was closed with has not arrived yet
    contacts = [Contact(c.id, c.act_class, _aware(c.start)) for c in contact_rows]
    open_dbc = fact.open_dbc or (getattr(fact, "dbc_reports", None) != 0 and await _reported_open_dbc(
        session, fact.pseudonym, service_day(_aware(fact.triaged_at))))
    derivation = derive(RequestFacts(request_id=request_id, disposition=fact.disposition, uzovi=fact.uzovi,
                                     triaged_at=_aware(fact.triaged_at), closed=True, open_dbc=open_dbc),
                        contacts)
    assert derivation is not None
    table = await _tariffs(session, fact)
    kinds = {c.id: KIND_OF_ORG.get(c.performer) for c in contact_rows}
    shadow_inputs = [(c.contact_id, shadow_code(c, kinds.get(c.contact_id)), _aware(c.start)) for c in contacts]
    if not shadow_inputs:
        code = HOSPITAL_REFERRAL_CODE if fact.disposition == "hospital-referral" else TRIAGE_ONLY_CODE
        shadow_inputs = [("triage", code, _aware(fact.triaged_at))]
    shadows = [(contact_id, code, select_tariff(table, key=SHADOW, code=code, on=service_day(start)))
               for contact_id, code, start in shadow_inputs]
    values = ledger.price(derivation, uzovi=fact.uzovi, fallback_moment=_aware(fact.closed_at), tariffs=table,
                          shadow_amount_cents=sum(t.price_cents for _, _, t in shadows if t))
    if fact.withdrawn_reason:
        values = dataclasses.replace(values, exclusion_reason="withdrawn",
                                     explanation=f"{values.explanation}; withdrawn: {fact.withdrawn_reason}")

    lines = [PrestationLine(**row._mapping) for row in (await session.execute(_LINES, {"request_id": request_id}))]
    standing = _standing(lines)
    writes = Writes()
    if standing is not None and _values(standing) == values:
        if actor != "derivation" and fact.changed_after_lock:
            writes.statement(_SET_CHANGED_AFTER_LOCK, {"request_id": request_id, "changed": False})
            await writes.flush(session)
        return standing
    now = datetime.now(UTC)
    touched = {(values.uzovi, values.period)}
    locked = standing is not None and ledger.is_locked(_aware_or_none(standing.locks_at), now)
    if locked and actor == "derivation":
        # Shown to the billing officer, who applies it as a correction.
        writes.statement(_SET_CHANGED_AFTER_LOCK, {"request_id": request_id, "changed": True})
        await writes.flush(session)
        return standing
    common = {"acute_request_id": request_id, "reason": reason, "created_by": actor, "created_at": now}
    if standing is None:
        line = PrestationLine(id=uuid.uuid5(uuid.NAMESPACE_URL, f"prestation:{request_id}").hex, sequence=1,
                              kind="original", quantity=1, corrects=None, locks_at=_aware(fact.closed_at) + grace,
                              **common, **dataclasses.asdict(values))
        writes.insert(LEDGER, **_line_row(line))
    else:
        why = reason or "facts changed before the line locked"
        last = max(existing.sequence for existing in lines)
        common["reason"] = why
        credit = PrestationLine(id=uuid.uuid4().hex, sequence=last + 1, kind="credit", quantity=-1,
                                corrects=standing.id, locks_at=None, **common,
                                **dataclasses.asdict(ledger.credit_of(_values(standing), why)))
        # A rebill locks with its request (a correction after the lock is locked at once).
        line = PrestationLine(id=uuid.uuid4().hex, sequence=last + 2, kind="rebill", quantity=1,
                              corrects=standing.id, locks_at=max(now, _aware(fact.closed_at) + grace) if locked
                              else _aware(fact.closed_at) + grace, **common, **dataclasses.asdict(values))
        writes.insert(LEDGER, **_line_row(credit))
        writes.insert(LEDGER, **_line_row(line))
        touched.add((standing.uzovi, standing.period))
        writes.statement(_SET_CHANGED_AFTER_LOCK, {"request_id": request_id, "changed": False})
    for contact_id, code, tariff in shadows:
        writes.insert(SHADOW_LEDGER, acute_request_id=request_id, line_id=line.id, contact_id=contact_id, code=code,
                      amount_cents=tariff.price_cents if tariff else 0,
                      tariff_source=tariff.source if tariff else "no shadow tariff")
    dialect = session.get_bind().dialect.name
    for uzovi, period in sorted(touched, key=lambda t: (t[0] or "", t[1])):
        if uzovi:
            writes.statement(_dirty_upsert(dialect), {"uzovi": uzovi, "period": period, "at": now})
    writes.event(events.prestation_recorded(line, pseudonym=fact.pseudonym, traceparent=traceparent), at=now)
    await writes.flush(session)
    return line


async def _tariffs(session: AsyncSession, fact: Any) -> list[Tariff]:
    """The tariff table; from memory when `fact` came with the table's stamp (`_FACT_EXTRAS`) and it is unchanged."""
    stamp = getattr(fact, "tariff_rows", None)
    key = (str(session.get_bind().url), stamp, getattr(fact, "tariff_last", None)) if stamp is not None else None
    if key is not None and key in _TARIFF_TABLES:
        return _TARIFF_TABLES[key]
    table = [Tariff(*row) for row in (await session.execute(_TARIFFS)).all()]
    if key is not None:
        if len(_TARIFF_TABLES) >= 64:
            _TARIFF_TABLES.clear()
        _TARIFF_TABLES[key] = table  # type: ignore[index]
    return table


def _line_row(line: PrestationLine) -> dict[str, Any]:
    return {column.name: getattr(line, column.name) for column in LEDGER.columns}


async def _reported_open_dbc(session: AsyncSession, pseudonym: str, day: date) -> bool:
    ends = (await session.execute(_OPEN_DBC, {"pseudonym": pseudonym, "day": day})).scalars()
    return any(end is None or day <= end for end in ends)


async def report_open_dbc(session: AsyncSession, *, pseudonym: str, reference: str, start: date, end: date | None,
                          reporter: str, reporter_org: str, grace: timedelta) -> int:
    """Record a hospital's open DBC and re-derive the patient's requests (locked lines: credit + rebill)."""
    if end is not None and end < start:
        raise ValueError("the DBC ends before it starts")
    session.add(OpenDbcReport(pseudonym=pseudonym, reference=reference, start=start, end=end, reported_by=reporter,
                              reported_org=reporter_org))
    await session.flush()
    request_ids = (await session.execute(select(RequestFact.id).where(RequestFact.pseudonym == pseudonym))).scalars()
    changed = 0
    for request_id in list(request_ids):
        before = await effective_line(session, request_id)
        after = await rederive(session, request_id, traceparent=None, grace=grace, actor=reporter,
                               reason=f"open DBC {reference} reported by the hospital")
        changed += int(after is not None and (before is None or after.id != before.id
                                              or after.exclusion_reason != before.exclusion_reason))
    return changed


def _aware_or_none(moment: datetime | None) -> datetime | None:
    return _aware(moment) if moment is not None else None


async def correct(session: AsyncSession, *, line_id: str, reason: str, uzovi: str | None, withdraw: bool,
                  actor: str, grace: timedelta, apply_late_facts: bool = False) -> PrestationLine:
    """A billing officer corrects a fact the derivation used (the insurer, or that the request is not billed),
    or applies facts that arrived after the lock; the prestation itself always follows from delivered
    contacts, so there is no way to choose a code here."""
    line = await session.get(PrestationLine, line_id)
    if line is None:
        raise LookupError(f"no prestation line {line_id}")
    standing = await effective_line(session, line.acute_request_id)
    if standing is None or standing.id != line.id:
        raise Refused("not-standing", "only the standing line of a request can be corrected")
    if not reason.strip():
        raise Refused("no-reason", "a correction needs a reason")
    if sum((uzovi is not None, withdraw, apply_late_facts)) != 1:
        raise Refused("one-action", "correct the insurer (uzovi), withdraw the line, or apply facts that arrived late")
    fact = await _locked_fact(session, line.acute_request_id, "")
    if apply_late_facts:
        if not fact.changed_after_lock:
            raise Refused("no-late-facts", "no facts arrived after the line locked")
    elif withdraw:
        fact.withdrawn_reason = reason
    else:
        if uzovi == fact.uzovi:
            raise Refused("same-insurer", f"the line is already for UZOVI {uzovi}", uzovi=str(uzovi))
        fact.uzovi = uzovi
    session.add(fact)
    result = await rederive(session, line.acute_request_id, traceparent=None, grace=grace, reason=reason,
                            actor=actor)
    assert result is not None
    return result


_IN_MONTH = (LEDGER.c.uzovi == bindparam("uzovi"), LEDGER.c.period == bindparam("period"))
# The month's priced lines without exclusion (credits included), added up per code and price.
_FEED_SUMS = select(LEDGER.c.code, LEDGER.c.unit_price_cents, func.sum(LEDGER.c.quantity),
                    func.sum(LEDGER.c.quantity * LEDGER.c.shadow_amount_cents)).where(
    *_IN_MONTH, LEDGER.c.code.is_not(None), LEDGER.c.exclusion_reason.is_(None),
    LEDGER.c.unit_price_cents.is_not(None)).group_by(LEDGER.c.code, LEDGER.c.unit_price_cents)
# The standing line of each request with a line in the month (`_standing`: the last line that is no credit and
# that no credit cancels), counted per exclusion reason where it is in the month itself.
_CREDIT, _OF_MONTH = LEDGER.alias("credit"), LEDGER.alias("of_month")
_LIVE = select(LEDGER.c.uzovi, LEDGER.c.period, LEDGER.c.exclusion_reason, func.row_number().over(
    partition_by=LEDGER.c.acute_request_id, order_by=LEDGER.c.sequence.desc()).label("newest")).where(
    LEDGER.c.kind != "credit",
    LEDGER.c.acute_request_id.in_(select(_OF_MONTH.c.acute_request_id).where(
        _OF_MONTH.c.uzovi == bindparam("uzovi"), _OF_MONTH.c.period == bindparam("period"))),
    ~exists().where(_CREDIT.c.kind == "credit", _CREDIT.c.corrects == LEDGER.c.id)).subquery("live")
_FEED_STANDING = select(_LIVE.c.exclusion_reason, func.count()).where(
    _LIVE.c.newest == 1, _LIVE.c.uzovi == bindparam("uzovi"), _LIVE.c.period == bindparam("period")).group_by(
    _LIVE.c.exclusion_reason)
_LATEST_DOCUMENT = select(REVISION.c.revision, REVISION.c.document).where(
    REVISION.c.uzovi == bindparam("uzovi"), REVISION.c.period == bindparam("period")).order_by(
    REVISION.c.revision.desc()).limit(1)
_CLEAR_DIRTY = delete(DIRTY).where(DIRTY.c.uzovi == bindparam("uzovi"), DIRTY.c.period == bindparam("period"),
                                   DIRTY.c.changes == bindparam("changes"))


async def build_feed(session: AsyncSession, *, uzovi: str, period: str) -> dict[str, Any]:
    """The insurer's P × Q document for one month: no patient data, only counts and amounts. The database adds
    the month's lines up (ledger.feed_document says what from), so a revision costs two grouped reads, not one
    row per line of the month."""
    key = {"uzovi": uzovi, "period": period}
    sums = {(code, price): (int(quantity), int(shadow))
            for code, price, quantity, shadow in await session.execute(_FEED_SUMS, key)}
    standing = {reason: int(count) for reason, count in await session.execute(_FEED_STANDING, key)}
    return ledger.feed_document(uzovi, period, sums=sums, standing=standing)


async def publish_dirty_feeds(session: AsyncSession, *, limit: int = 50, inclusion_target: float = 0.95) -> int:
    """Turn changed feeds into new revisions, each complete in itself, published through the outbox. Per feed:
    its lines and its latest revision read, the revision, its event and the cleared mark written together."""
    dirty = (await session.execute(select(DIRTY.c.uzovi, DIRTY.c.period, DIRTY.c.changes).limit(limit))).all()
    for item in dirty:
        key = {"uzovi": item.uzovi, "period": item.period}
        document = await build_feed(session, **key)
        _watch_inclusion(document, inclusion_target)
        last = (await session.execute(_LATEST_DOCUMENT, key)).first()
        writes = Writes()
        if last is None or not _same_content(json.loads(last.document), document):
            revision = (last.revision if last else 0) + 1
            now = datetime.now(UTC)
            document = {**document, "revision": revision, "generated_at": now.isoformat()}
            writes.insert(REVISION, uzovi=item.uzovi, period=item.period, revision=revision,
                          document=json.dumps(document), generated_at=now)
            writes.event(events.feed_published(document), at=now)
        writes.statement(_CLEAR_DIRTY, {**key, "changes": item.changes})
        await writes.flush(session)
    return len(dirty)


def _watch_inclusion(document: dict[str, Any], target: float) -> None:
    """Inclusion monitoring: the share of eligible closed requests that got a prestation, with an alert."""
    rate = document["inclusion_rate"]
    if rate is None:
        return
    metrics.INCLUSION_RATE.labels(document["uzovi"], document["period"]).set(rate)
    if rate < target:
        log.warning("inclusion for UZOVI %s in %s is %.1f%%, under the %.0f%% target; exclusions: %s",
                    document["uzovi"], document["period"], rate * 100, target * 100, document["exclusions"])


def _same_content(a: dict[str, Any], b: dict[str, Any]) -> bool:
    volatile = ("revision", "generated_at")
    return {k: v for k, v in a.items() if k not in volatile} == {k: v for k, v in b.items() if k not in volatile}


async def latest_revision(session: AsyncSession, *, uzovi: str, period: str) -> FeedRevision | None:
    return (await session.execute(select(FeedRevision).where(
        FeedRevision.uzovi == uzovi, FeedRevision.period == period).order_by(
        FeedRevision.revision.desc()).limit(1))).scalars().first()  # type: ignore[attr-defined]


async def current_feed(session: AsyncSession, *, uzovi: str, period: str) -> dict[str, Any]:
    last = await latest_revision(session, uzovi=uzovi, period=period)
    if last is not None:
        return json.loads(last.document)
    # Before the first revision the feed is empty: what an insurer reads is always a published revision.
    return {"uzovi": uzovi, "period": period, "lines": [],
            "totals": {"quantity": 0, "amount_cents": 0, "shadow_amount_cents": 0}, "inclusion_rate": None,
            "exclusions": {}, "revision": 0, "generated_at": datetime.now(UTC).isoformat()}


def feed_csv(document: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["uzovi", "period", "revision", "code", "quantity", "unit_price_cents", "amount_cents",
                     "shadow_amount_cents"])
    for line in document["lines"]:
        writer.writerow([document["uzovi"], document["period"], document["revision"], line["code"], line["quantity"],
                         line["unit_price_cents"], line["amount_cents"], line["shadow_amount_cents"]])
    totals = document["totals"]
    writer.writerow([document["uzovi"], document["period"], document["revision"], "TOTAL", totals["quantity"], "",
                     totals["amount_cents"], totals["shadow_amount_cents"]])
    return out.getvalue()


async def lines(session: AsyncSession, *, period: str | None, uzovi: str | None) -> list[PrestationLine]:
    query = select(PrestationLine)
    if period:
        query = query.where(PrestationLine.period == period)
    if uzovi:
        query = query.where(PrestationLine.uzovi == uzovi)
    return list((await session.execute(query.order_by(PrestationLine.service_date))).scalars())


def month_bounds(period: str) -> tuple[datetime, datetime]:
    year, month = (int(p) for p in period.split("-"))
    start = datetime.combine(date(year, month, 1), time(), AMSTERDAM)
    end = datetime.combine(date(year + month // 12, month % 12 + 1, 1), time(), AMSTERDAM)
    return start, end
