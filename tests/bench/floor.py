"""The floor: what the bare parts do on this machine, measured in the same run as the system.

- validation: `fhir.resources` (R4B) validating the same referral Bundle, one core, nothing else;
- produce: an aiokafka producer configured as the outbox relay (acks=all, no idempotence) sending
  records of the size of a referral-received event to the same broker;
- insert: one row of the Bundle's size per transaction into the same database, committed each time,
  with as many connections as the intake uses.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from fhir.resources.R4B.bundle import Bundle

from shared.bus.envelope import Event


def validate_rps(bundle: dict[str, Any], seconds: float = 2.0, repeats: int = 3) -> float:
    """Bundles per second that `Bundle.model_validate_json` accepts, from the same bytes the API receives.

    The best of a few short runs: this shared machine's speed varies by a quarter from run to run,
    and the floor is what the part can do.
    """
    raw = json.dumps(bundle).encode()
    Bundle.model_validate_json(raw)  # warm up: pydantic builds its validators lazily
    rates = []
    for _ in range(repeats):
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            Bundle.model_validate_json(raw)
            count += 1
        rates.append(count / (time.perf_counter() - started))
    return max(rates)


async def produce_rps(bootstrap: str, payload: bytes, count: int = 20000) -> float:
    topic = f"regiozorg.bench.floor-{uuid.uuid4().hex[:8]}.v1"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False, linger_ms=2,
                                max_batch_size=1 << 20)
    await producer.start()
    try:
        event = Event(topic=topic, key="k", source="/regiozorg/bench", subject="bench", data=payload)
        headers = event.headers()
        await (await producer.send(topic, value=payload, key=b"warm", headers=headers))
        started = time.perf_counter()
        futures = [await producer.send(topic, value=payload, key=uuid.uuid4().hex.encode(), headers=headers)
                   for _ in range(count)]
        await asyncio.gather(*futures)
        return count / (time.perf_counter() - started)
    finally:
        await producer.stop()


async def insert_rps_postgres(url: str, payload: bytes, seconds: float = 3.0, connections: int = 16) -> float:
    """Single-row transactions, committed one by one, over `connections` concurrent connections."""
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    table = f"bench_floor_{uuid.uuid4().hex[:8]}"
    pool = await asyncpg.create_pool(dsn, min_size=connections, max_size=connections)
    try:
        await pool.execute(f"CREATE TABLE {table} (id text PRIMARY KEY, body bytea NOT NULL)")
        count = 0
        deadline = time.perf_counter() + seconds

        async def writer() -> None:
            nonlocal count
            async with pool.acquire() as conn:
                while time.perf_counter() < deadline:
                    await conn.execute(f"INSERT INTO {table} VALUES ($1, $2)", uuid.uuid4().hex, payload)
                    count += 1

        started = time.perf_counter()
        await asyncio.gather(*(writer() for _ in range(connections)))
        rate = count / (time.perf_counter() - started)
        await pool.execute(f"DROP TABLE {table}")
        return rate
    finally:
        await pool.close()


def insert_rps_sqlite(directory: Path, payload: bytes, seconds: float = 3.0) -> float:
    """With the pragmas the services use (WAL, synchronous=NORMAL), one transaction per row."""
    fd, name = tempfile.mkstemp(suffix=".db", dir=directory)
    os.close(fd)
    try:
        conn = sqlite3.connect(name, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("CREATE TABLE floor (id TEXT PRIMARY KEY, body BLOB NOT NULL)")
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO floor VALUES (?, ?)", (uuid.uuid4().hex, payload))
            conn.execute("COMMIT")
            count += 1
        rate = count / (time.perf_counter() - started)
        conn.close()
        return rate
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(name + suffix).unlink(missing_ok=True)
