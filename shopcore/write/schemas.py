"""Marshmallow schemas for the commands: strict types, contract ranges, field-named errors.

JSON arrives through `jsonio.loads`, so non-integer numbers are already Decimal. The fields
here refuse what marshmallow would otherwise coerce: booleans as integers, strings as numbers.
"""

from __future__ import annotations

from decimal import Context, Decimal, InvalidOperation
from typing import Any

from marshmallow import Schema, ValidationError, fields, validates

from shopcore import errors
from shopcore.events.model import MAX_ID
from shopcore.platform import jsonio
from shopcore.platform.config import settings

MAX_BIGINT = MAX_ID
MAX_INT = 2**31 - 1
MAX_PRICE = Decimal("1000000000")  # 1e9 per unit keeps every total inside numeric(24,2)
MAX_QUANTITY = 1_000_000
CENT = Decimal("0.01")
# Rounding to cents happens only below MAX_PRICE (at most 12 digits); a context of its own keeps
# it exact whatever the thread's context is, and an invalid operation an error, never a NaN.
_CENTS = Context(prec=28, traps=[InvalidOperation])


class StrictInteger(fields.Field[Any]):
    """A JSON integer (not a boolean, not a string, not 1.0) within [minimum, maximum]."""

    def __init__(self, minimum: int, maximum: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.minimum, self.maximum = minimum, maximum

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError("must be an integer")
        if not self.minimum <= value <= self.maximum:
            raise ValidationError(f"must be between {self.minimum} and {self.maximum}")
        return value


class Money(fields.Field[Any]):
    """A JSON number >= 0 with at most 2 decimal places, as a Decimal quantized to cents.

    Any exponent and digit count `jsonio.loads` lets through (1E+999999999999999999, 10**4000,
    1E-999999999999999999) is refused by comparisons alone, before any arithmetic: comparing
    never raises, while quantizing a huge value would (decimal.InvalidOperation).
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            raise ValidationError("must be a number")
        amount = Decimal(value)
        if not amount.is_finite() or amount < 0:
            raise ValidationError("must be a number >= 0")
        if amount > MAX_PRICE:
            raise ValidationError(f"must be at most {MAX_PRICE}")
        try:
            cents = amount.quantize(CENT, context=_CENTS)
        except ArithmeticError:  # not reachable below MAX_PRICE; a 400 all the same
            raise ValidationError(f"must be a number between 0 and {MAX_PRICE}") from None
        if amount != cents:
            raise ValidationError("must have at most 2 decimal places")
        return cents.copy_abs()  # -0 is 0


class Label(fields.Field[Any]):
    """A non-blank string of at most 255 characters, surrounding whitespace removed."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if not isinstance(value, str):
            raise ValidationError("must be a string")
        text = value.strip()
        if not text:
            raise ValidationError("must not be empty")
        if len(text) > 255:
            raise ValidationError("must be at most 255 characters")
        if not jsonio.storable(text):
            raise ValidationError("must not contain NUL characters or lone surrogates")
        return text


class CreateProductSchema(Schema):
    name = Label(required=True)
    category = Label(required=True)
    price = Money(required=True)
    stock = StrictInteger(0, MAX_INT, required=True)


class OrderItemSchema(Schema):
    productId = StrictInteger(1, MAX_BIGINT, required=True)  # noqa: N815 - contract name
    quantity = StrictInteger(1, MAX_QUANTITY, required=True)
    price = Money(required=True)


class CreateOrderSchema(Schema):
    customerId = StrictInteger(1, MAX_BIGINT, required=True)  # noqa: N815 - contract name
    items = fields.List(fields.Nested(OrderItemSchema), required=True)

    @validates("items")
    def _item_count(self, items: list[Any], **kwargs: Any) -> None:
        limit = settings().max_order_items
        if not 1 <= len(items) <= limit:
            raise ValidationError(f"must hold between 1 and {limit} items")


def load(schema: Schema, data: Any) -> dict[str, Any]:
    """Validate `data`; on failure raise InvalidInput naming the first offending field."""
    if not isinstance(data, dict):
        raise errors.InvalidInput("request body must be a JSON object")
    try:
        loaded: dict[str, Any] = schema.load(data)
        return loaded
    except ValidationError as exc:
        problems = dict(_flatten(exc.messages, data))
        field, message = next(iter(problems.items()))
        raise errors.InvalidInput(f"{field}: {message}", field=field, fields=problems) from None


def _flatten(messages: Any, data: Any, path: str | None = None) -> list[tuple[str, str]]:
    """{"items": {0: {"price": ["..."]}}} -> [("items[0].price", "...")].

    `data` is the input at this level: it tells marshmallow's schema-level marker `_schema`
    apart from a client's own key of that name.
    """
    if isinstance(messages, list):
        return [("body" if path is None else path, "; ".join(str(m) for m in messages))]
    flat: list[tuple[str, str]] = []
    for key, value in messages.items():
        child: str | None
        if isinstance(key, int):
            child = f"{path or ''}[{key}]"
            inner = data[key] if isinstance(data, list) and 0 <= key < len(data) else None
        elif key == "_schema" and not (isinstance(data, dict) and "_schema" in data):
            child, inner = path, data
        else:
            child = str(key) if path is None else f"{path}.{key}"
            inner = data.get(key) if isinstance(data, dict) else None
        flat.extend(_flatten(value, inner, child))
    return flat
