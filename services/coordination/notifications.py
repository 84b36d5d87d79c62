"""Partner notifications ("notified pull"): FHIR R4 Subscriptions in the R4B backport style, rest-hook with
id-only payloads, filtered on Task owner.

Every Task change adds a numbered notification for each matching subscription in the same transaction,
so nothing is lost across a restart; a sender delivers them strictly in event-number order, retries with
exponential backoff and turns the subscription to `error` once a receiver has been failing for longer
than the give-up horizon (24 hours by default). Every attempt is recorded.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

import httpx
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.coordination.models import DeliveryAttempt, Notification, SubscriptionRecord
from shared.auth import Caller
from shared.fhir import FhirError, Issue, unresolved_placeholders, validate_resource
from shared.identifiers import org_token, parse_org

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
TOPIC = "https://regiozorg.example/fhir/SubscriptionTopic/task-owner"
# Longer than one send may take (HTTP timeout below); after a crash another worker resumes once it ends.
LEASE = timedelta(seconds=15)
SEND_TIMEOUT_SECONDS = 5


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float
    max_backoff_seconds: float
    give_up_seconds: float

    def delay(self, attempts: int) -> timedelta:
        return timedelta(seconds=min(self.max_backoff_seconds, self.base_seconds * 2 ** max(0, attempts - 1)))


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime | None) -> datetime | None:
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=UTC)


def _extension(element: Any, name: str) -> Any:
    extensions = element.get("extension") if isinstance(element, dict) else None
    for ext in extensions if isinstance(extensions, list) else []:
        if isinstance(ext, dict) and ext.get("url") == f"{BACKPORT}/{name}":
            return next((v for k, v in ext.items() if k.startswith("value")), None)
    return None


async def create(session: AsyncSession, *, body: dict[str, Any], caller: Caller) -> SubscriptionRecord:
    """Accept a rest-hook subscription on the caller's own Tasks; the handshake follows from the sender."""
    issues: list[Issue] = []
    if body.get("resourceType") != "Subscription":
        raise FhirError(400, Issue("error", "structure", "a Subscription resource is required", ("resourceType",)))
    channel = body.get("channel") if isinstance(body.get("channel"), dict) else {}
    criteria = str(body.get("criteria") or "")
    owner = caller.org
    if not criteria.startswith("Task?owner="):
        issues.append(Issue("error", "not-supported", "criteria must be Task?owner=<system>|<value>",
                            ("Subscription.criteria",)))
    else:
        try:
            owner = org_token(*parse_org(criteria.removeprefix("Task?owner=")))
        except ValueError as exc:
            issues.append(Issue("error", "value", str(exc), ("Subscription.criteria",)))
        if owner != caller.org:
            issues.append(Issue("error", "forbidden", "a partner subscribes to its own organisation's Tasks only",
                                ("Subscription.criteria",)))
    if channel.get("type") != "rest-hook":
        issues.append(Issue("error", "not-supported", "channel.type must be rest-hook", ("Subscription.channel.type",)))
    endpoint = str(channel.get("endpoint") or "")
    if urlparse(endpoint).scheme not in ("http", "https") or not urlparse(endpoint).netloc:
        issues.append(Issue("error", "value", "channel.endpoint must be an http(s) URL",
                            ("Subscription.channel.endpoint",)))
    content = _extension(channel.get("_payload") or {}, "backport-payload-content") or "id-only"
    if content != "id-only":
        issues.append(Issue("error", "not-supported", "only id-only payloads are sent (notified pull)",
                            ("Subscription.channel.payload",)))
    heartbeat = _extension(channel, "backport-heartbeat-period") or 60
    if not isinstance(heartbeat, int) or not 5 <= heartbeat <= 86400:
        issues.append(Issue("error", "value", "heartbeat period must be 5 to 86400 seconds",
                            ("Subscription.channel.extension",)))
    given_headers = channel.get("header")
    headers = [h for h in given_headers if isinstance(h, str) and ":" in h] if isinstance(given_headers, list) else []
    # After the rules above, so a partner reads first what this service does not do; then what FHIR does not allow.
    reported = {issue.expression for issue in issues}
    issues += [issue for issue in [*validate_resource(body), *unresolved_placeholders(body, "Subscription", ())]
               if issue.expression not in reported]
    if issues:
        raise FhirError(422, issues)
    record = SubscriptionRecord(id=uuid.uuid4().hex, owner_org=owner, endpoint=endpoint, headers=json.dumps(headers),
                                heartbeat_seconds=int(heartbeat), created_by=caller.subject, content="")
    record.content = json.dumps(_resource(record, body))
    session.add(record)
    return record


def _resource(record: SubscriptionRecord, body: dict[str, Any] | None = None) -> dict[str, Any]:
    base = dict(body or json.loads(record.content))
    base.update({"id": record.id, "status": record.status, "criteria": f"Task?owner={record.owner_org}"})
    if record.error:
        base["error"] = record.error
    else:
        base.pop("error", None)
    return base


def resource(record: SubscriptionRecord) -> dict[str, Any]:
    return _resource(record)


async def get(session: AsyncSession, *, subscription_id: str, caller: Caller) -> SubscriptionRecord:
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
        record.events_since_start += 1
        session.add(record)
        session.add(Notification(subscription_id=record.id, event_number=record.events_since_start,
                                 focus=f"Task/{task_id}"))


def bundle(record: SubscriptionRecord, *, kind: str, base_url: str,
           notification: Notification | None = None) -> dict[str, Any]:
    """A backport notification Bundle: SubscriptionStatus parameters and, for an event, only the Task's id."""
    now = _now().isoformat()
    parameters: list[dict[str, Any]] = [
        {"name": "subscription", "valueReference": {"reference": f"{base_url}/fhir/Subscription/{record.id}"}},
        {"name": "topic", "valueCanonical": TOPIC},
        {"name": "status", "valueCode": record.status if record.status != "requested" else "active"},
        {"name": "type", "valueCode": kind},
        {"name": "events-since-subscription-start", "valueString": str(record.events_since_start)},
    ]
    entries: list[dict[str, Any]] = []
    if notification is not None:
        focus = f"{base_url}/fhir/{notification.focus}"
        parameters.append({"name": "notification-event", "part": [
            {"name": "event-number", "valueString": str(notification.event_number)},
            {"name": "timestamp", "valueInstant": _aware(notification.created_at).isoformat()},  # type: ignore[union-attr]
            {"name": "focus", "valueReference": {"reference": focus}}]})
        entries.append({"fullUrl": focus, "request": {"method": "PUT", "url": notification.focus},
                        "response": {"status": "200"}})
    status = {"resourceType": "Parameters", "id": uuid.uuid4().hex,
              "meta": {"profile": [f"{BACKPORT}/backport-subscription-status-r4"]}, "parameter": parameters}
    return {"resourceType": "Bundle", "id": uuid.uuid4().hex, "type": "history", "timestamp": now,
            "entry": [{"fullUrl": f"urn:uuid:{status['id']}", "resource": status,
                       "request": {"method": "GET", "url": f"{base_url}/fhir/Subscription/{record.id}/$status"},
                       "response": {"status": "200"}}, *entries]}


class Sender:
    """Delivers due handshakes, notifications and heartbeats; one pass per call of `run_once`."""

    def __init__(self, *, sessions: async_sessionmaker[AsyncSession], policy: RetryPolicy, base_url: str,
                 http: httpx.AsyncClient | None = None) -> None:
        self.sessions = sessions
        self.policy = policy
        self.base_url = base_url
        self.http = http or httpx.AsyncClient(timeout=SEND_TIMEOUT_SECONDS)
        self.worker = uuid.uuid4().hex

    async def run_once(self) -> int:
        async with self.sessions() as session:
            ids = list((await session.execute(select(SubscriptionRecord.id).where(
                SubscriptionRecord.status.in_(("requested", "active"))))).scalars())  # type: ignore[attr-defined]
        sent = 0
        for subscription_id in ids:
            if await self._claim(subscription_id):
                try:
                    sent += await self._serve(subscription_id)
                finally:
                    await self._release(subscription_id)
        return sent

    async def _claim(self, subscription_id: str) -> bool:
        now = _now()
        async with self.sessions() as session, session.begin():
            claimed = await session.execute(update(SubscriptionRecord).where(
                SubscriptionRecord.id == subscription_id,
                or_(SubscriptionRecord.lease_until.is_(None), SubscriptionRecord.lease_until < now))  # type: ignore[union-attr]
                .values(lease_until=now + LEASE))
            return bool(claimed.rowcount)  # type: ignore[attr-defined]

    async def _release(self, subscription_id: str) -> None:
        async with self.sessions() as session, session.begin():
            await session.execute(update(SubscriptionRecord).where(SubscriptionRecord.id == subscription_id)
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
        if last is not None and now - last >= timedelta(seconds=record.heartbeat_seconds):
            return int(await self._send(record, "heartbeat", None))
        return 0

    async def _send(self, record: SubscriptionRecord, kind: str, notification: Notification | None) -> bool:
        body = bundle(record, kind=kind, base_url=self.base_url, notification=notification)
        headers = {"Content-Type": "application/fhir+json"}
        for header in json.loads(record.headers):
            name, _, value = header.partition(":")
            headers[name.strip()] = value.strip()
        status_code, error = None, None
        try:
            response = await self.http.post(record.endpoint, json=body, headers=headers)
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
