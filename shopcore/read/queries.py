"""The read side's SQL: what the analytics function answers, straight from the read models."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

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

# Per read database: an outbox id up to which every id is known to be projected. Counting the
# window on every request was most of the Postgres time of a mixed analytics load
# (BENCHMARKS.md); once each id of a range is in processed_events the range can never hold a
# hole again (rows there are never deleted), so later requests count only above it.
PROJECTED_THROUGH = runtime.Part("sync-status: outbox ids known projected", dict[str, int])


def sync_status() -> dict[str, Any]:
    """How far the read models trail the write side.

    Unprojected events are the outbox rows past the newest projected one, plus any holes below
    it (events projected out of order) within HOLE_WINDOW ids. `lagSeconds` is the age of the
    oldest of them, 0 when there are none.
    """
    database = settings().analytics_database_url
    projected_through = runtime.current().get(PROJECTED_THROUGH)
    known = projected_through.get(database, 0)
    with db.analytics_pool().connection() as read:
        last_processed, newest, low, projected_in_window = db.one(
            read.execute(READ_SIDE, {"hole_window": HOLE_WINDOW, "known": known}).fetchone()
        )
    if known > newest:  # the read database was emptied and is being rebuilt
        known = 0
    # every id in (low, newest] projected: no holes, whatever the outbox holds there
    no_holes = projected_in_window == newest - low
    projected_through[database] = newest if no_holes else known

    with db.analytics_outbox_pool().connection() as write:
        pending, oldest = db.one(write.execute(WRITTEN_AFTER, (newest,)).fetchone())
        written_in_window = (
            0 if no_holes else db.one(write.execute(WRITTEN_IN_WINDOW, (low, newest)).fetchone())[0]
        )
        if written_in_window > projected_in_window:
            written = write.execute(WRITTEN_IDS_IN_WINDOW, (low, newest)).fetchall()
            with db.analytics_pool().connection() as read:
                done = {r[0] for r in read.execute(PROJECTED_IDS_IN_WINDOW, (low, newest))}
            holes = [created for oid, created in written if oid not in done]
            pending += len(holes)
            oldest = min([*holes, *([oldest] if oldest else [])], default=None)

    lag = 0.0
    if pending and oldest is not None:
        lag = max(0.0, (datetime.now(UTC) - oldest).total_seconds())
    return {
        "lastProcessedEventTimestamp": last_processed,
        "lagSeconds": round(lag, 3),
        "pendingEvents": pending,
    }
