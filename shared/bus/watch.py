"""Watches the broker's identity: creates topics and notices when the broker lost its data.

The embedded broker keeps everything in memory, so after a restart topics, records and
committed offsets are gone while clients reconnect as if nothing happened. An epoch
marker (the record at offset 0 of a dedicated topic) tells incarnations apart; when it
changes, listeners re-publish the outbox and rewind consumers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from shared import metrics
from shared.bus.topics import BROKER_EPOCH, every_topic
from shared.tasks import cancelled

log = logging.getLogger(__name__)

EpochListener = Callable[[str], Awaitable[None]]


class BrokerWatch:
    def __init__(self, bootstrap: str, *, partitions: int = 4, interval: float = 1.0,
                 topics: list[str] | None = None, service: str = "service") -> None:
        self.bootstrap = bootstrap
        self.service = service
        self.partitions = partitions
        self.interval = interval
        self.topics = topics if topics is not None else every_topic()
        self.epoch: str | None = None
        self.healthy = False
        self._listeners: list[EpochListener] = []
        self._admin: AIOKafkaAdminClient | None = None
        self._reader: AIOKafkaConsumer | None = None
        self._writer: AIOKafkaProducer | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._changed = asyncio.Event()

    def on_new_epoch(self, listener: EpochListener) -> None:
        self._listeners.append(listener)

    async def start(self) -> None:
        try:
            await self._connect()
        except Exception:
            await self.stop()
            raise
        self._task = asyncio.create_task(self._run(), name="broker-watch")

    async def _connect(self) -> None:
        self._admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=5000)
        await self._admin.start()
        self._writer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all",
                                        enable_idempotence=False, request_timeout_ms=5000)
        await self._writer.start()
        self._reader = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None,
                                        enable_auto_commit=False, request_timeout_ms=5000)
        await self._reader.start()
        await self.check()

    async def stop(self) -> None:
        await cancelled(self._task)
        if self._admin is not None:
            await self._admin.close()
        for client in (self._reader, self._writer):
            if client is not None:
                await client.stop()
        self._admin = self._reader = self._writer = None

    def poke(self) -> None:
        """Check now instead of after the interval (a send just failed: the broker may be new)."""
        self._changed.set()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), self.interval)
            self._changed.clear()
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker may be down; keep checking
                self.healthy = False
                log.warning("broker check failed: %s", exc.__class__.__name__)

    async def check(self) -> str:
        async with self._lock:
            await self._ensure_topics()
            epoch = await self._read_epoch()
            if epoch is None:
                assert self._writer is not None
                await self._writer.send_and_wait(BROKER_EPOCH, uuid.uuid4().hex.encode(), partition=0)
                epoch = await self._read_epoch()
            if epoch is None:
                raise RuntimeError("broker epoch marker could not be read back")
            previous, self.epoch = self.epoch, epoch
            self.healthy = True
        if previous is not None and previous != epoch:
            metrics.BROKER_RESETS.labels(self.service).inc()
            log.warning("broker lost its data (new epoch %s); recovering", epoch[:8])
        if previous != epoch:
            for listener in self._listeners:
                await listener(epoch)
        return epoch

    async def group_offsets(self, group: str, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        """{partition: next offset} of those of `partitions` a consumer group has committed an offset for ({} for a
        group that never committed). The partitions are named: the embedded broker garbles the answer to "all of
        them". Raises the client's error when the broker cannot answer."""
        if self._admin is None:
            raise RuntimeError("the broker watch is not started")
        if not partitions:
            return {}
        async with self._lock:
            offsets = await self._admin.list_consumer_group_offsets(group, partitions=partitions)
        return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}

    async def _ensure_topics(self) -> None:
        assert self._admin is not None
        existing = set(await self._admin.list_topics())
        missing = [t for t in self.topics if t not in existing]
        new = [NewTopic(t, self.partitions, 1) for t in missing]
        if BROKER_EPOCH not in existing:
            new.append(NewTopic(BROKER_EPOCH, 1, 1, topic_configs={"retention.ms": "-1"}))
        if not new:
            return
        try:
            response = await self._admin.create_topics(new)
        except TopicAlreadyExistsError:
            return
        for name, code, *_ in getattr(response, "topic_errors", ()):
            if code not in (0, TopicAlreadyExistsError.errno):
                raise RuntimeError(f"creating topic {name} failed with error code {code}")

    async def _read_epoch(self) -> str | None:
        assert self._reader is not None
        tp = TopicPartition(BROKER_EPOCH, 0)
        if self._reader.assignment() != {tp}:
            self._reader.assign([tp])
        self._reader.seek(tp, 0)
        records = await self._reader.getmany(tp, timeout_ms=1500, max_records=1)
        for record in records.get(tp, []):
            if record.offset == 0 and record.value:
                return record.value.decode()
        return None
