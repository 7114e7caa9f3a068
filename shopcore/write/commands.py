"""The write side's use cases: create a product, create an order.

Each first reads from the database what only it knows and the event needs (the new row's id;
an order's product names and categories), has shopcore/events build the whole event, then
changes the shop's tables and appends that event to the outbox in one atomic statement. Two
round trips: the first only reads (and reserves an id), the second is all or nothing.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg

from shopcore import errors, events
from shopcore.platform import db, jsonio
from shopcore.write import schemas

NEXT_PRODUCT_ID = "SELECT nextval('products_id_seq')"

# The product row and its event commit together.
INSERT_PRODUCT = """
WITH product AS (
    INSERT INTO products (id, name, category, price, stock, created_at)
    VALUES (%(id)s, %(name)s, %(category)s, %(price)s, %(stock)s, %(at)s)
)
INSERT INTO outbox (topic, payload, created_at) VALUES (%(topic)s, %(event)s, %(at)s)
"""

# The order's id, and each line's product name and category (NULL: no such product), in line
# order. Read before the order is locked: a rename committed while the order is placed may or
# may not reach its event, as with any change concurrent with it.
RESERVE_ORDER = """
SELECT
    nextval('orders_id_seq'),
    array_agg(products.name ORDER BY line.position),
    array_agg(products.category ORDER BY line.position)
FROM unnest(%s::bigint[]) WITH ORDINALITY AS line(product_id, position)
LEFT JOIN products ON products.id = line.product_id
"""

# Locks, checks stock, decrements it and writes order, items and the given event: see
# infra/migrations/write/0004_place_order_stores_its_event.sql.
PLACE_ORDER = "SELECT place_order(%s, %s, %s, %s, %s, %s, %s, %s, %s)"

_product_schema = schemas.CreateProductSchema()
_order_schema = schemas.CreateOrderSchema()


def create_product(body: Any) -> int:
    """Validate and store a product; returns its id."""
    product = schemas.load(_product_schema, body)
    at = events.now()

    def insert(conn: psycopg.Connection) -> int:
        product_id: int = db.one(conn.execute(NEXT_PRODUCT_ID).fetchone())[0]
        event = events.product_created(product_id, at=at, **product)
        stored = {"topic": events.topic_of(event), "event": jsonio.dumps(event)}
        conn.execute(INSERT_PRODUCT, {**product, "id": product_id, "at": at, **stored})
        return product_id

    return db.run_statement(db.command_pool(), insert)


def merge_lines(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fold repeated (productId, price) lines into one; keep order of first appearance.

    The same product at two different prices stays two lines: each is what the customer paid.
    """
    merged: dict[tuple[int, Decimal], dict[str, Any]] = {}
    for item in items:
        key = (item["productId"], item["price"])
        if key in merged:
            merged[key]["quantity"] += item["quantity"]
        else:
            merged[key] = dict(item)
    return list(merged.values())


def create_order(body: Any) -> int:
    """Validate and store an order, decrementing stock; returns its id.

    Raises UnknownProduct (400) or InsufficientStock (409) with nothing written.
    """
    order = schemas.load(_order_schema, body)
    lines = merge_lines(order["items"])
    total = sum((line["quantity"] * line["price"] for line in lines), Decimal("0.00"))
    at = events.now()
    product_ids = [line["productId"] for line in lines]

    def place(conn: psycopg.Connection) -> int:
        reserved = db.one(conn.execute(RESERVE_ORDER, (product_ids,)).fetchone())
        order_id: int = reserved[0]
        names, categories = reserved[1], reserved[2]
        unknown = sorted({p for p, name in zip(product_ids, names, strict=True) if name is None})
        if unknown:
            raise _unknown_products(unknown)
        items = [
            {**line, "name": name, "category": category}
            for line, name, category in zip(lines, names, categories, strict=True)
        ]
        event = events.order_created(order_id, order["customerId"], total, items, at)
        conn.execute(
            PLACE_ORDER,
            (
                order_id,
                order["customerId"],
                product_ids,
                [line["quantity"] for line in lines],
                [line["price"] for line in lines],
                total,
                at,
                events.topic_of(event),
                jsonio.dumps(event),
            ),
        )
        return order_id

    try:
        return db.run_statement(db.command_pool(), place)
    except psycopg.Error as exc:
        raise _refusal(exc) or exc from None


def _unknown_products(ids: list[int]) -> errors.UnknownProduct:
    return errors.UnknownProduct(f"unknown productId {ids[0]}", field="items", productIds=ids)


def _refusal(exc: psycopg.Error) -> errors.ShopError | None:
    """place_order's own errors as the client errors they are."""
    if exc.sqlstate not in ("SH400", "SH409"):
        return None
    detail = jsonio.loads(exc.diag.message_detail or "{}")
    if exc.sqlstate == "SH400":
        return _unknown_products(detail["productIds"])
    return errors.InsufficientStock(
        f"insufficient stock for product {detail['productId']}: requested "
        f"{detail['requested']}, available {detail['available']}",
        **detail,
    )
