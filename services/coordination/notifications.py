"""Partner notifications ("notified pull"): FHIR R4 topic-based Subscriptions as the HL7 Subscriptions R5
Backport IG (hl7.fhir.uv.subscriptions-backport) defines them for R4, rest-hook with id-only payloads, filtered
on Task owner. The older form `criteria: Task?owner=…` is accepted as well and behaves the same.

Every Task change adds a numbered notification for each matching subscription in the same transaction,
so nothing is lost across a restart; a sender delivers them strictly in event-number order, retries with
exponential backoff and turns the subscription to `error` once a receiver has been failing for longer
than the give-up horizon (24 hours by default). Every attempt is recorded, and every event stays
retrievable by its number (`$events`), so a receiver that sees a gap fetches what it missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlparse

import httpx
from sqlalchemy import DateTime, String, bindparam, insert, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.coordination.models import DeliveryAttempt, Notification, SubscriptionRecord
from shared.auth import Caller
from shared.db import is_postgres
from shared.fhir import FhirError, Issue, unresolved_placeholders, validate_resource
from shared.identifiers import org_token, parse_org
from shared.tasks import cancelled
from shared.wakeup import CommitListener, CommitSignal
from shared.writes import Writes

log = logging.getLogger(__name__)

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
BACKPORT_OPERATIONS = "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition"
FILTER_CRITERIA = f"{BACKPORT}/backport-filter-criteria"
PAYLOAD_CONTENT = f"{BACKPORT}/backport-payload-content"
HEARTBEAT_PERIOD = f"{BACKPORT}/backport-heartbeat-period"
TIMEOUT = f"{BACKPORT}/backport-timeout"
CHANNEL_TYPE = f"{BACKPORT}/backport-channel-type"
STATUS_PROFILE = f"{BACKPORT}/backport-subscription-status-r4"
SUBSCRIPTION_PROFILE = f"{BACKPORT}/backport-subscription"
# The one topic coordination offers: a Task was created or got a new version. Advertised on the
# CapabilityStatement; its only filter is the Task's owner.
TOPIC = "https://regiozorg.example/fhir/SubscriptionTopic/task-changed"
# Longer than one send may take (HTTP timeout below); after a crash another worker resumes once it ends.
LEASE = timedelta(seconds=15)
SEND_TIMEOUT_SECONDS = 5
LEGACY_HEARTBEAT_SECONDS = 60
EVENTS_PER_PAGE = 100
_PAYLOAD_TYPES = ("application/fhir+json", "application/json")
_OWNER_KEYS = ("owner", "owner:identifier")
_SERVER_SET = {("Subscription.status",), ("Subscription.reason",)}
# The PostgreSQL channel the notification and subscription triggers NOTIFY (coordination revision 0006).
NOTIFICATION_CHANNEL = "regiozorg_notification"
# How long the sender sleeps when nothing wakes it and nothing is due sooner: only the fallback for a lost signal.
FALLBACK_SECONDS = 30.0
# Commits adding a notification or subscription wake the sender in-process (SQLite, or while its LISTEN is down).
_SIGNAL = CommitSignal("notification")


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float
    max_backoff_seconds: float
    give_up_seconds: float

    def delay(self, attempts: int) -> timedelta:
        return timedelta(seconds=min(self.max_backoff_seconds, self.base_seconds * 2 ** max(0, attempts - 1)))


@dataclass(frozen=True)
class SubscriptionRequest:
    """What a Subscription asks for, checked: whose Tasks, where to, how often a heartbeat.

    `form` is "backport" (criteria = TOPIC, filter in `backport-filter-criteria`) or "criteria" (the older
    `Task?owner=…`); `owner` is the organisation token "system|value"; `heartbeat_seconds` 0 means none;
    `timeout_seconds` is how long one delivery attempt may take.
    """

    form: str
    owner: str
    endpoint: str
    headers: tuple[str, ...]
    heartbeat_seconds: int
    timeout_seconds: int


def _now() -> datetime:
    return datetime.now(UTC)


def written(session: AsyncSession) -> None:
    """Note that this transaction adds something for the sender (a notification, a subscription to greet): its
    commit wakes the sender of a session made by the sender's session factory. On PostgreSQL the triggers of
    revision 0006 wake every process's sender as well; this signal covers SQLite and a lost LISTEN."""
    _SIGNAL.mark(session)


def _aware(moment: datetime | None) -> datetime | None:
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=UTC)


def _extensions(element: Any, url: str) -> list[tuple[int, dict[str, Any]]]:
    """(index in `extension`, extension) of every extension with this url on an element or a primitive's `_x`."""
    extensions = element.get("extension") if isinstance(element, dict) else None
    return [(index, ext) for index, ext in enumerate(extensions if isinstance(extensions, list) else [])
            if isinstance(ext, dict) and ext.get("url") == url]


def _value(extension: dict[str, Any]) -> Any:
    return next((v for k, v in extension.items() if k.startswith("value")), None)


def _extension(element: Any, url: str) -> Any:
    found = _extensions(element, url)
    return _value(found[0][1]) if found else None


def _owner_filter_issues(text: str, caller_org: str, where: str) -> list[Issue]:
    """What is wrong with a filter string: "[Task?]owner=<org>" (several joined by &) naming only the caller."""
    search = text.strip()
    resource, question, query = search.partition("?")
    if not question or "=" in resource:  # no resource type: the string is the query itself
        resource, query = "Task", search
    if resource != "Task":
        return [Issue("error", "not-supported", f"the topic is about Task, not {resource or 'nothing'}", (where,))]
    pairs = parse_qsl(query, keep_blank_values=True)
    if not pairs:
        return [Issue("error", "value", "a filter is Task?owner=<system>|<value>", (where,))]
    owners: set[str] = set()
    for key, value in pairs:
        if key not in _OWNER_KEYS:
            return [Issue("error", "not-supported", f"the topic filters on owner only, not {key!r}", (where,))]
        try:
            owners.add(org_token(*parse_org(value.removeprefix("Organization?identifier="))))
        except ValueError as exc:
            return [Issue("error", "value", str(exc), (where,))]
    if owners != {caller_org}:
        return [Issue("error", "forbidden", "a partner subscribes to its own organisation's Tasks only", (where,))]
    return []


def _backport_filter_issues(body: dict[str, Any], caller_org: str) -> list[Issue]:
    """Without a filter the topic is every organisation's Tasks: narrowed to the caller's (and echoed so)."""
    issues: list[Issue] = []
    for index, extension in _extensions(body.get("_criteria"), FILTER_CRITERIA):
        where = f"Subscription.criteria.extension[{index}].valueString"
        if not isinstance(extension.get("valueString"), str):
            issues.append(Issue("error", "structure", "backport-filter-criteria takes a valueString", (where,)))
            continue
        issues += _owner_filter_issues(extension["valueString"], caller_org, where)
    return issues


def _seconds(channel: dict[str, Any], url: str, low: int, high: int, what: str) -> tuple[int | None, list[Issue]]:
    found = _extensions(channel, url)
    if not found:
        return None, []
    index, value = found[0][0], _value(found[0][1])
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return None, [Issue("error", "value", f"{what} must be {low} to {high} seconds",
                            (f"Subscription.channel.extension[{index}]",))]
    return value, []


def parse(body: dict[str, Any], *, caller_org: str) -> SubscriptionRequest:
    """Check a Subscription in the backport-IG form or the older criteria form; no database involved.

    Raises FhirError 400 when the body is no Subscription, 422 (each issue with the FHIRPath of the offending
    element) for: an unknown topic or criteria, a filter on another organisation or on anything but the
    owner, a channel other than rest-hook, a non-http(s) endpoint, a payload other than id-only FHIR JSON,
    a heartbeat period outside 5–86400 s or a timeout outside 1–3600 s. Source: hl7.fhir.uv.subscriptions-backport
    (Subscription profile `backport-subscription`, extensions on criteria and channel).
    """
    if not isinstance(body, dict) or body.get("resourceType") != "Subscription":
        raise FhirError(400, Issue("error", "structure", "a Subscription resource is required", ("resourceType",)))
    # status is the server's to set, and reason is not needed here: their absence is no reason to refuse.
    issues = [i for i in [*validate_resource(body), *unresolved_placeholders(body, "Subscription", ())]
              if i.code != "required" or i.expression not in _SERVER_SET]
    if issues:
        raise FhirError(422, issues)
    criteria = str(body.get("criteria") or "")
    channel = body.get("channel") or {}
    # Whatever the form, the only owner a caller may ask for is its own organisation.
    form = "backport" if criteria == TOPIC else "criteria"
    if form == "backport":
        issues += _backport_filter_issues(body, caller_org)
    elif criteria.startswith("Task?"):
        issues += _owner_filter_issues(criteria, caller_org, "Subscription.criteria")
    else:
        issues.append(Issue("error", "not-supported",
                            f"unknown topic: criteria is the topic {TOPIC} (filter in backport-filter-criteria) "
                            "or Task?owner=<system>|<value>", ("Subscription.criteria",)))
    if channel.get("type") != "rest-hook" or _extensions(channel.get("_type"), CHANNEL_TYPE):
        issues.append(Issue("error", "not-supported", "channel.type must be rest-hook", ("Subscription.channel.type",)))
    endpoint = str(channel.get("endpoint") or "")
    if urlparse(endpoint).scheme not in ("http", "https") or not urlparse(endpoint).netloc:
        issues.append(Issue("error", "value", "channel.endpoint must be an http(s) URL",
                            ("Subscription.channel.endpoint",)))
    if channel.get("payload") not in (None, *_PAYLOAD_TYPES):
        issues.append(Issue("error", "not-supported", "notifications are sent as application/fhir+json",
                            ("Subscription.channel.payload",)))
    content = _extension(channel.get("_payload"), PAYLOAD_CONTENT) or "id-only"
    if content != "id-only":
        issues.append(Issue("error", "not-supported", "only id-only payloads are sent (notified pull)",
                            ("Subscription.channel.payload.extension",)))
    heartbeat, found = _seconds(channel, HEARTBEAT_PERIOD, 5, 86400, "the heartbeat period")
    issues += found
    timeout, found = _seconds(channel, TIMEOUT, 1, 3600, "the timeout")
    issues += found
    if issues:
        raise FhirError(422, issues)
    if heartbeat is None:  # the IG sends no heartbeat unless asked; the older form always had one a minute
        heartbeat = 0 if form == "backport" else LEGACY_HEARTBEAT_SECONDS
    headers = tuple(h for h in channel.get("header", []) or [] if isinstance(h, str) and ":" in h)
    return SubscriptionRequest(form=form, owner=caller_org, endpoint=endpoint, headers=headers,
                               heartbeat_seconds=heartbeat,
                               timeout_seconds=min(timeout or SEND_TIMEOUT_SECONDS, SEND_TIMEOUT_SECONDS))


def accepted(body: dict[str, Any], wanted: SubscriptionRequest) -> dict[str, Any]:
    """The Subscription as accepted: criteria, filter, heartbeat and timeout as they will be applied."""
    accepted_body = copy.deepcopy(body)
    accepted_body.pop("id", None)
    if wanted.form == "backport":
        accepted_body["criteria"] = TOPIC
        criteria_element = accepted_body.get("_criteria") if isinstance(accepted_body.get("_criteria"), dict) else {}
        others = [e for e in criteria_element.get("extension", []) if e.get("url") != FILTER_CRITERIA]
        accepted_body["_criteria"] = {**criteria_element, "extension": [
            *others, {"url": FILTER_CRITERIA, "valueString": f"Task?owner={wanted.owner}"}]}
    else:
        accepted_body["criteria"] = f"Task?owner={wanted.owner}"
    channel = accepted_body.setdefault("channel", {})
    extensions = [e for e in channel.get("extension", []) if e.get("url") not in (HEARTBEAT_PERIOD, TIMEOUT)]
    if wanted.heartbeat_seconds:
        extensions.append({"url": HEARTBEAT_PERIOD, "valueUnsignedInt": wanted.heartbeat_seconds})
    extensions.append({"url": TIMEOUT, "valueUnsignedInt": wanted.timeout_seconds})
    channel["extension"] = extensions
    return accepted_body


async def create(session: AsyncSession, *, body: dict[str, Any], caller: Caller) -> SubscriptionRecord:
    """Accept a rest-hook subscription on the caller's own Tasks; the handshake follows from the sender."""
    wanted = parse(body, caller_org=caller.org)
    record = SubscriptionRecord(id=uuid.uuid4().hex, owner_org=wanted.owner, endpoint=wanted.endpoint,
                                headers=json.dumps(list(wanted.headers)), heartbeat_seconds=wanted.heartbeat_seconds,
                                created_by=caller.subject, content=json.dumps(accepted(body, wanted)))
    record.content = json.dumps(_resource(record))
    session.add(record)
    written(session)  # the handshake is due at once
    return record


def _resource(record: SubscriptionRecord) -> dict[str, Any]:
    base = json.loads(record.content)
    base.update({"id": record.id, "status": record.status})
    if record.error:
        base["error"] = record.error
    else:
        base.pop("error", None)
    return base


def resource(record: SubscriptionRecord) -> dict[str, Any]:
    """The Subscription resource as its owner reads it: what was accepted, with the current status and error."""
    return _resource(record)


def _timeout(record: SubscriptionRecord) -> float:
    value = _extension(json.loads(record.content).get("channel"), TIMEOUT)
    return float(value) if isinstance(value, int) and 0 < value <= SEND_TIMEOUT_SECONDS else SEND_TIMEOUT_SECONDS


async def get(session: AsyncSession, *, subscription_id: str, caller: Caller) -> SubscriptionRecord:
    """The caller's own subscription; anyone else's, like an unknown id, is a 404 (no hint that it exists)."""
    record = await session.get(SubscriptionRecord, subscription_id)
    if record is None or record.owner_org != caller.org:
        raise FhirError(404, Issue("error", "not-found", f"Subscription/{subscription_id} is not known"))
    return record


async def notify(session: AsyncSession, *, task_id: str, owner: str) -> None:
    """Number this Task change for every subscription on its owner, in the Task change's own transaction."""
    subscriptions = (await session.execute(select(SubscriptionRecord).where(
        SubscriptionRecord.owner_org == owner, SubscriptionRecord.status.in_(("requested", "active")))  # type: ignore[attr-defined]
        .with_for_update())).scalars()
    for record in subscriptions:
        written(session)
        record.events_since_start += 1
        session.add(record)
        session.add(Notification(subscription_id=record.id, event_number=record.events_since_start,
                                 focus=f"Task/{task_id}"))


SUBSCRIPTION = SubscriptionRecord.__table__  # type: ignore[attr-defined]
NOTIFICATION = Notification.__table__  # type: ignore[attr-defined]
_LIVE = ("requested", "active")


_COUNT_UP = (update(SUBSCRIPTION)
             .where(SUBSCRIPTION.c.owner_org == bindparam("owner"),
                    or_(*(SUBSCRIPTION.c.status == status for status in _LIVE)))
             .values(events_since_start=SUBSCRIPTION.c.events_since_start + 1)
             .returning(SUBSCRIPTION.c.id, SUBSCRIPTION.c.events_since_start))


@functools.cache
def _numbered(name: str) -> Any:
    """PostgreSQL: the subscriptions counted up (a CTE called `name`) feed the notification rows."""
    numbered = _COUNT_UP.cte(name)
    return insert(NOTIFICATION).from_select(
        ["subscription_id", "event_number", "focus", "created_at", "attempts"],
        select(numbered.c.id, numbered.c.events_since_start, bindparam("focus", type_=String()),
               bindparam("at", type_=DateTime(timezone=True)), literal(0)))


def notify_in(writes: Writes, *, dialect: str, task_id: str, owner: str, at: datetime) -> None:
    """`notify` for a hot path, with the unit of work's other writes: one statement on PostgreSQL (the matching
    subscriptions counted up, RETURNING their new numbers into the notification rows); on SQLite the UPDATE …
    RETURNING and then the rows. Numbering is serialised per subscription by the UPDATE's row lock, as by the
    FOR UPDATE of `notify`."""
    focus = f"Task/{task_id}"
    if dialect == "postgresql":
        writes.statement(_numbered(writes.name("notify")), {"owner": owner, "focus": focus, "at": at})
        writes.on_flush(written)  # whether a row is added shows only in the trigger's NOTIFY: woken either way
        return

    async def on_sqlite(session: AsyncSession) -> None:
        numbered = (await session.execute(_COUNT_UP, {"owner": owner})).all()
        if numbered:
            written(session)
            await session.execute(insert(NOTIFICATION), [
                {"subscription_id": sid, "event_number": number, "focus": focus, "created_at": at, "attempts": 0}
                for sid, number in numbered])
    writes.statement(_COUNT_UP, {"owner": owner}, on_sqlite=on_sqlite)


def event_range(since: str | None, until: str | None) -> tuple[int, int | None]:
    """Parse `$events`' eventsSinceNumber and eventsUntilNumber (both inclusive, strings of digits ≥ 1).

    Returns (first, last or None for "up to the latest"); raises FhirError 400 naming the parameter.
    """
    numbers: list[int | None] = []
    for name, text in (("eventsSinceNumber", since), ("eventsUntilNumber", until)):
        if text is None or text == "":
            numbers.append(None)
        elif text.isdigit() and int(text) >= 1:
            numbers.append(int(text))
        else:
            raise FhirError(400, Issue("error", "invalid", f"{name} must be an event number (1 or more)", (name,)))
    first, last = numbers[0] or 1, numbers[1]
    if last is not None and last < first:
        raise FhirError(400, Issue("error", "invalid", "eventsUntilNumber is before eventsSinceNumber",
                                   ("eventsUntilNumber",)))
    return first, last


async def events(session: AsyncSession, *, record: SubscriptionRecord, first: int, last: int | None,
                 limit: int = EVENTS_PER_PAGE) -> list[Notification]:
    """This subscription's events numbered first..last (inclusive), delivered or not, at most `limit`."""
    query = select(Notification).where(Notification.subscription_id == record.id,
                                       Notification.event_number >= first)  # type: ignore[operator]
    if last is not None:
        query = query.where(Notification.event_number <= last)  # type: ignore[operator]
    return list((await session.execute(query.order_by(Notification.event_number).limit(limit))).scalars())


def status_parameters(record: SubscriptionRecord, *, kind: str, base_url: str,
                      notifications: Sequence[Notification] = ()) -> dict[str, Any]:
    """The R4 SubscriptionStatus (`Parameters`, profile backport-subscription-status-r4) for one Subscription.

    `kind` is the IG's notification type: handshake, heartbeat, event-notification, query-status or
    query-event; each notification adds a `notification-event` part (event-number, timestamp, focus).
    """
    parameters: list[dict[str, Any]] = [
        {"name": "subscription", "valueReference": {"reference": f"{base_url}/fhir/Subscription/{record.id}"}},
        {"name": "topic", "valueCanonical": TOPIC},
        {"name": "status", "valueCode": record.status},
        {"name": "type", "valueCode": kind},
        {"name": "events-since-subscription-start", "valueString": str(record.events_since_start)},
    ]
    for notification in notifications:
        parameters.append({"name": "notification-event", "part": [
            {"name": "event-number", "valueString": str(notification.event_number)},
            {"name": "timestamp", "valueInstant": _aware(notification.created_at).isoformat()},  # type: ignore[union-attr]
            {"name": "focus", "valueReference": {"reference": f"{base_url}/fhir/{notification.focus}"}}]})
    if record.error and kind in ("query-status", "query-event"):
        parameters.append({"name": "error", "valueCodeableConcept": {"text": record.error}})
    return {"resourceType": "Parameters", "id": uuid.uuid4().hex, "meta": {"profile": [STATUS_PROFILE]},
            "parameter": parameters}


def bundle(record: SubscriptionRecord, *, kind: str, base_url: str,
           notifications: Sequence[Notification] = ()) -> dict[str, Any]:
    """A notification Bundle (`history`, profile backport-subscription-notification-r4): the status Parameters
    first, then per event an id-only entry naming the Task (fullUrl and request, no resource)."""
    status = status_parameters(record, kind=kind, base_url=base_url, notifications=notifications)
    entries = [{"fullUrl": f"{base_url}/fhir/{n.focus}", "request": {"method": "PUT", "url": n.focus},
                "response": {"status": "200"}} for n in notifications]
    return {"resourceType": "Bundle", "id": uuid.uuid4().hex, "type": "history", "timestamp": _now().isoformat(),
            "entry": [{"fullUrl": f"urn:uuid:{status['id']}", "resource": status,
                       "request": {"method": "GET", "url": f"{base_url}/fhir/Subscription/{record.id}/$status"},
                       "response": {"status": "200"}}, *entries]}


def status_bundle(record: SubscriptionRecord, *, base_url: str) -> dict[str, Any]:
    """`$status`' answer: a `searchset` Bundle holding this Subscription's status Parameters (type query-status)."""
    status = status_parameters(record, kind="query-status", base_url=base_url)
    return {"resourceType": "Bundle", "id": uuid.uuid4().hex, "type": "searchset", "total": 1,
            "timestamp": _now().isoformat(),
            "entry": [{"fullUrl": f"urn:uuid:{status['id']}", "resource": status, "search": {"mode": "match"}}]}


_HEAD = (select(Notification.event_number).where(
    Notification.subscription_id == SubscriptionRecord.id, Notification.delivered_at.is_(None))  # type: ignore[union-attr]
    .order_by(Notification.event_number))
# Per live subscription what decides when it is next due: its undelivered head event and when that may be retried.
_DUE = select(SubscriptionRecord.id, SubscriptionRecord.status, SubscriptionRecord.heartbeat_seconds,
              SubscriptionRecord.last_sent_at, SubscriptionRecord.created_at, SubscriptionRecord.lease_until,
              _HEAD.limit(1).scalar_subquery().label("head"),
              _HEAD.with_only_columns(Notification.next_attempt_at).limit(1).scalar_subquery().label("retry_at"),
              ).where(SubscriptionRecord.status.in_(_LIVE))  # type: ignore[attr-defined]


class Sender:
    """Delivers due handshakes, notifications and heartbeats: `serve_forever` wakes on the commit that adds
    work (PostgreSQL NOTIFY from the triggers of revision 0006, in every process; in-process after commit on
    SQLite and while the LISTEN is down) and at the moment a retry or heartbeat falls due; `fallback_seconds`
    is only the timer for a lost signal. `run_once` is one pass."""

    def __init__(self, *, sessions: async_sessionmaker[AsyncSession], policy: RetryPolicy, base_url: str,
                 http: httpx.AsyncClient | None = None, engine: AsyncEngine | None = None,
                 fallback_seconds: float = FALLBACK_SECONDS) -> None:
        self.sessions = sessions
        self.policy = policy
        self.base_url = base_url
        self.http = http or httpx.AsyncClient(timeout=SEND_TIMEOUT_SECONDS)
        self.worker = uuid.uuid4().hex
        self.fallback_seconds = fallback_seconds
        # When the next pass has something to do at the latest, as the last pass found (None: only on a wake).
        self.next_due: datetime | None = None
        self._wake = asyncio.Event()
        bind = engine or sessions.kw.get("bind")
        self._listener = (CommitListener(bind, NOTIFICATION_CHANNEL, self.wake, what="notification sender")
                          if isinstance(bind, AsyncEngine) and is_postgres(bind) else None)
        # Sessions of this factory wake the sender once they commit a notification or subscription (`written`).
        _SIGNAL.attach(sessions, self._committed)

    @property
    def listening(self) -> bool:
        """Whether the PostgreSQL LISTEN is up (then every commit's NOTIFY wakes this sender)."""
        return self._listener is not None and self._listener.listening

    def wake(self) -> None:
        """Make a pass now rather than at the next due moment or the fallback timer."""
        self._wake.set()

    def _committed(self) -> None:
        if not self.listening:  # while the NOTIFY is heard it wakes this sender too
            self.wake()

    async def serve_forever(self) -> None:
        """Pass after pass, until cancelled: at once again after a pass that sent something, otherwise asleep
        until woken, until the next retry or heartbeat is due, or `fallback_seconds`, whichever comes first.
        A failing pass (database away) is logged and tried again after a second."""
        listen = (asyncio.create_task(self._listener.run(), name="notification-listen")
                  if self._listener is not None else None)
        try:
            while True:
                # Cleared before reading: a commit signalled during a pass makes the next one start at once.
                self._wake.clear()
                try:
                    if await self.run_once():
                        continue
                except Exception as exc:
                    log.warning("notification sender: pass failed (%s); retrying", exc.__class__.__name__)
                    self.next_due = _now() + timedelta(seconds=1)
                wait = self.fallback_seconds
                if self.next_due is not None:
                    wait = min(wait, max(0.0, (self.next_due - _now()).total_seconds()))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
        finally:
            await cancelled(listen)

    async def run_once(self) -> int:
        """Serve every subscription that has something due now (one statement finds them), each under its
        lease; sets `next_due` to when the earliest of the others falls due. Returns the number sent."""
        async with self.sessions() as session:
            rows = (await session.execute(_DUE)).all()
        now = _now()
        due: list[str] = []
        later: list[datetime] = []
        for row in rows:
            when = self._due_at(row, now)
            if when is None:
                continue
            if when <= now:
                due.append(row.id)
            else:
                later.append(when)
        sent = 0
        for subscription_id in due:
            lease = await self.claim(subscription_id)
            if lease is None:  # another worker holds it: look again once its lease would have ended
                later.append(_now() + LEASE)
                continue
            try:
                served = await self._serve(subscription_id)
            finally:
                await self.release(subscription_id, lease)
            sent += served
            if not served:  # refused, say: when it is due again shows in the next pass
                later.append(_now())
        self.next_due = min(later, default=None)
        return sent

    def _due_at(self, row: Any, now: datetime) -> datetime | None:
        """When this subscription next has something to send (a moment ≤ now: due now), None for never."""
        leased = _aware(row.lease_until)
        if leased is not None and leased > now:
            return leased
        if row.status == "requested":
            return now
        if row.head is not None:
            return _aware(row.retry_at) or now
        last = _aware(row.last_sent_at) or _aware(row.created_at)
        if row.heartbeat_seconds and last is not None:
            return last + timedelta(seconds=row.heartbeat_seconds)
        return None

    async def claim(self, subscription_id: str) -> datetime | None:
        """Take the subscription for one send unless another worker (process) holds an unexpired lease.

        Returns the lease's end, which also identifies it (microseconds), or None when it is taken. One
        holder at a time keeps the subscription's events in order; a holder that outlives its lease may
        send the head event once more, which the receiver absorbs (event numbers are stable).
        """
        now = _now()
        lease = now + LEASE
        async with self.sessions() as session, session.begin():
            claimed = await session.execute(update(SubscriptionRecord).where(
                SubscriptionRecord.id == subscription_id,
                or_(SubscriptionRecord.lease_until.is_(None), SubscriptionRecord.lease_until < now))  # type: ignore[union-attr]
                .values(lease_until=lease))
            return lease if claimed.rowcount else None  # type: ignore[attr-defined]

    async def release(self, subscription_id: str, lease: datetime) -> None:
        """Give back this lease; a lease another worker took after ours expired stays theirs."""
        async with self.sessions() as session, session.begin():
            await session.execute(update(SubscriptionRecord).where(SubscriptionRecord.id == subscription_id,
                                                                   SubscriptionRecord.lease_until == lease)
                                  .values(lease_until=None))

    async def _serve(self, subscription_id: str) -> int:
        async with self.sessions() as session:
            record = await session.get(SubscriptionRecord, subscription_id)
            assert record is not None
            head = (await session.execute(select(Notification).where(
                Notification.subscription_id == subscription_id, Notification.delivered_at.is_(None))  # type: ignore[union-attr]
                .order_by(Notification.event_number).limit(1))).scalars().first()
        now = _now()
        if record.status == "requested":
            return int(await self._send(record, "handshake", None))
        if head is not None:
            if head.next_attempt_at is not None and _aware(head.next_attempt_at) > now:  # type: ignore[operator]
                return 0
            return int(await self._send(record, "event-notification", head))
        last = _aware(record.last_sent_at) or _aware(record.created_at)
        if record.heartbeat_seconds and last is not None and now - last >= timedelta(seconds=record.heartbeat_seconds):
            return int(await self._send(record, "heartbeat", None))
        return 0

    async def _send(self, record: SubscriptionRecord, kind: str, notification: Notification | None) -> bool:
        body = bundle(record, kind=kind, base_url=self.base_url,
                      notifications=[notification] if notification is not None else [])
        headers = {"Content-Type": "application/fhir+json"}
        for header in json.loads(record.headers):
            name, _, value = header.partition(":")
            headers[name.strip()] = value.strip()
        status_code, error = None, None
        try:
            response = await self.http.post(record.endpoint, json=body, headers=headers, timeout=_timeout(record))
            status_code = response.status_code
            ok = 200 <= status_code < 300
            if not ok:
                error = f"receiver answered {status_code}"
        except httpx.HTTPError as exc:
            ok, error = False, f"{exc.__class__.__name__}"
        now = _now()
        async with self.sessions() as session, session.begin():
            session.add(DeliveryAttempt(subscription_id=record.id, kind=kind, at=now, status_code=status_code,
                                        error=error, event_number=notification.event_number if notification else None))
            current = await session.get(SubscriptionRecord, record.id, with_for_update=True)
            assert current is not None
            if ok:
                current.last_sent_at = now
                if current.status == "requested":
                    current.status = "active"
                if notification is not None:
                    await session.execute(update(Notification).where(Notification.pk == notification.pk)
                                          .values(delivered_at=now, attempts=Notification.attempts + 1))
            else:
                await self._failed(session, current, notification, now, error or "delivery failed")
            current.content = json.dumps(_resource(current))
            session.add(current)
        return ok

    async def _failed(self, session: AsyncSession, record: SubscriptionRecord, notification: Notification | None,
                      now: datetime, error: str) -> None:
        if notification is None:
            if record.status == "requested":
                record.status, record.error = "error", f"handshake failed: {error}"
            return
        first = _aware(notification.first_failure_at) or now
        attempts = notification.attempts + 1
        await session.execute(update(Notification).where(Notification.pk == notification.pk).values(
            attempts=attempts, first_failure_at=first, next_attempt_at=now + self.policy.delay(attempts)))
        if now - first >= timedelta(seconds=self.policy.give_up_seconds):
            record.status = "error"
            record.error = f"gave up after {attempts} attempts since {first.isoformat()}: {error}"
