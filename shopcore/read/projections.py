"""How events change the read models.

`summarize` is the arithmetic (pure, unit-tested); `apply_events` writes it through a
`ReadModels` (Postgres: `PostgresReadModels`, in the projector's transaction). Every change is
commutative (sums, GREATEST, insert-if-absent), so any order of delivery and any number of
concurrent projectors give the same totals; `processed_events` makes a redelivered event a
no-op.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Protocol, TypeVar
from uuid import UUID

import psycopg
from psycopg_pool import ConnectionPool

from shopcore.events import Event, OrderCreated, ProductCreated
from shopcore.platform import db

T = TypeVar("T")

ZERO = Decimal("0")


@dataclass
class Sales:
    quantity: int = 0
    revenue: Decimal = ZERO
    orders: int = 0


@dataclass
class Spend:
    spent: Decimal = ZERO
    orders: int = 0
    last_order: datetime | None = None


@dataclass
class Changes:
    """What a set of events adds to each read model."""

    catalog: dict[int, ProductCreated] = field(default_factory=dict)
    products: dict[int, Sales] = field(default_factory=lambda: defaultdict(Sales))
    categories: dict[str, Sales] = field(default_factory=lambda: defaultdict(Sales))
    customers: dict[int, Spend] = field(default_factory=lambda: defaultdict(Spend))
    hours: dict[datetime, Sales] = field(default_factory=lambda: defaultdict(Sales))


def hour_of(moment: datetime) -> datetime:
    """The UTC hour `moment` falls in (an offset like +05:30 must not shift the bucket)."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def summarize(events: list[Event]) -> Changes:
    changes = Changes()
    for event in events:
        if isinstance(event, ProductCreated):
            changes.catalog.setdefault(event.product_id, event)
            changes.products[event.product_id]
            changes.categories[event.category]
        elif isinstance(event, OrderCreated):
            _add_order(changes, event)
    return changes


def _add_order(changes: Changes, order: OrderCreated) -> None:
    # An order counts once per product and once per category, however many lines it has there.
    for product_id in {line.product_id for line in order.items}:
        changes.products[product_id].orders += 1
    for category in {line.category for line in order.items}:
        changes.categories[category].orders += 1
    for line in order.items:
        changes.products[line.product_id].quantity += line.quantity
        changes.products[line.product_id].revenue += line.revenue
        changes.categories[line.category].revenue += line.revenue

    customer = changes.customers[order.customer_id]
    customer.spent += order.total
    customer.orders += 1
    if customer.last_order is None or order.occurred_at > customer.last_order:
        customer.last_order = order.occurred_at

    hour = changes.hours[hour_of(order.occurred_at)]
    hour.orders += 1
    hour.revenue += order.total


# --- writing ---------------------------------------------------------------------------------

# An event with the outbox id the relay sent it with (None when it came without one).
Delivered = tuple[Event, int | None]


class ReadModels(Protocol):
    """The read models inside one transaction of the projector."""

    def record_processed(self, batch: list[Delivered]) -> set[UUID]:
        """Record each event (distinct ids) as processed, with its outbox id and the time;
        return the ids that were not recorded before."""

    def add(self, changes: Changes) -> None:
        """Add `changes` to the read models. Raises psycopg.DataError for a value a read
        model cannot hold (a price above numeric(14,2), a count above bigint)."""


class ReadModelStore(Protocol):
    def transaction(self, work: Callable[[ReadModels], T]) -> T:
        """Run `work` in one transaction: all of its changes, or on an exception none."""

    def record_parked(self, parked: list[tuple[int, str]]) -> None:
        """Record (outbox id, reason) of events about to be parked in the dead-letter queue,
        so they do not hold back the consistency tokens of later writes."""


def apply_events(models: ReadModels, batch: list[Delivered]) -> int:
    """Apply (event, outbox id) pairs not applied before, in the caller's transaction.

    Returns how many were new. Duplicates, in the batch or from earlier batches, change nothing.
    """
    unique: dict[UUID, Delivered] = {}
    for event, outbox_id in batch:
        unique.setdefault(event.event_id, (event, outbox_id))
    if not unique:
        return 0
    new_ids = models.record_processed(list(unique.values()))
    fresh = [event for event, _ in unique.values() if event.event_id in new_ids]
    if fresh:
        models.add(summarize(fresh))
    return len(fresh)


# Arrays go in binary (%b) except numeric ones (%s): psycopg's text dumping of uuid and
# timestamptz arrays costs several times the binary, and numeric is the one type cheaper as
# text (BENCHMARKS.md#binary-arrays).

CLAIM_EVENTS = """
INSERT INTO processed_events (event_id, event_type, outbox_id, occurred_at)
SELECT * FROM unnest(%b::uuid[], %b::text[], %b::bigint[], %b::timestamptz[]) ORDER BY 1
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id
"""

# Rows are upserted in key order so two projectors touching the same rows cannot deadlock.
UPSERT_CATALOG = """
INSERT INTO product_catalog (product_id, name, category, price, created_at)
SELECT * FROM unnest(%b::bigint[], %b::text[], %b::text[], %s::numeric[], %b::timestamptz[])
ORDER BY 1
ON CONFLICT (product_id) DO NOTHING
"""
UPSERT_PRODUCT_SALES = """
INSERT INTO product_sales_view AS v (product_id, total_quantity_sold, total_revenue, order_count)
SELECT * FROM unnest(%b::bigint[], %b::bigint[], %s::numeric[], %b::bigint[]) ORDER BY 1
ON CONFLICT (product_id) DO UPDATE SET
    total_quantity_sold = v.total_quantity_sold + EXCLUDED.total_quantity_sold,
    total_revenue = v.total_revenue + EXCLUDED.total_revenue,
    order_count = v.order_count + EXCLUDED.order_count
"""
UPSERT_CATEGORY_METRICS = """
INSERT INTO category_metrics_view AS v (category_name, total_revenue, total_orders)
SELECT * FROM unnest(%b::text[], %s::numeric[], %b::bigint[]) ORDER BY 1
ON CONFLICT (category_name) DO UPDATE SET
    total_revenue = v.total_revenue + EXCLUDED.total_revenue,
    total_orders = v.total_orders + EXCLUDED.total_orders
"""
UPSERT_CUSTOMER_LTV = """
INSERT INTO customer_ltv_view AS v (customer_id, total_spent, order_count, last_order_date)
SELECT * FROM unnest(%b::bigint[], %s::numeric[], %b::bigint[], %b::timestamptz[]) ORDER BY 1
ON CONFLICT (customer_id) DO UPDATE SET
    total_spent = v.total_spent + EXCLUDED.total_spent,
    order_count = v.order_count + EXCLUDED.order_count,
    last_order_date = GREATEST(v.last_order_date, EXCLUDED.last_order_date)
"""
UPSERT_HOURLY_SALES = """
INSERT INTO hourly_sales_view AS v (hour_timestamp, total_orders, total_revenue)
SELECT * FROM unnest(%b::timestamptz[], %b::bigint[], %s::numeric[]) ORDER BY 1
ON CONFLICT (hour_timestamp) DO UPDATE SET
    total_orders = v.total_orders + EXCLUDED.total_orders,
    total_revenue = v.total_revenue + EXCLUDED.total_revenue
"""


# At commit, Postgres tells the query processes waiting on consistency tokens
# (shopcore/read/consistency.py) the range of outbox ids the transaction projected: each wakes
# only the readers whose id is in it, with one query for all of them.
PROJECTED_CHANNEL = "shop_projected"
ANNOUNCE = "SELECT pg_notify(%s, %s)"


class PostgresReadModels:
    """The read database's tables, in the transaction open on `conn`."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self.announced: str | None = None  # "low high": the outbox ids newly recorded

    def record_processed(self, batch: list[Delivered]) -> set[UUID]:
        rows = self.conn.execute(
            CLAIM_EVENTS,
            (
                [e.event_id for e, _ in batch],
                [type(e).__name__ for e, _ in batch],
                [oid for _, oid in batch],
                [e.occurred_at for e, _ in batch],
            ),
        ).fetchall()
        new = {row[0] for row in rows}
        outbox_ids = [oid for e, oid in batch if oid is not None and e.event_id in new]
        if outbox_ids:
            self.announced = f"{min(outbox_ids)} {max(outbox_ids)}"
        return new

    def add(self, changes: Changes) -> None:
        conn, c = self.conn, changes
        with conn.pipeline():
            if self.announced is not None:
                conn.execute(ANNOUNCE, (PROJECTED_CHANNEL, self.announced))
            if c.catalog:
                ps = list(c.catalog.values())
                conn.execute(
                    UPSERT_CATALOG,
                    (
                        [p.product_id for p in ps],
                        [p.name for p in ps],
                        [p.category for p in ps],
                        [p.price for p in ps],
                        [p.occurred_at for p in ps],
                    ),
                )
            if c.products:
                keys = list(c.products)
                conn.execute(
                    UPSERT_PRODUCT_SALES,
                    (
                        keys,
                        [c.products[k].quantity for k in keys],
                        [c.products[k].revenue for k in keys],
                        [c.products[k].orders for k in keys],
                    ),
                )
            if c.categories:
                names = list(c.categories)
                conn.execute(
                    UPSERT_CATEGORY_METRICS,
                    (
                        names,
                        [c.categories[k].revenue for k in names],
                        [c.categories[k].orders for k in names],
                    ),
                )
            if c.customers:
                keys = list(c.customers)
                conn.execute(
                    UPSERT_CUSTOMER_LTV,
                    (
                        keys,
                        [c.customers[k].spent for k in keys],
                        [c.customers[k].orders for k in keys],
                        [c.customers[k].last_order for k in keys],
                    ),
                )
            if c.hours:
                hours = list(c.hours)
                conn.execute(
                    UPSERT_HOURLY_SALES,
                    (
                        hours,
                        [c.hours[h].orders for h in hours],
                        [c.hours[h].revenue for h in hours],
                    ),
                )


RECORD_PARKED = """
INSERT INTO parked_events (outbox_id, reason)
SELECT * FROM unnest(%b::bigint[], %b::text[]) ORDER BY 1
ON CONFLICT (outbox_id) DO NOTHING
"""


class PostgresReadModelStore:
    """The read database through `pool` (the projector's)."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    def transaction(self, work: Callable[[ReadModels], T]) -> T:
        return db.run_in_transaction(self.pool, lambda uow: work(PostgresReadModels(uow.conn)))

    def record_parked(self, parked: list[tuple[int, str]]) -> None:
        rows = sorted(dict(parked).items())
        ids = [oid for oid, _ in rows]

        def record(uow: db.UnitOfWork) -> None:
            uow.conn.execute(RECORD_PARKED, (ids, [why[:500] for _, why in rows]))
            # readers waiting above a parked event need not wait for the next recheck
            uow.conn.execute(ANNOUNCE, (PROJECTED_CHANNEL, f"{ids[0]} {ids[-1]}"))

        db.run_in_transaction(self.pool, record)
