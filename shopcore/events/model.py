"""What a consumer reads an event back as (shopcore.events.parse)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

# Ids (products, orders, customers) are Postgres bigints, on both sides.
MAX_ID = 2**63 - 1


@dataclass(frozen=True)
class ProductCreated:
    event_id: uuid.UUID
    occurred_at: datetime
    product_id: int
    name: str
    category: str
    price: Decimal
    stock: int


@dataclass(frozen=True)
class OrderLine:
    product_id: int
    quantity: int
    price: Decimal
    name: str
    category: str

    @property
    def revenue(self) -> Decimal:
        return self.quantity * self.price


@dataclass(frozen=True)
class OrderCreated:
    event_id: uuid.UUID
    occurred_at: datetime
    order_id: int
    customer_id: int
    total: Decimal
    items: tuple[OrderLine, ...]


Event = ProductCreated | OrderCreated


class MalformedEvent(ValueError):
    """An event that cannot be applied: not JSON, unknown type, missing or invalid fields."""
