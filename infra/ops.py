"""Operator commands: migrate a service's database, list and re-drive dead letters, inspect and replay an outbox.

    python -m infra.ops migrate SERVICE [--revision REV | --downgrade REV | --current]
    python -m infra.ops revision SERVICE --message TEXT      (developers: a new revision from changed models)
    python -m infra.ops dead-letters list [--topic TOPIC] [--limit N] [--json]
    python -m infra.ops dead-letters redrive --topic TOPIC.dlq (--offset PARTITION/OFFSET ... | --all)
    python -m infra.ops outbox status --service SERVICE
    python -m infra.ops outbox replay --service SERVICE --since ISO-TIME --until ISO-TIME [--topic TOPIC]

They read the environment the services read: REGIOZORG_KAFKA_BOOTSTRAP for the broker, and
<SERVICE>_DATABASE_URL (else the SQLite file in REGIOZORG_DATA_DIR) for a service's database.
Event values hold patient data and are never printed. Exit status: 0 done, 1 failed (broker or
database unreachable, nothing found), 2 wrong usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from sqlalchemy import func, inspect, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.billing_shadow.settings import BillingSettings
from services.coordination.settings import CoordinationSettings
from services.triage.settings import TriageSettings
from shared import migrations
from shared.bus.outbox import PARKED, PENDING, SENT, OutboxRecord
from shared.bus.topics import ALL_TOPICS, dlq
from shared.db import make_engine, normalise_url
from shared.settings import ServiceSettings

SETTINGS: dict[str, type[ServiceSettings]] = {"triage": TriageSettings, "coordination": CoordinationSettings,
                                              "billing_shadow": BillingSettings}
DLQ_TOPICS = [dlq(topic) for topic in ALL_TOPICS]
ERROR_CHARS = 300
# The embedded broker can report an end offset short of the last record after a multi-record
# batch, so reading goes on to the highwater of the fetches and stops after this long without records.
IDLE_SECONDS = 2.0

T = TypeVar("T")


class OpsError(Exception):
    """A failure to report in one line (exit status 1), not a traceback."""


class UsageError(OpsError):
    """Arguments that argparse accepted but that make no sense together (exit status 2)."""


# Dead letters ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode("utf-8", "replace")
        return None

    @property
    def location(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"

    @property
    def origin_topic(self) -> str:
        return self.topic.removesuffix(".dlq")

    def summary(self) -> dict[str, Any]:
        """What an operator may see: where it came from, who refused it and why; never the value."""
        attempts = self.header("dlq_attempts")
        error = " ".join((self.header("dlq_error") or "").split())
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset,
                "time": datetime.fromtimestamp(self.timestamp_ms / 1000, UTC).isoformat(timespec="seconds"),
                "origin": self.header("dlq_origin"), "consumer": self.header("dlq_consumer"),
                "attempts": int(attempts) if attempts and attempts.isdigit() else None,
                "ce_id": self.header("ce_id"), "ce_type": self.header("ce_type"),
                "error": error[:ERROR_CHARS] + ("…" if len(error) > ERROR_CHARS else "")}

    def redrive_headers(self) -> list[tuple[str, bytes]]:
        """The record's own CloudEvents and trace headers, without what dead-lettering added."""
        return [(key, value) for key, value in self.headers if not key.startswith("dlq_")]


async def read_dead_letters(bootstrap: str, topics: Sequence[str], *,
                            idle_seconds: float = IDLE_SECONDS) -> list[DeadLetter]:
    """Every record of the given DLQ topics, read from the beginning without a consumer group."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                request_timeout_ms=10000)
    try:
        await consumer.start()
        existing = await consumer.topics()
        partitions = [TopicPartition(topic, p) for topic in topics if topic in existing
                      for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            return []
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        letters: list[DeadLetter] = []
        idle_since = asyncio.get_running_loop().time()
        while not await _all_read(consumer, partitions, ends):
            batch = await consumer.getmany(timeout_ms=200)
            if not any(batch.values()):
                if asyncio.get_running_loop().time() - idle_since > idle_seconds:
                    print(f"warning: no records for {idle_seconds:g} s before the end the broker reported; "
                          "what follows may be incomplete", file=sys.stderr)
                    break
                continue
            idle_since = asyncio.get_running_loop().time()
            letters += [DeadLetter(r.topic, r.partition, r.offset, r.timestamp, r.key, r.value, tuple(r.headers or ()))
                        for records in batch.values() for r in records]
        return sorted(letters, key=lambda letter: (letter.timestamp_ms, letter.topic, letter.partition,
                                                   letter.offset))
    finally:
        await consumer.stop()


async def _all_read(consumer: AIOKafkaConsumer, partitions: list[TopicPartition],
                    ends: dict[TopicPartition, int]) -> bool:
    for tp in partitions:
        highwater = consumer.highwater(tp)
        if highwater is None or await consumer.position(tp) < max(ends[tp], highwater):
            return False
    return True


async def list_dead_letters(bootstrap: str, *, topic: str | None, limit: int | None, as_json: bool) -> int:
    topics = [topic if topic.endswith(".dlq") else dlq(topic)] if topic else DLQ_TOPICS
    letters = await read_dead_letters(bootstrap, topics)
    if limit is not None:
        letters = letters[-limit:] if limit else []
    for letter in letters:
        summary = letter.summary()
        if as_json:
            print(json.dumps(summary, ensure_ascii=False))
        else:
            print(f"{letter.location}  {summary['time']}  origin={summary['origin'] or '-'}  "
                  f"consumer={summary['consumer'] or '-'}  attempts={summary['attempts'] or '-'}  "
                  f"ce_id={summary['ce_id'] or '-'}  ce_type={summary['ce_type'] or '-'}  error={summary['error']}")
    if not as_json:
        print(f"{len(letters)} dead letter(s) in {', '.join(topics) if topic else 'every .dlq topic'}",
              file=sys.stderr)
    return 0


def _selected(letters: list[DeadLetter], offsets: list[str]) -> list[DeadLetter]:
    """The dead letters named PARTITION/OFFSET (or OFFSET alone when only one partition has it)."""
    chosen: dict[tuple[int, int], DeadLetter] = {}
    for given in offsets:
        partition_text, _, offset_text = given.rpartition("/")
        if not offset_text.isdigit() or (partition_text and not partition_text.isdigit()):
            raise UsageError(f"--offset {given!r}: give PARTITION/OFFSET as `dead-letters list` prints it")
        matches = [letter for letter in letters if letter.offset == int(offset_text)
                   and (not partition_text or letter.partition == int(partition_text))]
        if not matches:
            raise OpsError(f"no dead letter at {given}; nothing was re-driven")
        if len(matches) > 1:
            places = ", ".join(f"{m.partition}/{m.offset}" for m in matches)
            raise UsageError(f"--offset {given} is in several partitions ({places}); give PARTITION/OFFSET")
        chosen[(matches[0].partition, matches[0].offset)] = matches[0]
    return sorted(chosen.values(), key=lambda letter: (letter.partition, letter.offset))


async def redrive(bootstrap: str, *, topic: str, offsets: list[str] | None) -> int:
    letters = await read_dead_letters(bootstrap, [topic])
    chosen = letters if offsets is None else _selected(letters, offsets)
    if not chosen:
        print(f"{topic} holds no dead letters; nothing re-driven")
        return 0
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False,
                                request_timeout_ms=10000)
    try:
        await producer.start()
        for letter in chosen:
            sent = await producer.send_and_wait(letter.origin_topic, value=letter.value, key=letter.key,
                                                headers=letter.redrive_headers())
            print(f"re-driven {letter.location} -> {sent.topic}/{sent.partition}/{sent.offset}  "
                  f"ce_id={letter.header('ce_id') or '-'}")
    finally:
        await producer.stop()
    return 0


# Outbox ----------------------------------------------------------------------------------------------------------

def _engine(service: str) -> AsyncEngine:
    url = normalise_url(SETTINGS[service]().resolved_database_url)
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[1])
        if not path.is_file():
            variable = f"{service.upper()}_DATABASE_URL"
            raise OpsError(f"no database of {service} at {path}; set REGIOZORG_DATA_DIR or {variable} as the "
                           "service has them")
    return make_engine(url, pool_size=1)


async def _with_outbox(service: str, action: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    engine = _engine(service)
    shown = make_url(engine.url).render_as_string(hide_password=True)
    try:
        async with engine.connect() as conn:
            has_outbox = await conn.run_sync(lambda sync: inspect(sync).has_table(OutboxRecord.__tablename__))
        if not has_outbox:
            raise OpsError(f"the database of {service} ({shown}) has no outbox; has the service run against it?")
        return await action(engine)
    except (SQLAlchemyError, OSError) as exc:
        raise OpsError(f"the database of {service} ({shown}) failed: {_describe(exc)}") from exc
    finally:
        await engine.dispose()


async def outbox_status(service: str) -> int:
    async def show(engine: AsyncEngine) -> None:
        async with engine.connect() as conn:
            counts = dict((await conn.execute(
                select(OutboxRecord.status, func.count()).group_by(OutboxRecord.status))).all())
            oldest = (await conn.execute(
                select(func.min(OutboxRecord.created_at)).where(OutboxRecord.status == PENDING))).scalar()
            parked = (await conn.execute(
                select(OutboxRecord.event_id, OutboxRecord.topic, OutboxRecord.created_at, OutboxRecord.last_error)
                .where(OutboxRecord.status == PARKED).order_by(OutboxRecord.seq))).all()
        print(f"outbox of {service}")
        for status in (PENDING, SENT, PARKED, *sorted(set(counts) - {PENDING, SENT, PARKED})):
            print(f"  {status:8} {counts.get(status, 0):>8}")
        if oldest is not None:
            oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
            age = max(0.0, (datetime.now(UTC) - oldest).total_seconds())
            print(f"  oldest pending: {age:.1f} s (created {oldest.isoformat(timespec='seconds')})")
        for event_id, topic, created_at, last_error in parked:
            error = " ".join((last_error or "").split())[:ERROR_CHARS]
            print(f"  parked {event_id} {topic} created {created_at.isoformat(timespec='seconds')}: {error}")

    await _with_outbox(service, show)
    return 0


async def outbox_replay(service: str, *, since: datetime, until: datetime, topic: str | None) -> int:
    async def replay(engine: AsyncEngine) -> int:
        # Compared in UTC: SQLite keeps the UTC wall time without its offset.
        query = (update(OutboxRecord)
                 .where(OutboxRecord.status == SENT, OutboxRecord.created_at >= since.astimezone(UTC),
                        OutboxRecord.created_at < until.astimezone(UTC)))
        if topic:
            query = query.where(OutboxRecord.topic == topic)
        async with engine.begin() as conn:
            return int((await conn.execute(query.values(status=PENDING))).rowcount)

    count = await _with_outbox(service, replay)
    print(f"{count} sent outbox event(s) of {service} created from {since.isoformat()} until {until.isoformat()}"
          f"{f' on {topic}' if topic else ''} are pending again; the service's relay re-publishes them and "
          "consumers skip those they have processed")
    return 0


# Migrations ------------------------------------------------------------------------------------------------------

async def migrate(service: str, *, revision: str | None, downgrade: str | None, show: bool) -> int:
    """Upgrade (default: to head), take back, or show the revision of the service's database; the service may run."""
    # Upgrading a database that is not there yet makes it, as the service's first start would.
    engine = make_engine(SETTINGS[service]().resolved_database_url, pool_size=1) if not (downgrade or show) \
        else _engine(service)
    shown = make_url(engine.url).render_as_string(hide_password=True)
    try:
        if show:
            found, newest = await migrations.current(engine, service), migrations.head(service)
            state = ("up to date" if found == newest else "no migration history" if found is None
                     else "behind: `migrate` brings it to head" if found in migrations.revisions(service)
                     else "newer than this release")
            print(f"{service} ({shown}): database at {found or '-'}, this release's head {newest} ({state})")
        elif downgrade:
            print(migrations.describe(await migrations.downgrade(engine, service, downgrade)))
        else:
            print(migrations.describe(await migrations.migrate(engine, service, revision=revision or "head")))
        return 0
    except migrations.SchemaError as exc:
        raise OpsError(str(exc)) from exc
    except (SQLAlchemyError, OSError) as exc:
        raise OpsError(f"the database of {service} ({shown}) failed: {_describe(exc)}") from exc
    finally:
        await engine.dispose()


def new_revision(service: str, message: str) -> int:
    """Write the service's next revision, autogenerated from the difference between its models and head."""
    try:
        path = migrations.autogenerate(service, message)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    print(f"wrote {path.relative_to(migrations.ROOT)}: review it before committing. Autogenerate does not see "
          "triggers or data changes; on SQLite a batch operation copies the table, so re-create the append-only "
          "triggers of a table it alters (shared.migrations.create_append_only)")
    return 0


# Command line ----------------------------------------------------------------------------------------------------

def _aware_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone; add Z or an offset such as +01:00")
    return moment


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m infra.ops", description=__doc__.split("\n")[0],
                                     epilog="Broker and databases are those of REGIOZORG_KAFKA_BOOTSTRAP and "
                                            "<SERVICE>_DATABASE_URL / REGIOZORG_DATA_DIR. Exit status: 0 done, "
                                            "1 failed, 2 wrong usage.")
    areas = parser.add_subparsers(dest="area", required=True)

    migrating = areas.add_parser(
        "migrate", help="bring a service's database to this release's schema (or take it back one revision)",
        description="Upgrades the database of SERVICE to this release's newest revision (or --revision) in one "
                    "transaction; several at once take turns. A database of the release before migrations is "
                    "recognised and stamped first. The service may be running or stopped; it migrates itself at "
                    "start as well.")
    migrating.add_argument("service", choices=sorted(SETTINGS))
    action = migrating.add_mutually_exclusive_group()
    action.add_argument("--revision", help="upgrade to this revision instead of the newest")
    action.add_argument("--downgrade", metavar="REV",
                        help="take the database back to REV (a revision id, or -1 for one step); never before the "
                             "baseline. Run it with the release that made the newer revisions")
    action.add_argument("--current", action="store_true", help="show the database's revision and this release's")
    revising = areas.add_parser(
        "revision", help="(developers) write a service's next revision from its changed models",
        description="Compares the models with a database at head (in memory) and writes "
                    "services/SERVICE/migrations/versions/NNNN_<message>.py for review.")
    revising.add_argument("service", choices=sorted(SETTINGS))
    revising.add_argument("--message", "-m", required=True, help="what the change is, a few words")

    letters = areas.add_parser("dead-letters", help="events consumers refused, kept on the .dlq topics")
    letter_commands = letters.add_subparsers(dest="command", required=True)
    listing = letter_commands.add_parser(
        "list", help="one line per dead letter: where, origin, consumer, attempts, ce_id, ce_type, error",
        description="Reads every .dlq topic (or one) from the beginning. The event values hold patient data "
                    "and are never printed.")
    listing.add_argument("--topic", help="a topic or its .dlq companion (default: every .dlq topic)")
    listing.add_argument("--limit", type=_non_negative, help="only the N most recent dead letters")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    redriving = letter_commands.add_parser(
        "redrive", help="publish dead letters to their original topic again",
        description="Publishes the chosen dead letters, same key, value and CloudEvents headers, to the topic "
                    "they came from. Every consumer of that topic gets them again; consumers are idempotent "
                    "by event id, so one that processed the event already skips it, and one that refused it "
                    "processes it if it can now. Nothing records a redrive: running it twice publishes twice, "
                    "which the idempotent consumers make harmless. A dead letter stays on its .dlq topic.")
    redriving.add_argument("--topic", required=True, type=_dlq_topic,
                           help=f"the dead-letter topic, e.g. {dlq(ALL_TOPICS[0])}")
    chosen = redriving.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--offset", action="append", metavar="PARTITION/OFFSET",
                        help="a dead letter as `dead-letters list` names it (repeatable)")
    chosen.add_argument("--all", action="store_true", help="every dead letter on the topic")

    outbox = areas.add_parser("outbox", help="a service's outbox of events to publish")
    outbox_commands = outbox.add_subparsers(dest="command", required=True)
    status = outbox_commands.add_parser("status", help="events per status, oldest pending, parked events")
    status.add_argument("--service", required=True, choices=sorted(SETTINGS))
    replay = outbox_commands.add_parser(
        "replay", help="publish sent events of a time window again",
        description="Sets the sent outbox events created in [--since, --until) back to pending; the running "
                    "service's relay publishes them again and consumers skip those they have processed.")
    replay.add_argument("--service", required=True, choices=sorted(SETTINGS))
    replay.add_argument("--since", required=True, type=_aware_time, help="ISO 8601 with time zone, inclusive")
    replay.add_argument("--until", required=True, type=_aware_time, help="ISO 8601 with time zone, exclusive")
    replay.add_argument("--topic", choices=ALL_TOPICS, metavar="TOPIC", help="only events of this topic")
    return parser


def _dlq_topic(text: str) -> str:
    if text in DLQ_TOPICS:
        return text
    if text in ALL_TOPICS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a dead-letter topic; did you mean {dlq(text)}?")
    raise argparse.ArgumentTypeError(f"{text!r} is not one of the product's dead-letter topics")


def _non_negative(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of zero or more")
    return int(text)


async def _on_broker(run: Callable[[str], Awaitable[int]]) -> int:
    bootstrap = ServiceSettings().kafka_bootstrap
    try:
        return await run(bootstrap)
    except (KafkaError, OSError, TimeoutError) as exc:
        raise OpsError(f"the broker at {bootstrap} (REGIOZORG_KAFKA_BOOTSTRAP) did not answer: "
                       f"{_describe(exc)}") from exc


def _describe(exc: BaseException) -> str:
    """The exception's class and first line, once."""
    name, text = exc.__class__.__name__, (str(exc).splitlines() or [""])[0]
    return text if text.startswith(name) else f"{name}: {text}" if text else name


def _run(args: argparse.Namespace) -> int:
    if args.area == "migrate":
        return asyncio.run(migrate(args.service, revision=args.revision, downgrade=args.downgrade,
                                   show=args.current))
    if args.area == "revision":
        return new_revision(args.service, args.message)
    if args.area == "dead-letters" and args.command == "list":
        return asyncio.run(_on_broker(lambda bootstrap: list_dead_letters(
            bootstrap, topic=args.topic, limit=args.limit, as_json=args.json)))
    if args.area == "dead-letters":
        return asyncio.run(_on_broker(lambda bootstrap: redrive(
            bootstrap, topic=args.topic, offsets=None if args.all else args.offset)))
    if args.command == "status":
        return asyncio.run(outbox_status(args.service))
    if args.since >= args.until:
        raise UsageError("--since must be before --until")
    return asyncio.run(outbox_replay(args.service, since=args.since, until=args.until, topic=args.topic))


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # usage errors (2) and --help (0) as a status, so callers can test them
        return int(exit_.code or 0)
    # The client library narrates every failed connection attempt; the one-line error says what matters.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        return _run(args)
    except UsageError as exc:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    except OpsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
