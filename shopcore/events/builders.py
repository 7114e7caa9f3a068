"""Building events: the one place an event is made, whole, topic included.

The write side asks the database first for what only it knows (a new row's id, an order's
product names and categories), builds the event here, and then stores it as given: the SQL
never adds to an event or picks its topic.
"""

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


def topic_of(event: dict[str, Any]) -> str:
    """The outbox topic (= RabbitMQ queue) an event built here goes to."""
    return TOPICS[event["eventType"]]


def product_created(
    product_id: int, name: str, category: str, price: Decimal, stock: int, at: datetime
) -> dict[str, Any]:
    return {
        "eventId": str(uuid.uuid4()),
        "eventType": "ProductCreated",
        "occurredAt": jsonio.iso_utc(at),
        "productId": product_id,
        "name": name,
        "category": category,
        "price": price,
        "stock": stock,
    }


def order_created(
    order_id: int, customer_id: int, total: Decimal, items: list[dict[str, Any]], at: datetime
) -> dict[str, Any]:
    """`items`: productId, quantity, price, and the product's name and category at order time."""
    return {
        "eventId": str(uuid.uuid4()),
        "eventType": "OrderCreated",
        "occurredAt": jsonio.iso_utc(at),
        "orderId": order_id,
        "customerId": customer_id,
        "total": total,
        "items": items,
    }
