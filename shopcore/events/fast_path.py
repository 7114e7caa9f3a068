"""Reading events without marshmallow, for events in exactly the shape the builders write.

Marshmallow's load is most of the projector's CPU (BENCHMARKS.md). Events in exactly the shape
our outbox writes are read by the plain checks below instead; anything else (another timestamp
format, a missing field, a wrong type) gets None, and the schemas (shopcore.events.schemas)
decide and explain. The checks are at least as strict as the schemas: a property test
(tests/unit/test_event_fast_path.py) holds them to giving the same result.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from shopcore.events.model import Event, OrderCreated, OrderLine, ProductCreated
from shopcore.platform import jsonio

_CANONICAL_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


def _id(value: Any) -> bool:
    return type(value) is int and value >= 1


def _amount(value: Any) -> bool:
    return type(value) in (int, Decimal) and value >= 0


def _text(value: Any, non_empty: bool) -> bool:
    return type(value) is str and (bool(value) or not non_empty) and jsonio.storable(value)


def _envelope(data: dict[str, Any]) -> tuple[uuid.UUID, datetime] | None:
    event_id, at = data.get("eventId"), data.get("occurredAt")
    if type(event_id) is not str or len(event_id) != 36:
        return None
    if type(at) is not str or not _CANONICAL_TIME.fullmatch(at):
        return None
    try:
        return uuid.UUID(event_id), datetime.fromisoformat(at[:-1] + "+00:00")
    except ValueError:
        return None


def read(data: dict[str, Any]) -> Event | None:
    """The event `data` holds if it is in canonical shape; None to leave it to the schemas."""
    envelope = _envelope(data)
    if envelope is None:
        return None
    event_type = data.get("eventType")
    if event_type == "OrderCreated":
        return _order_created(envelope, data)
    if event_type == "ProductCreated":
        return _product_created(envelope, data)
    return None


def _order_created(
    envelope: tuple[uuid.UUID, datetime], data: dict[str, Any]
) -> OrderCreated | None:
    items = data.get("items")
    if not (
        _id(data.get("orderId"))
        and _id(data.get("customerId"))
        and _amount(data.get("total"))
        and type(items) is list
        and items
    ):
        return None
    lines = []
    for item in items:
        if not (
            type(item) is dict
            and _id(item.get("productId"))
            and _id(item.get("quantity"))
            and _amount(item.get("price"))
            and _text(item.get("name"), non_empty=False)
            and _text(item.get("category"), non_empty=True)
        ):
            return None
        lines.append(
            OrderLine(
                item["productId"], item["quantity"], Decimal(item["price"]), item["name"],
                item["category"],
            )
        )  # fmt: skip
    return OrderCreated(
        *envelope, data["orderId"], data["customerId"], Decimal(data["total"]), tuple(lines)
    )


def _product_created(
    envelope: tuple[uuid.UUID, datetime], data: dict[str, Any]
) -> ProductCreated | None:
    stock = data.get("stock")
    if not (
        _id(data.get("productId"))
        and _text(data.get("name"), non_empty=False)
        and _text(data.get("category"), non_empty=True)
        and _amount(data.get("price"))
        and type(stock) is int
        and stock >= 0
    ):
        return None
    return ProductCreated(
        *envelope, data["productId"], data["name"], data["category"],
        Decimal(data["price"]), stock,
    )  # fmt: skip
