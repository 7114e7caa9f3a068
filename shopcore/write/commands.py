"""The write side's use cases: create a product, create an order. Each is one atomic
statement (one round trip) that changes the shop's tables and appends the matching event to
the outbox."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg

from shopcore import errors, events
from shopcore.platform import db, jsonio
from shopcore.write import schemas

# The product row and its event commit together; the event gets the generated id from the CTE.
INSERT_PRODUCT = """
WITH product AS (
    INSERT INTO products (name, category, price, stock, created_at)
    VALUES (%(name)s, %(category)s, %(price)s, %(stock)s, %(at)s)
    RETURNING id
)
INSERT INTO outbox (topic, payload, created_at)
SELECT %(topic)s, %(event)s::jsonb || jsonb_build_object('productId', product.id), %(at)s
FROM product
RETURNING (payload ->> 'productId')::bigint
"""

# Locks, checks stock, decrements it and writes order, items and event: see
# infra/migrations/write/0003_place_order.sql.
PLACE_ORDER = "SELECT place_order(%s, %s, %s, %s, %s, %s, %s)"

_product_schema = schemas.CreateProductSchema()
_order_schema = schemas.CreateOrderSchema()


def create_product(body: Any) -> int:
    """Validate and store a product; returns its id."""
    product = schemas.load(_product_schema, body)
    at = events.now()
    event = events.product_created(None, at=at, **product)  # productId: added by the INSERT
    params = {**product, "at": at, "topic": events.PRODUCT_EVENTS, "event": jsonio.dumps(event)}
    product_id: int = db.run_statement(
        db.command_pool(), lambda conn: db.one(conn.execute(INSERT_PRODUCT, params).fetchone())[0]
    )
    return product_id


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
    event = events.order_created(None, order["customerId"], total, None, at)  # see place_order
    params = (
        order["customerId"],
        [line["productId"] for line in lines],
        [line["quantity"] for line in lines],
        [line["price"] for line in lines],
        total,
        at,
        jsonio.dumps(event),
    )
    try:
        order_id: int = db.run_statement(
            db.command_pool(), lambda conn: db.one(conn.execute(PLACE_ORDER, params).fetchone())[0]
        )
        return order_id
    except psycopg.Error as exc:
        raise _refusal(exc) or exc from None


def _refusal(exc: psycopg.Error) -> errors.ShopError | None:
    """place_order's own errors as the client errors they are."""
    if exc.sqlstate not in ("SH400", "SH409"):
        return None
    detail = jsonio.loads(exc.diag.message_detail or "{}")
    if exc.sqlstate == "SH400":
        ids = detail["productIds"]
        return errors.UnknownProduct(f"unknown productId {ids[0]}", field="items", productIds=ids)
    return errors.InsufficientStock(
        f"insufficient stock for product {detail['productId']}: requested "
        f"{detail['requested']}, available {detail['available']}",
        **detail,
    )
