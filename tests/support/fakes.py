"""In-memory fakes of the pipeline's ports: the outbox, the broker and the read models.

Each behaves as its Postgres or RabbitMQ adapter does, as far as the code that takes the port
can tell; tests/contract runs one suite against both to keep it so. No fake opens a socket:
drain, projection and sync-status logic run on them with no service reachable.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeVar
from uuid import UUID

import pika
import psycopg.errors

from shopcore import events
from shopcore.pipeline.broker import QUEUES
from shopcore.pipeline.outbox import OutboxRow
from shopcore.pipeline.publisher import PublishFailed, event_properties
from shopcore.platform import jsonio
from shopcore.read.projections import Changes, Delivered
from shopcore.read.queries import ProjectedWindow

T = TypeVar("T")

MAX_BIGINT = 2**63 - 1
# numeric(14,2): after rounding to cents, at most 12 digits before the point
PRICE_LIMIT = Decimal(10) ** 12
CENT = Decimal("0.01")


# --- the outbox ---------------------------------------------------------------------------------


class InMemoryOutbox:
    """The outbox table: rows by id (never deleted), which are published, which are held.

    `session()` is what a relay connection is (an OutboxStore); the outbox itself answers
    sync-status's reads (a WrittenEvents)."""

    def __init__(self) -> None:
        self._rows: dict[int, OutboxRow] = {}
        self._published: set[int] = set()
        self._held: dict[int, InMemoryOutboxSession] = {}
        self._lock = threading.Lock()

    def append(self, event: dict[str, Any], topic: str | None = None) -> int:
        """As outbox.append (the topic is the event type's, unless given); the new row's id."""
        payload = jsonio.dumps(event)
        subject = event.get("orderId", event.get("productId"))
        with self._lock:
            row_id = len(self._rows) + 1
            self._rows[row_id] = OutboxRow(
                id=row_id,
                topic=topic or events.TOPICS[event["eventType"]],
                payload=payload,
                created_at=jsonio.parse_iso(event["occurredAt"]),
                event_id=event["eventId"],
                event_type=event["eventType"],
                occurred_at=event["occurredAt"],
                subject=None if subject is None else str(subject),
            )
        return row_id

    def session(self) -> InMemoryOutboxSession:
        return InMemoryOutboxSession(self)

    def unpublished(self) -> list[int]:
        with self._lock:
            return [i for i in sorted(self._rows) if i not in self._published]

    # WrittenEvents
    def written_after(self, outbox_id: int) -> tuple[int, datetime | None]:
        with self._lock:
            times = [r.created_at for i, r in self._rows.items() if i > outbox_id]
        return len(times), min(times, default=None)

    def count_between(self, low: int, high: int) -> int:
        return len(self.written_between(low, high))

    def written_between(self, low: int, high: int) -> list[tuple[int, datetime]]:
        with self._lock:
            return [(i, r.created_at) for i, r in sorted(self._rows.items()) if low < i <= high]


class InMemoryOutboxSession:
    """One relay connection's view (an OutboxStore): holds at most one claimed batch."""

    def __init__(self, outbox: InMemoryOutbox) -> None:
        self.outbox = outbox

    def claim(self, limit: int) -> list[OutboxRow]:
        o = self.outbox
        with o._lock:
            if self in o._held.values():
                raise RuntimeError("this store already holds a batch")
            free = [i for i in sorted(o._rows) if i not in o._published and i not in o._held]
            for row_id in free[:limit]:
                o._held[row_id] = self
            return [o._rows[i] for i in free[:limit]]

    def mark_published(self, ids: list[int]) -> None:
        with self.outbox._lock:
            self.outbox._published.update(ids)
            self._let_go()

    def release(self) -> None:
        with self.outbox._lock:
            self._let_go()

    def has_pending(self) -> bool:
        o = self.outbox
        with o._lock:
            return any(i not in o._published for i in o._rows)

    def _let_go(self) -> None:
        held = self.outbox._held
        for row_id in [i for i, holder in held.items() if holder is self]:
            del held[row_id]


# --- the broker ---------------------------------------------------------------------------------


class InMemoryBroker:
    """The `events` exchange and its queues: a message goes to the queue its topic names."""

    def __init__(self, queues: tuple[str, ...] = QUEUES) -> None:
        self.queues: dict[str, list[tuple[pika.BasicProperties, bytes]]] = {q: [] for q in queues}
        self._lock = threading.Lock()

    def take(self, queue: str) -> list[tuple[pika.BasicProperties, bytes]]:
        """Every message in `queue`, removed (as tests.support.functions.drain_queue)."""
        with self._lock:
            taken, self.queues[queue] = self.queues[queue], []
        return taken

    def publisher(self) -> InMemoryPublisher:
        return InMemoryPublisher(self)


class InMemoryPublisher:
    """WindowedPublisher as drain sees it (a Publisher): a message no queue takes (its topic is
    bound to none) is returned, and the next `wait_confirmed` raises PublishFailed."""

    def __init__(self, broker: InMemoryBroker) -> None:
        self.broker = broker
        self._sent = 0
        self._failed: list[str] = []

    def send(self, rows: list[OutboxRow]) -> int:
        for row in rows:
            self._sent += 1
            with self.broker._lock:
                queue = self.broker.queues.get(row.topic)
                if queue is None:
                    self._failed.append(f"unroutable: {row.event_id}")
                else:
                    queue.append((event_properties(row), row.payload.encode()))
        return self._sent

    def wait_confirmed(self, ticket: int) -> None:
        if ticket > self._sent:
            raise ValueError(f"ticket {ticket} was never handed out")
        if self._failed:
            failed, self._failed = self._failed, []
            raise PublishFailed("; ".join(failed[:5]))


# --- the read models ----------------------------------------------------------------------------


@dataclass
class Processed:
    event_type: str
    outbox_id: int | None
    occurred_at: datetime
    processed_at: datetime


@dataclass
class Tables:
    """The read database's rows, keyed as their primary keys are."""

    processed: dict[UUID, Processed] = field(default_factory=dict)
    # product_id -> (name, category, price, created_at)
    catalog: dict[int, tuple[str, str, Decimal, datetime]] = field(default_factory=dict)
    # product_id -> (total_quantity_sold, total_revenue, order_count)
    product_sales: dict[int, tuple[int, Decimal, int]] = field(default_factory=dict)
    # category -> (total_revenue, total_orders)
    category_metrics: dict[str, tuple[Decimal, int]] = field(default_factory=dict)
    # customer_id -> (total_spent, order_count, last_order_date)
    customer_ltv: dict[int, tuple[Decimal, int, datetime | None]] = field(default_factory=dict)
    # hour -> (total_orders, total_revenue)
    hourly_sales: dict[datetime, tuple[int, Decimal]] = field(default_factory=dict)
    # outbox_id -> reason: events parked in the dead-letter queue
    parked: dict[int, str] = field(default_factory=dict)


def _bigint(value: int) -> int:
    if not -MAX_BIGINT - 1 <= value <= MAX_BIGINT:
        raise psycopg.errors.NumericValueOutOfRange("bigint out of range")
    return value


def _price(value: Decimal) -> Decimal:
    """As a numeric(14,2) column stores it: rounded to cents, below 10^12."""
    rounded = value.quantize(CENT, rounding=ROUND_HALF_UP) if abs(value) < PRICE_LIMIT else value
    if abs(rounded) >= PRICE_LIMIT:
        raise psycopg.errors.NumericValueOutOfRange("numeric field overflow")
    return rounded


class InMemoryTransaction:
    """ReadModels on a draft of the tables: what one transaction of the projector changes."""

    def __init__(self, draft: Tables, now: datetime) -> None:
        self.draft = draft
        self.now = now  # Postgres' now(): the transaction's start

    def record_processed(self, batch: list[Delivered]) -> set[UUID]:
        new: set[UUID] = set()
        for event, outbox_id in batch:
            if event.event_id not in self.draft.processed:
                self.draft.processed[event.event_id] = Processed(
                    type(event).__name__, outbox_id, event.occurred_at, self.now
                )
                new.add(event.event_id)
        return new

    def add(self, changes: Changes) -> None:
        t = self.draft
        for product_id, p in changes.catalog.items():
            if product_id not in t.catalog:
                t.catalog[product_id] = (p.name, p.category, _price(p.price), p.occurred_at)
        for product_id, s in changes.products.items():
            quantity, revenue, orders = t.product_sales.get(product_id, (0, Decimal(0), 0))
            t.product_sales[product_id] = (
                _bigint(quantity + s.quantity),
                revenue + s.revenue,
                _bigint(orders + s.orders),
            )
        for category, s in changes.categories.items():
            revenue, orders = t.category_metrics.get(category, (Decimal(0), 0))
            t.category_metrics[category] = (revenue + s.revenue, _bigint(orders + s.orders))
        for customer_id, c in changes.customers.items():
            spent, orders, last = t.customer_ltv.get(customer_id, (Decimal(0), 0, None))
            # GREATEST ignores NULLs
            latest = max((d for d in (last, c.last_order) if d is not None), default=None)
            t.customer_ltv[customer_id] = (spent + c.spent, _bigint(orders + c.orders), latest)
        for hour, s in changes.hours.items():
            orders, revenue = t.hourly_sales.get(hour, (0, Decimal(0)))
            t.hourly_sales[hour] = (_bigint(orders + s.orders), revenue + s.revenue)


class InMemoryReadModels:
    """The read database: a ReadModelStore for the projector and ProjectedEvents for
    sync-status. A transaction works on a copy of the tables, which replaces them only when it
    returns; transactions run one at a time."""

    def __init__(self) -> None:
        self.tables = Tables()
        self._lock = threading.RLock()

    def transaction(self, work: Callable[[InMemoryTransaction], T]) -> T:
        with self._lock:
            draft = copy.deepcopy(self.tables)
            result = work(InMemoryTransaction(draft, datetime.now(UTC)))
            self.tables = draft
            return result

    def record_parked(self, parked: list[tuple[int, str]]) -> None:
        with self._lock:
            for outbox_id, reason in parked:
                self.tables.parked.setdefault(outbox_id, reason)

    # ProjectedEvents
    def window(self, hole_window: int, known: int) -> ProjectedWindow:
        with self._lock:
            rows = list(self.tables.processed.values())
        ids = [r.outbox_id for r in rows if r.outbox_id is not None]
        newest = max(ids, default=0)
        low = max(0, newest - hole_window, 0 if known > newest else known)
        return ProjectedWindow(
            last_processed=max((r.processed_at for r in rows), default=None),
            newest=newest,
            low=low,
            projected=sum(1 for i in ids if low < i <= newest),
        )

    def projected_ids(self, low: int, high: int) -> set[int]:
        with self._lock:
            rows = list(self.tables.processed.values())
        return {r.outbox_id for r in rows if r.outbox_id is not None and low < r.outbox_id <= high}
