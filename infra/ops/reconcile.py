"""The oracle: recompute every analytic from the write database and compare with the read
models.

    shop reconcile      # (python -m infra.ops.reconcile) prints each difference; exit 1 on any

Per product, per category, per customer and per hour, from `orders` and `order_items`; and
every outbox event against `processed_events`. Run it when the pipeline is idle (sync-status
pendingEvents 0): events still in flight show up as differences.

`exactly_once` is the client's half, for the harness: given every order a client meant to
place with an Idempotency-Key and the answer it ended with, it checks the write database holds
each placed order exactly once, as sent, and nothing else for those customers.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

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


# Published events the read side has neither projected nor parked: lost on the way (a purged
# queue, a message deleted by hand). Each holds back every later consistency token.
PUBLISHED_EVENTS = "SELECT id, payload->>'eventId' FROM outbox WHERE published_at IS NOT NULL"
PARKED_EVENTS = "SELECT outbox_id FROM parked_events"
REPUBLISH = "UPDATE outbox SET published_at = NULL WHERE id = ANY(%s)"


def republish_lost(write_url: str, read_url: str) -> list[int]:
    """Hand every published event the read side has neither projected nor parked back to the
    relay (published_at cleared), which publishes it again; returns their outbox ids. An event
    still on its way is published twice, which the projector takes as a duplicate."""
    with psycopg.connect(read_url) as read:
        projected = {r[0] for r in read.execute(PROJECTED_EVENTS)}
        parked = {r[0] for r in read.execute(PARKED_EVENTS)}
    with psycopg.connect(write_url) as write:
        lost = sorted(
            oid
            for oid, event_id in write.execute(PUBLISHED_EVENTS)
            if event_id not in projected and oid not in parked
        )
        if lost:
            write.execute(REPUBLISH, (lost,))
    return lost


def _show(model: str, values: tuple | None) -> str:
    if values is None:
        return "nothing"
    return "{" + ", ".join(f"{c}={v}" for c, v in zip(COLUMNS[model], values, strict=True)) + "}"


# --- exactly once: what a client with Idempotency-Keys was told against what was written ------

ORDERS_ROUTE = "POST /api/orders"
KEYS = """
    SELECT key, route, status, answer->>'orderId' FROM idempotency_keys
    WHERE scope = %s AND key = ANY(%s)
"""
ORDERS_OF = "SELECT id, customer_id, total FROM orders WHERE customer_id = ANY(%s)"
ITEMS_OF = """
    SELECT i.order_id, i.product_id, i.quantity, i.price FROM order_items i
    JOIN orders o ON o.id = i.order_id WHERE o.customer_id = ANY(%s)
"""
STOCK_OF = "SELECT id, stock FROM products WHERE id = ANY(%s)"


class KeyedOrder(Protocol):
    """An order a client meant to place (infra/harness/load.py's Intent): its key, the body it
    sent with it every time, and the definitive answer (None: it never got one)."""

    key: str
    body: dict[str, Any]
    status: int | None
    order_id: int | None


@dataclass
class ExactlyOnce:
    intended: int = 0
    placed: int = 0  # answered 201, and in the write database once, as sent
    refused: int = 0  # answered another 4xx, and nothing stored under its key
    unresolved: int = 0  # no definitive answer
    duplicates: int = 0  # orders of the client's customers that none of its keys accounts for
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def report(self) -> dict[str, Any]:
        return {
            "ordersIntended": self.intended,
            "placedExactlyOnce": self.placed,
            "refused": self.refused,
            "unresolved": self.unresolved,
            "duplicates": self.duplicates,
            "problems": len(self.problems),
            "problemSample": self.problems[:10],
        }


Lines = dict[int, tuple[int, Decimal]]  # product -> (quantity, revenue) of one order


@dataclass
class _Written:
    keys: dict[str, tuple[str, int, int | None]]  # key -> (route, status, answered orderId)
    orders: dict[int, tuple[int, Decimal]]  # order id -> (customer, total)
    lines: dict[int, Lines]
    stock: dict[int, int]


def exactly_once(
    write_url: str,
    orders: Iterable[KeyedOrder],
    *,
    stock: Mapping[int, int] | None = None,
    scope: str = "",
) -> ExactlyOnce:
    """Check each intended order against the write database. A key answered 201 is stored
    once, with that orderId, and the order is there with the customer, lines and total sent; a
    key refused (another 4xx) stored nothing; every order of the client's customers is one its
    keys account for (so the number of orders written equals the number of keys placed: no
    duplicate); and with `stock` (each product's stock before the client began), every
    product's stock went down once per placed order. The customers must be the client's own:
    any other order of theirs counts as a duplicate. `scope`: the keys' scope ('' without API
    keys)."""
    intents = list(orders)
    customers = sorted({int(i.body["customerId"]) for i in intents})
    written = _read_written(write_url, [i.key for i in intents], customers, scope, stock or {})
    result = ExactlyOnce(intended=len(intents))
    accounted: Counter[int] = Counter()
    for intent in intents:
        accounted.update(_check_intent(intent, written, result))
    for order_id, times in sorted(accounted.items()):
        if times > 1:
            result.problems.append(f"order {order_id}: answered to {times} keys")
    strays = sorted(set(written.orders) - set(accounted))
    result.duplicates = len(strays)
    for order_id in strays:
        customer, total = written.orders[order_id]
        result.problems.append(
            f"order {order_id} (customer {customer}, total {total}): no key of the client "
            "accounts for it (a duplicate)"
        )
    if len(written.orders) != len(accounted):
        result.problems.append(
            f"{len(written.orders)} orders written for the client's customers, "
            f"{len(accounted)} keys placed"
        )
    if stock:
        result.problems.extend(_stock_problems(intents, written, stock))
    return result


def _read_written(
    write_url: str, keys: list[str], customers: list[int], scope: str, stock: Mapping[int, int]
) -> _Written:
    lines: dict[int, Lines] = defaultdict(dict)
    with psycopg.connect(write_url) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ  # one snapshot for all
        stored = {
            key: (route, status, None if order is None else int(order))
            for key, route, status, order in conn.execute(KEYS, (scope, keys))
        }
        orders = {row[0]: (row[1], row[2]) for row in conn.execute(ORDERS_OF, (customers,))}
        for order_id, product, quantity, price in conn.execute(ITEMS_OF, (customers,)):
            had_quantity, had_revenue = lines[order_id].get(product, (0, Decimal(0)))
            lines[order_id][product] = (had_quantity + quantity, had_revenue + quantity * price)
        stocks: dict[int, int] = dict(conn.execute(STOCK_OF, (list(stock),)).fetchall())
    return _Written(stored, orders, dict(lines), stocks)


def _sent_lines(body: Mapping[str, Any]) -> Lines:
    lines: Lines = {}
    for item in body["items"]:
        quantity, revenue = lines.get(item["productId"], (0, Decimal(0)))
        price = Decimal(str(item["price"]))
        lines[item["productId"]] = (quantity + item["quantity"], revenue + item["quantity"] * price)
    return lines


def _check_intent(intent: KeyedOrder, written: _Written, result: ExactlyOnce) -> list[int]:
    """Count `intent` in `result`, note its problems; the order ids its key accounts for."""
    stored = written.keys.get(intent.key)
    if intent.status is None:
        result.unresolved += 1
        result.problems.append(f"key {intent.key}: no definitive answer")
        return [] if stored is None or stored[2] is None else [stored[2]]
    if intent.status != 201:
        result.refused += 1
        if stored is not None:
            result.problems.append(f"key {intent.key}: answered {intent.status}, yet stored")
        return []
    if stored is None:
        result.problems.append(f"key {intent.key}: answered 201, not stored")
        return []
    route, status, order_id = stored
    if order_id is None or (route, status, order_id) != (ORDERS_ROUTE, 201, intent.order_id):
        result.problems.append(
            f"key {intent.key}: answered orderId {intent.order_id}, stored {stored}"
        )
        return [] if order_id is None else [order_id]
    problem = _order_problem(intent, written)
    if problem:
        result.problems.append(f"key {intent.key}: order {order_id} {problem}")
    else:
        result.placed += 1
    return [order_id]


def _order_problem(intent: KeyedOrder, written: _Written) -> str | None:
    """What is wrong with the order the key answered (None: it is as sent)."""
    assert intent.order_id is not None
    if intent.order_id not in written.orders:
        return "is not in the write database (or is another customer's)"
    customer, total = written.orders[intent.order_id]
    sent = _sent_lines(intent.body)
    expected_total = sum((revenue for _, revenue in sent.values()), Decimal(0))
    if customer != intent.body["customerId"]:
        return f"belongs to customer {customer}, sent for {intent.body['customerId']}"
    if written.lines.get(intent.order_id) != sent or total != expected_total:
        return (
            f"holds {written.lines.get(intent.order_id)} (total {total}), sent {sent} "
            f"(total {expected_total})"
        )
    return None


def _stock_problems(
    intents: list[KeyedOrder], written: _Written, stock: Mapping[int, int]
) -> list[str]:
    taken: Counter[int] = Counter()
    for intent in intents:
        if intent.status == 201:
            for item in intent.body["items"]:
                taken[item["productId"]] += item["quantity"]
    return [
        f"product {product}: stock {written.stock.get(product)}, expected {before} - "
        f"{taken[product]} ordered = {before - taken[product]}"
        for product, before in sorted(stock.items())
        if written.stock.get(product) != before - taken[product]
    ]


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Recompute every analytic from the write database (DATABASE_URL) and "
        "compare it with the read models (READ_DATABASE_URL); print each difference. Exit "
        "status 1 on any difference. Run it when the pipeline is idle (sync-status "
        "pendingEvents 0): events still in flight show up as differences.",
    )
    parser.add_argument(
        "--republish-lost",
        action="store_true",
        help="also hand every published event the read side has neither projected nor parked "
        "(lost on the way: a purged queue) back to the relay, to be published again; run "
        "reconcile again once the pipeline is idle",
    )
    args = parser.parse_args(argv)
    cfg = settings()
    found = differences(cfg.database_url, cfg.read_database_url)
    for line in found:
        print(line)
    print(f"reconciliation: {len(found)} difference(s)")
    if args.republish_lost:
        lost = republish_lost(cfg.database_url, cfg.read_database_url)
        print(
            f"republished {len(lost)} lost event(s)" + (f": outbox ids {lost[:20]}" if lost else "")
        )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
