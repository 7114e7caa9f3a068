"""The transactional outbox: append in the caller's transaction, drain to the broker.

Rows are never deleted: `published_at` marks what the relay has handed to the broker, and the
table stays the durable event log from which the read models can be rebuilt.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg

from shopcore import events, jsonio

APPEND = "INSERT INTO outbox (topic, payload, created_at) VALUES (%s, %s::jsonb, %s)"

# SKIP LOCKED lets several relays drain at once, each claiming a different batch. The payload
# goes out as stored text: no parse/serialize round trip, money digits untouched.
CLAIM = """
SELECT id, topic, payload::text, created_at
FROM outbox
WHERE published_at IS NULL
ORDER BY id
LIMIT %s
FOR UPDATE SKIP LOCKED
"""

MARK_PUBLISHED = "UPDATE outbox SET published_at = now() WHERE id = ANY(%s)"

HAS_PENDING = "SELECT EXISTS (SELECT 1 FROM outbox WHERE published_at IS NULL)"


def append(conn: psycopg.Connection, event: dict[str, Any]) -> None:
    """Queue `event` for publication, inside the transaction that changed the state."""
    topic = events.TOPICS[event["eventType"]]
    conn.execute(APPEND, (topic, jsonio.dumps(event), jsonio.parse_iso(event["occurredAt"])))


@dataclass(frozen=True)
class OutboxRow:
    id: int
    topic: str
    payload: str
    created_at: Any


class Publisher(Protocol):
    def publish_batch(self, rows: list[OutboxRow]) -> None:
        """Publish every row and return once the broker confirmed all; raise otherwise."""


@dataclass
class DrainResult:
    published: int = 0
    batches: int = 0


def publish_one_batch(conn: psycopg.Connection, publisher: Publisher, batch_size: int) -> int:
    """Claim, publish (confirmed), mark published, commit. Returns how many went out.

    A crash after the broker confirmed but before the commit republishes the batch on the next
    run: delivery is at least once, and consumers dedupe by eventId.
    """
    with conn.transaction():
        rows = [OutboxRow(*r) for r in conn.execute(CLAIM, (batch_size,)).fetchall()]
        if rows:
            publisher.publish_batch(rows)
            conn.execute(MARK_PUBLISHED, ([r.id for r in rows],))
    return len(rows)


def drain(
    conn: psycopg.Connection,
    publisher: Publisher,
    batch_size: int,
    budget_seconds: float,
    watch: bool = False,
    stop: threading.Event | None = None,
    idle_sleep: float = 0.002,
    max_idle_sleep: float = 0.02,
) -> DrainResult:
    """Publish until the outbox is empty or the time budget is spent.

    With `watch`, an empty outbox does not end the invocation: it keeps polling until the
    budget, so new rows go out within milliseconds between scheduled invocations. Polling, not
    LISTEN/NOTIFY: a NOTIFY in the order transaction serializes commits (it cost about 30 % of
    order throughput when measured, BENCHMARKS.md) and LISTEN does not work behind a
    transaction-mode pooler. An idle poll is one cheap indexed query every 2-20 ms.
    """
    deadline = time.monotonic() + budget_seconds
    stop = stop or threading.Event()
    result = DrainResult()
    sleep = idle_sleep
    while time.monotonic() < deadline and not stop.is_set():
        sent = publish_one_batch(conn, publisher, batch_size)
        if sent:
            result.published += sent
            result.batches += 1
            continue
        if not watch:
            break
        sleep = idle_sleep
        while not stop.is_set() and time.monotonic() < deadline:
            stop.wait(min(sleep, max(0.0, deadline - time.monotonic())))
            if conn.execute(HAS_PENDING).fetchone()[0]:
                break
            sleep = min(sleep * 2, max_idle_sleep)
    return result
