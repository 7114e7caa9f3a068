"""The read side's SQL: what the analytics function answers, straight from the read models."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from psycopg_pool import ConnectionPool

from shopcore import errors
from shopcore.platform import db, runtime
from shopcore.platform.config import settings

CENT = Decimal("0.01")

PRODUCT_SALES = """
SELECT total_quantity_sold, total_revenue, order_count
FROM product_sales_view WHERE product_id = %s
"""
CATEGORY_REVENUE = """
SELECT total_revenue, total_orders FROM category_metrics_view WHERE category_name = %s
"""
CUSTOMER_LTV = """
SELECT total_spent, order_count, last_order_date FROM customer_ltv_view WHERE customer_id = %s
"""
HOURLY_SALES = """
SELECT hour_timestamp, total_orders, total_revenue FROM hourly_sales_view
WHERE hour_timestamp >= %s AND hour_timestamp < %s
ORDER BY hour_timestamp
"""


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT)


def _one(sql: str, key: Any) -> tuple[Any, ...] | None:
    with db.analytics_pool().connection() as conn:
        return conn.execute(sql, (key,)).fetchone()


def product_sales(product_id: int) -> dict[str, Any]:
    row = _one(PRODUCT_SALES, product_id)
    if row is None:
        raise errors.NotFound(f"product {product_id} not found", productId=product_id)
    quantity, revenue, orders = row
    return {
        "productId": product_id,
        "totalQuantitySold": quantity,
        "totalRevenue": _money(revenue),
        "orderCount": orders,
    }


def category_revenue(category: str) -> dict[str, Any]:
    row = _one(CATEGORY_REVENUE, category)
    if row is None:
        raise errors.NotFound(f"category {category!r} not found", category=category)
    revenue, orders = row
    return {"category": category, "totalRevenue": _money(revenue), "totalOrders": orders}


def customer_lifetime_value(customer_id: int) -> dict[str, Any]:
    row = _one(CUSTOMER_LTV, customer_id)
    if row is None:
        raise errors.NotFound(f"customer {customer_id} not found", customerId=customer_id)
    spent, orders, last = row
    return {
        "customerId": customer_id,
        "totalSpent": _money(spent),
        "orderCount": orders,
        "lastOrderDate": last,
    }


def hourly_sales(start: datetime, end: datetime) -> dict[str, Any]:
    with db.analytics_pool().connection() as conn:
        rows = conn.execute(HOURLY_SALES, (start, end)).fetchall()
    return {
        "from": start,
        "to": end,
        "hours": [
            {"hour": hour, "totalOrders": orders, "totalRevenue": _money(revenue)}
            for hour, orders, revenue in rows
        ],
    }


# --- sync status -----------------------------------------------------------------------------

# How far below the newest projected outbox id to look for events projected out of order.
HOLE_WINDOW = 10_000


@dataclass(frozen=True)
class ProjectedWindow:
    """The read side's progress: the newest projected outbox id and the window below it."""

    last_processed: datetime | None  # when an event was last projected (None: never)
    newest: int  # the highest outbox id projected (0: none)
    low: int  # the window is the ids in (low, newest]
    projected: int  # how many ids of the window are projected


class ProjectedEvents(Protocol):
    """The read side's `processed_events`, as sync-status reads it."""

    def window(self, hole_window: int, known: int) -> ProjectedWindow:
        """The newest projected outbox id, and the window below it that may hold holes: down
        to `known` (every id up to it is known projected), but at most `hole_window` ids,
        and from 0 again when `known` is above the newest (the read side was emptied)."""

    def projected_ids(self, low: int, high: int) -> set[int]:
        """The outbox ids in (low, high] that are projected."""


class WrittenEvents(Protocol):
    """The write side's outbox, read only, as sync-status reads it."""

    def written_after(self, outbox_id: int) -> tuple[int, datetime | None]:
        """How many rows have an id above `outbox_id`, and the oldest one's time (or None)."""

    def count_between(self, low: int, high: int) -> int:
        """How many rows have an id in (low, high]."""

    def written_between(self, low: int, high: int) -> list[tuple[int, datetime]]:
        """The rows with an id in (low, high]: (id, time)."""


@dataclass(frozen=True)
class SyncStatus:
    last_processed: datetime | None
    lag_seconds: float
    pending: int
    # every outbox id up to this one is projected: the next `known`
    projected_through: int


def measure_sync(
    projected: ProjectedEvents,
    written: WrittenEvents,
    known: int = 0,
    now: datetime | None = None,
    hole_window: int = HOLE_WINDOW,
) -> SyncStatus:
    """How far the read models trail the write side.

    Unprojected events are the outbox rows past the newest projected one, plus any holes below
    it (events projected out of order) within `hole_window` ids; `known` is an outbox id up to
    which every id is known to be projected (from an earlier answer), so only the ids above it
    are counted. The lag is the age of the oldest unprojected event, 0 when there is none.
    """
    side = projected.window(hole_window, known)
    if known > side.newest:  # the read database was emptied and is being rebuilt
        known = 0
    # every id in (low, newest] projected: no holes, whatever the outbox holds there
    no_holes = side.projected == side.newest - side.low

    pending, oldest = written.written_after(side.newest)
    if not no_holes and written.count_between(side.low, side.newest) > side.projected:
        done = projected.projected_ids(side.low, side.newest)
        holes = [
            created
            for oid, created in written.written_between(side.low, side.newest)
            if oid not in done
        ]
        pending += len(holes)
        oldest = min([*holes, *([oldest] if oldest else [])], default=None)

    lag = 0.0
    if pending and oldest is not None:
        lag = max(0.0, ((now or datetime.now(UTC)) - oldest).total_seconds())
    return SyncStatus(side.last_processed, lag, pending, side.newest if no_holes else known)


# The read side in one round trip: the newest projected event, the window below it (from
# `known`, or HOLE_WINDOW ids down) and how many of its ids are projected.
READ_SIDE = """
WITH newest AS (
    SELECT max(processed_at) AS at, coalesce(max(outbox_id), 0) AS id FROM processed_events
), window_ AS (
    SELECT at, id AS high,
           greatest(0, id - %(hole_window)s, CASE WHEN %(known)s > id THEN 0 ELSE %(known)s END)
               AS low
    FROM newest
)
SELECT at, high, low,
       (SELECT count(*) FROM processed_events WHERE outbox_id > low AND outbox_id <= high)
FROM window_
"""
PROJECTED_IDS_IN_WINDOW = """
SELECT outbox_id FROM processed_events WHERE outbox_id > %s AND outbox_id <= %s
"""
WRITTEN_AFTER = "SELECT count(*), min(created_at) FROM outbox WHERE id > %s"
WRITTEN_IN_WINDOW = "SELECT count(*) FROM outbox WHERE id > %s AND id <= %s"
WRITTEN_IDS_IN_WINDOW = "SELECT id, created_at FROM outbox WHERE id > %s AND id <= %s"


class PostgresProjectedEvents:
    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    def window(self, hole_window: int, known: int) -> ProjectedWindow:
        with self.pool.connection() as conn:
            row = conn.execute(READ_SIDE, {"hole_window": hole_window, "known": known})
            return ProjectedWindow(*db.one(row.fetchone()))

    def projected_ids(self, low: int, high: int) -> set[int]:
        with self.pool.connection() as conn:
            return {r[0] for r in conn.execute(PROJECTED_IDS_IN_WINDOW, (low, high))}


class PostgresWrittenEvents:
    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    def written_after(self, outbox_id: int) -> tuple[int, datetime | None]:
        with self.pool.connection() as conn:
            count, oldest = db.one(conn.execute(WRITTEN_AFTER, (outbox_id,)).fetchone())
            return count, oldest

    def count_between(self, low: int, high: int) -> int:
        with self.pool.connection() as conn:
            count: int = db.one(conn.execute(WRITTEN_IN_WINDOW, (low, high)).fetchone())[0]
            return count

    def written_between(self, low: int, high: int) -> list[tuple[int, datetime]]:
        with self.pool.connection() as conn:
            return [(oid, at) for oid, at in conn.execute(WRITTEN_IDS_IN_WINDOW, (low, high))]


# Per read database: an outbox id up to which every id is known to be projected. Counting the
# window on every request was most of the Postgres time of a mixed analytics load
# (BENCHMARKS.md); once each id of a range is in processed_events the range can never hold a
# hole again (rows there are never deleted), so later requests count only above it.
PROJECTED_THROUGH = runtime.Part("sync-status: outbox ids known projected", dict[str, int])


def sync_status() -> dict[str, Any]:
    """sync-status: how far the analytics' read database trails the write side's outbox."""
    database = settings().analytics_database_url
    known = runtime.current().get(PROJECTED_THROUGH)
    status = measure_sync(
        PostgresProjectedEvents(db.analytics_pool()),
        PostgresWrittenEvents(db.analytics_outbox_pool()),
        known.get(database, 0),
    )
    known[database] = status.projected_through
    return {
        "lastProcessedEventTimestamp": status.last_processed,
        "lagSeconds": round(status.lag_seconds, 3),
        "pendingEvents": status.pending,
    }
