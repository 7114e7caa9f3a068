"""Reading events with marshmallow: the reader that decides what is malformed, and says why.

Events may gain fields (unknown ones are ignored, so old consumers keep working).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from shopcore.events.model import Event, MalformedEvent, OrderCreated, OrderLine, ProductCreated
from shopcore.platform import jsonio


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


def read(data: dict[str, Any]) -> Event:
    """The event `data` (a parsed JSON object) holds; raise MalformedEvent saying what is wrong."""
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
