"""The write side's use cases: create a product, create an order. Each is one transaction
that changes the shop's tables and appends the matching event to the outbox."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from shopcore import db, errors, events, jsonio, outbox, schemas

# --- create_product --------------------------------------------------------------------------

# One statement, one round trip: the product row and its event commit together; the event
# gets the generated id from the CTE.
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

_product_schema = schemas.CreateProductSchema()
_order_schema = schemas.CreateOrderSchema()


def create_product(body: Any) -> int:
    """Validate and store a product; returns its id."""
    product = schemas.load(_product_schema, body)
    at = events.now()
    event = events.product_created(None, at=at, **product)  # productId: added by the INSERT

    def work(uow: db.UnitOfWork) -> int:
        params = {**product, "at": at, "topic": events.PRODUCT_EVENTS}
        params["event"] = jsonio.dumps(event)
        return uow.conn.execute(INSERT_PRODUCT, params).fetchone()[0]

    return db.run_in_transaction(db.command_pool(), work)


# --- create_order ----------------------------------------------------------------------------

# Rows are locked in id order, so two orders over the same products queue up instead of
# deadlocking. The order id is taken here so the event can be built before the writes.
LOCK_PRODUCTS = """
SELECT id, name, category, stock FROM products WHERE id = ANY(%s) ORDER BY id FOR UPDATE
"""
NEXT_ORDER_ID = "SELECT nextval(pg_get_serial_sequence('orders', 'id'))"

# No `WHERE stock >= quantity` here: the rows are locked and were checked, and the table's
# CHECK (stock >= 0) makes the decrement itself refuse to oversell; a filter would instead
# silently skip a row and commit an order without its stock change.
DECREMENT_STOCK = """
UPDATE products AS p SET stock = p.stock - d.quantity
FROM unnest(%s::bigint[], %s::int[]) AS d(id, quantity)
WHERE p.id = d.id
"""
INSERT_ORDER = """
INSERT INTO orders (id, customer_id, total, status, created_at)
VALUES (%s, %s, %s, 'created', %s)
"""
INSERT_ITEMS = """
INSERT INTO order_items (order_id, product_id, quantity, price)
SELECT %s, item.product_id, item.quantity, item.price
FROM unnest(%s::bigint[], %s::int[], %s::numeric[]) AS item(product_id, quantity, price)
"""


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
    wanted: dict[int, int] = defaultdict(int)
    for line in lines:
        wanted[line["productId"]] += line["quantity"]
    product_ids = sorted(wanted)
    total = sum((line["quantity"] * line["price"] for line in lines), Decimal("0.00"))
    at = events.now()

    def work(uow: db.UnitOfWork) -> int:
        conn = uow.conn
        with conn.pipeline():
            locked = conn.execute(LOCK_PRODUCTS, (product_ids,))
            next_id = conn.execute(NEXT_ORDER_ID)
            products = {row[0]: row for row in locked.fetchall()}
            order_id = next_id.fetchone()[0]
            _check_availability(product_ids, wanted, products)

            event_items = [
                {
                    "productId": line["productId"],
                    "quantity": line["quantity"],
                    "price": line["price"],
                    "name": products[line["productId"]][1],
                    "category": products[line["productId"]][2],
                }
                for line in lines
            ]
            event = events.order_created(order_id, order["customerId"], total, event_items, at)
            conn.execute(DECREMENT_STOCK, (product_ids, [wanted[i] for i in product_ids]))
            conn.execute(INSERT_ORDER, (order_id, order["customerId"], total, at))
            conn.execute(
                INSERT_ITEMS,
                (
                    order_id,
                    [line["productId"] for line in lines],
                    [line["quantity"] for line in lines],
                    [line["price"] for line in lines],
                ),
            )
            outbox.append(conn, event)
            uow.commit()
        return order_id

    return db.run_in_transaction(db.command_pool(), work)


def _check_availability(
    product_ids: list[int], wanted: dict[int, int], products: dict[int, tuple]
) -> None:
    unknown = [pid for pid in product_ids if pid not in products]
    if unknown:
        raise errors.UnknownProduct(
            f"unknown productId {unknown[0]}", field="items", productIds=unknown
        )
    for pid in product_ids:
        available = products[pid][3]
        if wanted[pid] > available:
            raise errors.InsufficientStock(
                f"insufficient stock for product {pid}: requested {wanted[pid]}, "
                f"available {available}",
                productId=pid,
                requested=wanted[pid],
                available=available,
            )
