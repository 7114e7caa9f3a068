"""The oracle: recompute every analytic from the write database and compare with the read
models.

    shop reconcile      # (python -m infra.ops.reconcile) prints each difference; exit 1 on any

Per product, per category, per customer and per hour, from `orders` and `order_items`; and
every outbox event against `processed_events`. Run it when the pipeline is idle (sync-status
pendingEvents 0): events still in flight show up as differences.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import psycopg

from shopcore.platform.config import settings

EXPECTED = {
    "product": """
        SELECT p.id, coalesce(sum(i.quantity), 0), coalesce(sum(i.quantity * i.price), 0),
               count(DISTINCT i.order_id)
        FROM products p LEFT JOIN order_items i ON i.product_id = p.id
        GROUP BY p.id
    """,
    "category": """
        SELECT p.category, coalesce(sum(i.quantity * i.price), 0), count(DISTINCT i.order_id)
        FROM products p LEFT JOIN order_items i ON i.product_id = p.id
        GROUP BY p.category
    """,
    "customer": """
        SELECT customer_id, sum(total), count(*), max(created_at) FROM orders GROUP BY customer_id
    """,
    "hour": """
        SELECT date_trunc('hour', created_at, 'UTC'), count(*), sum(total)
        FROM orders GROUP BY 1
    """,
}
ACTUAL = {
    "product": """
        SELECT product_id, total_quantity_sold, total_revenue, order_count FROM product_sales_view
    """,
    "category": "SELECT category_name, total_revenue, total_orders FROM category_metrics_view",
    "customer": """
        SELECT customer_id, total_spent, order_count, last_order_date FROM customer_ltv_view
    """,
    "hour": "SELECT hour_timestamp, total_orders, total_revenue FROM hourly_sales_view",
}
COLUMNS = {
    "product": ("totalQuantitySold", "totalRevenue", "orderCount"),
    "category": ("totalRevenue", "totalOrders"),
    "customer": ("totalSpent", "orderCount", "lastOrderDate"),
    "hour": ("totalOrders", "totalRevenue"),
}
WRITTEN_EVENTS = "SELECT payload->>'eventId' FROM outbox"
PROJECTED_EVENTS = "SELECT event_id::text FROM processed_events"


def _rows(conn: psycopg.Connection, query: str) -> dict[Any, tuple]:
    return {row[0]: _normal(row[1:]) for row in conn.execute(query)}


def _normal(values: Iterable[Any]) -> tuple:
    # numeric(…,2) and unbounded numeric compare equal as Decimal; normalise for printing
    return tuple(v.normalize() if isinstance(v, Decimal) else v for v in values)


def differences(write_url: str, read_url: str) -> list[str]:
    found: list[str] = []
    with psycopg.connect(write_url) as write, psycopg.connect(read_url) as read:
        for model, query in EXPECTED.items():
            expected, actual = _rows(write, query), _rows(read, ACTUAL[model])
            for key in sorted(expected.keys() | actual.keys(), key=str):
                want, got = expected.get(key), actual.get(key)
                if want != got:
                    found.append(
                        f"{model} {key}: expected {_show(model, want)}, read model has "
                        f"{_show(model, got)}"
                    )
        written = {r[0] for r in write.execute(WRITTEN_EVENTS)}
        projected = {r[0] for r in read.execute(PROJECTED_EVENTS)}
    for event_id in sorted(written - projected):
        found.append(f"event {event_id}: in the outbox, never projected")
    for event_id in sorted(projected - written):
        found.append(f"event {event_id}: projected, not in the outbox")
    return found


def _show(model: str, values: tuple | None) -> str:
    if values is None:
        return "nothing"
    return "{" + ", ".join(f"{c}={v}" for c, v in zip(COLUMNS[model], values, strict=True)) + "}"


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    argparse.ArgumentParser(
        prog=prog,
        description="Recompute every analytic from the write database (DATABASE_URL) and "
        "compare it with the read models (READ_DATABASE_URL); print each difference. Exit "
        "status 1 on any difference. Run it when the pipeline is idle (sync-status "
        "pendingEvents 0): events still in flight show up as differences.",
    ).parse_args(argv)
    cfg = settings()
    found = differences(cfg.database_url, cfg.read_database_url)
    for line in found:
        print(line)
    print(f"reconciliation: {len(found)} difference(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
