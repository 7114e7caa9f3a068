"""The transactional outbox: append in the caller's transaction, drain to the broker.

Rows are never deleted: `published_at` marks what the relay has handed to the broker, and the
table stays the durable event log from which the read models can be rebuilt.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg

from shopcore import events
from shopcore.platform import jsonio

APPEND = "INSERT INTO outbox (topic, payload, created_at) VALUES (%s, %s::jsonb, %s)"

# An outbox row as the relay reads it (OutboxRow). The payload goes out as stored text: no
# parse/serialize round trip, money digits untouched. What the message's headers carry of the
# event is read from the jsonb by Postgres, so the relay never parses a payload.
ROW = """
id, topic, payload::text, created_at,
payload ->> 'eventId', payload ->> 'eventType', payload ->> 'occurredAt',
COALESCE(payload ->> 'orderId', payload ->> 'productId')
"""

# SKIP LOCKED lets several relays drain at once, each claiming a different batch.
CLAIM = f"""
SELECT {ROW}
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
    # the event's attributes its message's headers carry (shopcore/pipeline/publisher.py)
    event_id: str
    event_type: str
    occurred_at: str  # as the event writes it
    subject: str | None  # the id of what the event is about: its orderId, else its productId


class OutboxStore(Protocol):
    """The outbox as one relay connection sees it; holds at most one claimed batch at a time."""

    def claim(self, limit: int) -> list[OutboxRow]:
        """Lock up to `limit` unpublished rows, the lowest ids first, passing over rows another
        store holds; they stay held until `mark_published` or `release` (none: none held)."""

    def mark_published(self, ids: list[int]) -> None:
        """Mark the claimed rows `ids` published, durably, and let them go."""

    def release(self) -> None:
        """Let the claimed rows go unpublished: they are claimed again later. Never raises."""

    def has_pending(self) -> bool:
        """Whether any row is unpublished (held by another store or not)."""


class Publisher(Protocol):
    def send(self, rows: list[OutboxRow]) -> int:
        """Start publishing `rows` (handed to the broker, not yet confirmed); returns a ticket
        for `wait_confirmed`."""

    def wait_confirmed(self, ticket: int) -> None:
        """Return once the broker confirmed everything sent up to `ticket`; raise otherwise."""


class PostgresOutbox:
    """The outbox table through one autocommit connection: a claim is a transaction of its own,
    whose row locks (FOR UPDATE SKIP LOCKED) hold the batch until its commit or rollback."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def claim(self, limit: int) -> list[OutboxRow]:
        self.conn.execute("BEGIN")
        rows = [OutboxRow(*r) for r in self.conn.execute(CLAIM, (limit,)).fetchall()]
        if not rows:
            self.conn.execute("ROLLBACK")
        return rows

    def mark_published(self, ids: list[int]) -> None:
        self.conn.execute(MARK_PUBLISHED, (ids,))
        self.conn.execute("COMMIT")

    def release(self) -> None:
        with contextlib.suppress(psycopg.Error):
            self.conn.execute("ROLLBACK")

    def has_pending(self) -> bool:
        pending = self.conn.execute(HAS_PENDING).fetchone()
        return bool(pending and pending[0])


@dataclass
class DrainResult:
    published: int = 0
    batches: int = 0


@dataclass
class _Batch:
    store: OutboxStore  # holds the batch's rows until they are marked or released
    rows: list[OutboxRow]
    ticket: int


def _complete(batch: _Batch, publisher: Publisher) -> int:
    """Wait for the batch's confirms, then mark its rows published.

    A crash after the broker confirmed but before the rows are marked republishes the batch on
    the next run: delivery is at least once, and consumers dedupe by eventId.
    """
    publisher.wait_confirmed(batch.ticket)
    batch.store.mark_published([r.id for r in batch.rows])
    return len(batch.rows)


def _abandon(in_flight: deque[_Batch]) -> None:
    """Release what was claimed but not marked: those rows go out again next time."""
    while in_flight:
        in_flight.popleft().store.release()


def drain(
    stores: tuple[OutboxStore, OutboxStore],
    publisher: Publisher,
    batch_size: int,
    budget_seconds: float,
    watch: bool = False,
    stop: threading.Event | None = None,
    idle_sleep: float = 0.002,
    max_idle_sleep: float = 0.02,
) -> DrainResult:
    """Publish until the outbox is empty or the time budget is spent.

    Two batches are in flight at once, each held by its own store (in Postgres, a transaction
    on its own connection): while the broker stores and confirms one, the next is claimed
    (SKIP LOCKED passes over the rows the first holds) and published behind it on the same
    channel, so the queue still receives events in outbox order. Waiting for each batch's
    confirms before claiming the next left the relay idle for half its time (BENCHMARKS.md).

    With `watch`, an empty outbox does not end the invocation: it keeps polling until the
    budget, so new rows go out within milliseconds between scheduled invocations. Polling, not
    LISTEN/NOTIFY: a NOTIFY in the order transaction serializes commits (a large share of order
    throughput when measured, BENCHMARKS.md#outbox-polling) and LISTEN does not work behind a
    transaction-mode pooler. An idle poll is one cheap indexed query every 2-20 ms.
    """
    deadline = time.monotonic() + budget_seconds
    stop = stop or threading.Event()
    result = DrainResult()
    in_flight: deque[_Batch] = deque()
    turn = 0  # which store claims next: the one no batch in flight holds

    def complete_oldest() -> None:
        # still in flight while it completes: if that fails, it is released with the others
        result.published += _complete(in_flight[0], publisher)
        in_flight.popleft()
        result.batches += 1

    try:
        while time.monotonic() < deadline and not stop.is_set():
            store = stores[turn]
            rows = store.claim(batch_size)
            if rows:
                in_flight.append(_Batch(store, rows, publisher.send(rows)))
                turn = 1 - turn
            if in_flight and (len(in_flight) == len(stores) or not rows):
                complete_oldest()
            if rows or in_flight:
                continue
            if not watch:
                break
            _wait_for_rows(stores[0], stop, deadline, idle_sleep, max_idle_sleep)
        # out of time or asked to stop: what is in flight still completes
        while in_flight:
            complete_oldest()
    except BaseException:
        _abandon(in_flight)
        raise
    return result


def _wait_for_rows(
    store: OutboxStore,
    stop: threading.Event,
    deadline: float,
    idle_sleep: float,
    max_idle_sleep: float,
) -> None:
    sleep = idle_sleep
    while not stop.is_set() and time.monotonic() < deadline:
        stop.wait(min(sleep, max(0.0, deadline - time.monotonic())))
        if store.has_pending():
            return
        sleep = min(sleep * 2, max_idle_sleep)
