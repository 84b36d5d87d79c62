"""Use cases of the experiment's evaluation: keep the read model from the events, and build the figures.

The `evaluation` consumer reads the same three topics as the ledger and merges each fact into one row per acute
request (earliest triage and contact, latest triage's urgency and disposition, any re-triage, most linked
contacts), so the row depends only on the set of events: a replay from the start, in any order or twice, gives
the same figures. Cost comes from the prestation ledger, which is rebuilt from the same topics.
"""

from __future__ import annotations

import csv
import functools
import io
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.billing_shadow.domain import evaluation as measures
from services.billing_shadow.domain.ledger import Entry
from services.billing_shadow.models import EvaluationRequest, PrestationLine
from services.billing_shadow.service import _acute_request_id, _standing, _values, month_bounds
from shared.bus.consumer import PoisonMessage
from shared.bus.envelope import Event
from shared.bus.topics import ACUTE_REQUEST_CLOSED, CONTACT_DELIVERED, CONTACT_LINKED, TRIAGE_COMPLETED
from shared.identifiers import UZOVI_SYSTEM

CHANNEL_EXTENSION = "https://regiozorg.example/fhir/StructureDefinition/intake-channel"
RECEIVED_AT_EXTENSION = "https://regiozorg.example/fhir/StructureDefinition/received-at"
RETRIAGE_EXTENSION = "https://regiozorg.example/fhir/StructureDefinition/retriage-reason"
LINKED_CONTACTS_EXTENSION = "https://regiozorg.example/fhir/StructureDefinition/linked-contacts"
CLOSED_AT_SUFFIX = "/closed-at"


def _aware(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    a, b = _aware(a), _aware(b)
    return b if a is None else a if b is None else min(a, b)


ROW = EvaluationRequest.__table__  # type: ignore[attr-defined]
# A request's row when its first event makes it (EvaluationRequest's own defaults).
_NEW_ROW = {"uzovi": None, "channel": None, "urgency": None, "disposition": None, "due_at": None,
            "received_at": None, "first_triaged_at": None, "last_triaged_at": None, "retriaged": False,
            "linked_contacts": 0, "first_contact_at": None, "closed_at": None}
_MERGED = tuple(_NEW_ROW)
_SAVE = update(ROW).where(ROW.c.id == bindparam("request_id")).values(
    {name: bindparam(f"new_{name}") for name in _MERGED})


@functools.cache
def _claim_row(dialect: str) -> Any:
    """Make the request's row or lock the one there is, and return it, in one statement."""
    upsert = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(ROW).values(
        {"id": bindparam("request_id"), "pseudonym": bindparam("pseudonym"),
         **{name: bindparam(name) for name in _NEW_ROW}})
    return upsert.on_conflict_do_update(index_elements=[ROW.c.id], set_={"pseudonym": ROW.c.pseudonym}).returning(
        *ROW.c)


async def _row(session: AsyncSession, request_id: str, pseudonym: str) -> SimpleNamespace:
    """The request's row, locked, as a mutable namespace; `_save` writes its merged columns back."""
    row = (await session.execute(_claim_row(session.get_bind().dialect.name),
                                 {"request_id": request_id, "pseudonym": pseudonym, **_NEW_ROW})).one()
    return SimpleNamespace(**row._mapping, loaded=tuple(row._mapping[name] for name in _MERGED))


async def _save(session: AsyncSession, row: SimpleNamespace) -> None:
    merged = tuple(getattr(row, name) for name in _MERGED)
    if merged != row.loaded:  # a redelivered or older fact changes nothing
        await session.execute(_SAVE, {"request_id": row.id, **{f"new_{name}": value
                                                               for name, value in zip(_MERGED, merged, strict=True)}})


async def on_event(session: AsyncSession, event: Event) -> None:
    """Merge one triage-completed, contact-linked, contact-delivered or acute-request-closed event into the read model.
    Unreadable values raise PoisonMessage (dead-lettered)."""
    value = event.json()
    try:
        if event.topic == TRIAGE_COMPLETED:
            await _triaged(session, value)
        elif event.topic == CONTACT_LINKED:  # the running count: duplicates and any order give the same figure
            row = await _row(session, _acute_request_id(value), value["subject"]["identifier"]["value"])
            counts = [int(e["valueInteger"]) for e in value["extension"] if e.get("url") == LINKED_CONTACTS_EXTENSION]
            if not counts:
                raise ValueError("contact-linked without its linked-contacts count")
            row.linked_contacts = max(row.linked_contacts, counts[0])
            await _save(session, row)
        elif event.topic == CONTACT_DELIVERED:
            row = await _row(session, _acute_request_id(value), value["subject"]["identifier"]["value"])
            row.first_contact_at = _earliest(row.first_contact_at, datetime.fromisoformat(value["period"]["start"]))
            await _save(session, row)
        elif event.topic == ACUTE_REQUEST_CLOSED:
            row = await _row(session, value["id"], value["subject"]["identifier"]["value"])
            closed_at = next((datetime.fromisoformat(e["valueDateTime"]) for e in value.get("extension", [])
                              if e.get("url", "").endswith(CLOSED_AT_SUFFIX)), event.time)
            row.closed_at = _aware(closed_at)
            await _save(session, row)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise PoisonMessage(f"{event.topic} value unreadable for the evaluation: {exc.__class__.__name__}") from exc


async def _triaged(session: AsyncSession, order: dict[str, Any]) -> None:
    ext = {e.get("url"): e for e in order.get("extension", [])}
    triaged_at = _aware(datetime.fromisoformat(order["authoredOn"]))
    uzovi = next((p["identifier"]["value"] for c in order.get("contained", []) if c.get("resourceType") == "Coverage"
                  for p in c.get("payor", []) if p.get("identifier", {}).get("system") == UZOVI_SYSTEM), None)
    row = await _row(session, order["id"], order["subject"]["identifier"]["value"])
    row.received_at = _aware(datetime.fromisoformat(ext[RECEIVED_AT_EXTENSION]["valueDateTime"]))
    row.channel = ext[CHANNEL_EXTENSION]["valueCode"]
    row.first_triaged_at = _earliest(row.first_triaged_at, triaged_at)
    row.retriaged = row.retriaged or RETRIAGE_EXTENSION in ext
    row.linked_contacts = max(row.linked_contacts, int(ext.get(LINKED_CONTACTS_EXTENSION, {}).get("valueInteger", 0)))
    last = _aware(row.last_triaged_at)
    if last is None or triaged_at >= last:  # type: ignore[operator]
        row.last_triaged_at = triaged_at
        row.urgency = order["category"][0]["coding"][0]["code"]
        row.disposition = order["code"]["coding"][0]["code"]
        row.due_at = _aware(datetime.fromisoformat(order["occurrenceDateTime"])) \
            if order.get("occurrenceDateTime") else None
        row.uzovi = uzovi
    await _save(session, row)


def _record(row: EvaluationRequest) -> measures.RequestRecord | None:
    if row.received_at is None or row.first_triaged_at is None or not (row.channel and row.urgency
                                                                       and row.disposition):
        return None  # the triage has not arrived yet: the request is not in the figures
    return measures.RequestRecord(
        request_id=row.id, pseudonym=row.pseudonym, uzovi=row.uzovi, channel=row.channel, urgency=row.urgency,
        disposition=row.disposition, received_at=_aware(row.received_at),  # type: ignore[arg-type]
        triaged_at=_aware(row.first_triaged_at), due_at=_aware(row.due_at),  # type: ignore[arg-type]
        retriaged=row.retriaged, linked_contacts=row.linked_contacts,
        first_contact_at=_aware(row.first_contact_at), closed_at=_aware(row.closed_at))


async def document(session: AsyncSession, *, first: str, last: str, experiment: measures.Experiment,
                   uzovi: str | None) -> dict[str, Any]:
    """The exact evaluation document (SPEC §12) for the months `first`..`last` ("YYYY-MM"), the region or one
    UZOVI. ValueError for a malformed month, `first` after `last` or more than 60 months."""
    periods = measures.months_between(first, last)
    start, _ = month_bounds(periods[0])
    _, end = month_bounds(periods[-1])
    window = measures.RETURN_WINDOW + timedelta(days=1)
    rows = (await session.execute(select(EvaluationRequest).where(
        EvaluationRequest.received_at >= start - window,  # type: ignore[operator]
        EvaluationRequest.received_at < end + window))).scalars()  # type: ignore[operator]
    records = [r for r in map(_record, rows) if r is not None]
    since = f"{experiment.start.year:04d}-{experiment.start.month:02d}"
    lines = list((await session.execute(select(PrestationLine).where(
        PrestationLine.period >= min(since, periods[0])).order_by(
        PrestationLine.acute_request_id, PrestationLine.sequence))).scalars())
    entries = [Entry(r.acute_request_id, r.kind, r.quantity, _values(r)) for r in lines if r.period <= periods[-1]]
    of_request: dict[str, list[PrestationLine]] = {}
    for line in lines:
        of_request.setdefault(line.acute_request_id, []).append(line)
    effective = []
    for request_id, its_lines in of_request.items():
        standing = _standing(its_lines)
        if standing is not None:
            effective.append(Entry(request_id, standing.kind, 1, _values(standing)))
    return measures.evaluation(periods, requests=records, entries=entries, effective=effective,
                               experiment=experiment, uzovi=uzovi)


def csv_text(doc: dict[str, Any]) -> str:
    """The evaluation as CSV: one row per month and a `TOTAL` row, nested keys joined with "." (exact or
    suppressed, as the document is)."""
    rows = [{"scope": doc["scope"], **measures.flatten(m)} for m in doc["months"]]
    rows.append({"scope": doc["scope"], "period": "TOTAL", "in_experiment": "",
                 **measures.flatten(doc["totals"])})
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return out.getvalue()
