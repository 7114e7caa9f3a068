"""The events of CONTRACT.md: how the write side builds them and how consumers read them back.

An event is a JSON object with `eventId` and `eventType` at its top level. Consumers validate
it with the schemas below; anything that does not fit is malformed and gets dead-lettered.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

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


# --- reading events back -------------------------------------------------------------------


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


class _Number(fields.Field[Any]):
    """A JSON number (int or Decimal, never bool or string)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            raise ValidationError("must be a number")
        return value


class _Integer(_Number):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        value = super()._deserialize(value, attr, data, **kwargs)
        if not isinstance(value, int):
            raise ValidationError("must be an integer")
        return value


class _Text(fields.String):
    """A string Postgres can store; `min_length` 1 for names that key a read model."""

    def __init__(self, min_length: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.min_length = min_length

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if len(text) < self.min_length or not jsonio.storable(text):
            raise ValidationError("must be non-empty text without NUL or lone surrogates")
        return text


class _Envelope(Schema):
    class Meta:
        unknown = EXCLUDE  # events may gain fields; old consumers keep working

    eventId = fields.UUID(required=True)  # noqa: N815
    occurredAt = fields.AwareDateTime(required=True)  # noqa: N815


class _ProductCreatedSchema(_Envelope):
    productId = _Integer(required=True, validate=validate.Range(min=1))  # noqa: N815
    name = _Text(required=True)
    category = _Text(min_length=1, required=True)
    price = _Number(required=True, validate=validate.Range(min=0))
    stock = _Integer(required=True, validate=validate.Range(min=0))


class _OrderLineSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    productId = _Integer(required=True, validate=validate.Range(min=1))  # noqa: N815
    quantity = _Integer(required=True, validate=validate.Range(min=1))
    price = _Number(required=True, validate=validate.Range(min=0))
    name = _Text(required=True)
    category = _Text(min_length=1, required=True)


class _OrderCreatedSchema(_Envelope):
    orderId = _Integer(required=True, validate=validate.Range(min=1))  # noqa: N815
    customerId = _Integer(required=True, validate=validate.Range(min=1))  # noqa: N815
    total = _Number(required=True, validate=validate.Range(min=0))
    items = fields.List(
        fields.Nested(_OrderLineSchema), required=True, validate=validate.Length(min=1)
    )


_PRODUCT_CREATED = _ProductCreatedSchema()
_ORDER_CREATED = _OrderCreatedSchema()


def parse(body: bytes | str) -> Event:
    """Read one event from its JSON form; raise MalformedEvent saying what is wrong."""
    try:
        data = jsonio.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedEvent(f"not JSON: {exc}") from None
    except RecursionError:
        raise MalformedEvent("not JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise MalformedEvent("not a JSON object")
    return _read_canonical(data) or _read_with_schemas(data)


def _read_with_schemas(data: dict[str, Any]) -> Event:
    event_type = data.get("eventType")
    try:
        if event_type == "ProductCreated":
            d = _PRODUCT_CREATED.load(data)
            return ProductCreated(
                d["eventId"],
                d["occurredAt"],
                d["productId"],
                d["name"],
                d["category"],
                Decimal(d["price"]),
                d["stock"],
            )
        if event_type == "OrderCreated":
            d = _ORDER_CREATED.load(data)
            lines = tuple(
                OrderLine(
                    i["productId"], i["quantity"], Decimal(i["price"]), i["name"], i["category"]
                )
                for i in d["items"]
            )
            return OrderCreated(
                d["eventId"],
                d["occurredAt"],
                d["orderId"],
                d["customerId"],
                Decimal(d["total"]),
                lines,
            )
    except ValidationError as exc:
        raise MalformedEvent(f"invalid {event_type}: {exc.messages}") from None
    raise MalformedEvent(f"unknown eventType {event_type!r}")


# --- the fast path -----------------------------------------------------------------------------
# Marshmallow's load is most of the projector's CPU (BENCHMARKS.md). Events in exactly the shape
# our outbox writes are read by the plain checks below instead; anything else (another
# timestamp format, a missing field, a wrong type) falls through to the schemas, which decide
# and explain. The checks are at least as strict as the schemas: a property test
# (tests/unit/test_event_fast_path.py) holds them to giving the same result.

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


def _read_canonical(data: dict[str, Any]) -> Event | None:
    envelope = _envelope(data)
    if envelope is None:
        return None
    event_type = data.get("eventType")
    if event_type == "OrderCreated":
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
    if event_type == "ProductCreated":
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
    return None
