"""Building events: the one place the write side gets an event from, topic included."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from shopcore.platform import jsonio

PRODUCT_EVENTS = "product-events"
ORDER_EVENTS = "order-events"
TOPICS = {"ProductCreated": PRODUCT_EVENTS, "OrderCreated": ORDER_EVENTS}


def now() -> datetime:
    """The moment an event occurs, truncated to the millisecond its JSON form keeps."""
    moment = datetime.now(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def product_created(
    product_id: int | None, name: str, category: str, price: Decimal, stock: int, at: datetime
) -> dict[str, Any]:
    """Without `product_id` the event lacks productId, for the database to add at INSERT."""
    event: dict[str, Any] = {
        "eventId": str(uuid.uuid4()),
        "eventType": "ProductCreated",
        "occurredAt": jsonio.iso_utc(at),
        "productId": product_id,
        "name": name,
        "category": category,
        "price": price,
        "stock": stock,
    }
    if product_id is None:
        del event["productId"]
    return event


def order_created(
    order_id: int | None,
    customer_id: int,
    total: Decimal,
    items: list[dict[str, Any]] | None,
    at: datetime,
) -> dict[str, Any]:
    """`items`: productId, quantity, price, and the product's name and category at order time.

    Without `order_id` and `items` the event lacks them, for the database to add when it
    writes the order (place_order).
    """
    event: dict[str, Any] = {
        "eventId": str(uuid.uuid4()),
        "eventType": "OrderCreated",
        "occurredAt": jsonio.iso_utc(at),
        "orderId": order_id,
        "customerId": customer_id,
        "total": total,
        "items": items,
    }
    return {k: v for k, v in event.items() if v is not None}
