"""The write side's use cases: create a product, create an order.

Each first reads from the database what only it knows and the event needs (the new row's id;
an order's product names and categories), has shopcore/events build the whole event, then
claims the request's Idempotency-Key (if any), changes the shop's tables and appends that
event to the outbox in one atomic statement, which returns the event's outbox id (named by the
answer's consistency token) or, when the key is held, the answer to replay. Two round trips:
the first only reads (and reserves an id), the second is all or nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg

from shopcore import errors, events
from shopcore.events import tokens
from shopcore.platform import db, jsonio
from shopcore.write import idempotency, schemas
from shopcore.write.idempotency import Accepted, IdempotencyKey

PRODUCTS_ROUTE = "POST /api/products"
ORDERS_ROUTE = "POST /api/orders"

NEXT_PRODUCT_ID = "SELECT nextval('products_id_seq')"

# Claims the key, then writes the product row and its event: see
# infra/migrations/write/0005_idempotency_keys.sql. Returns (outbox id, NULLs) when it wrote,
# (NULL, the key holder's route, fingerprint, status, answer) when the key is held.
STORE_PRODUCT = (
    "SELECT * FROM store_product(%s, %s, %s, %s, %s, %s, %s, %s, %s,"
    " %s, %s, %s, %s, %s, %s, %s, %s)"
)

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

# Claims the key, locks, checks stock, decrements it and writes order, items and the given
# event: see infra/migrations/write/0005_idempotency_keys.sql (and 0004 before it). Returns as
# STORE_PRODUCT does.
PLACE_ORDER = (
    "SELECT * FROM place_order(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
    " %s, %s, %s, %s, %s, %s, %s, %s)"
)

_product_schema = schemas.CreateProductSchema()
_order_schema = schemas.CreateOrderSchema()


def create_product(body: Any, key: IdempotencyKey | None = None) -> Accepted:
    """Validate and store a product: its answer ({"productId", "consistencyToken"}), or the
    answer of the earlier request that holds `key`."""
    product = schemas.load(_product_schema, body)
    at = events.now()

    def insert(conn: psycopg.Connection) -> Accepted:
        product_id: int = db.one(conn.execute(NEXT_PRODUCT_ID).fetchone())[0]
        event = events.product_created(product_id, at=at, **product)
        row = (product_id, *(product[f] for f in ("name", "category", "price", "stock")), at)
        written = _Write(PRODUCTS_ROUTE, product, {"productId": product_id}, key)
        return written.run(conn, STORE_PRODUCT, row, event)

    return _run(insert)


@dataclass(frozen=True)
class _Write:
    """One command's write statement: its route, the body as validated, the answer it gives
    (without its token) and the request's key."""

    route: str
    loaded: dict[str, Any]
    answer: dict[str, Any]
    key: IdempotencyKey | None

    def run(
        self, conn: psycopg.Connection, statement: str, row: tuple[Any, ...], event: dict[str, Any]
    ) -> Accepted:
        """Execute `statement` with the row's arguments, then the event's, then the key's:
        the answer with the token of the event's outbox id, or the key holder's replayed."""
        arguments = (
            *row,
            events.topic_of(event),
            jsonio.dumps(event),
            tokens.PREFIX,
            *idempotency.statement_arguments(self.key, self.route, self.loaded, self.answer),
        )
        outbox_id, *held = db.one(conn.execute(statement, arguments).fetchone())
        if outbox_id is None:
            return idempotency.replay(tuple(held), self.route, self.loaded)
        token = tokens.issue(outbox_id)
        return Accepted(body={**self.answer, "consistencyToken": token}, token=token)


def _run(work: Callable[[psycopg.Connection], Accepted]) -> Accepted:
    """Run a command's work on the command pool; the database's refusals as client errors."""
    try:
        result: Accepted = db.run_statement(db.command_pool(), work)
        return result
    except psycopg.Error as exc:
        raise _refusal(exc) or exc from None


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


def create_order(body: Any, key: IdempotencyKey | None = None) -> Accepted:
    """Validate and store an order, decrementing stock: its answer ({"orderId",
    "consistencyToken"}), or the answer of the earlier request that holds `key`.

    Raises UnknownProduct (400) or InsufficientStock (409) with nothing written.
    """
    order = schemas.load(_order_schema, body)
    lines = merge_lines(order["items"])
    total = sum((line["quantity"] * line["price"] for line in lines), Decimal("0.00"))
    at = events.now()
    product_ids = [line["productId"] for line in lines]

    def place(conn: psycopg.Connection) -> Accepted:
        order_id, names, categories = db.one(conn.execute(RESERVE_ORDER, (product_ids,)).fetchone())
        unknown = sorted({p for p, name in zip(product_ids, names, strict=True) if name is None})
        if unknown:
            raise _unknown_products(unknown)
        items = [
            {**line, "name": name, "category": category}
            for line, name, category in zip(lines, names, categories, strict=True)
        ]
        event = events.order_created(order_id, order["customerId"], total, items, at)
        row = (
            order_id,
            order["customerId"],
            product_ids,
            [line["quantity"] for line in lines],
            [line["price"] for line in lines],
            total,
            at,
        )
        written = _Write(ORDERS_ROUTE, order, {"orderId": order_id}, key)
        return written.run(conn, PLACE_ORDER, row, event)

    return _run(place)


def _unknown_products(ids: list[int]) -> errors.UnknownProduct:
    return errors.UnknownProduct(f"unknown productId {ids[0]}", field="items", productIds=ids)


def _refusal(exc: psycopg.Error) -> errors.ShopError | None:
    """The write statements' own errors as the client errors they are."""
    if isinstance(exc, psycopg.errors.LockNotAvailable):
        return idempotency.key_in_use()
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
