"""Events: what the write side builds parses back to the same values; anything else is malformed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from shopcore import events
from shopcore.platform import jsonio

AT = datetime(2024, 3, 1, 12, 30, 45, 123000, tzinfo=UTC)
ITEMS = [
    {
        "productId": 7,
        "quantity": 2,
        "price": Decimal("999.99"),
        "name": "Laptop",
        "category": "Tech",
    },
    {"productId": 9, "quantity": 1, "price": Decimal("5.00"), "name": "Pen", "category": "Office"},
]


def product_event(**changes: Any) -> dict[str, Any]:
    event = events.product_created(1, "Laptop", "Tech", Decimal("999.00"), 50, AT)
    return {**event, **changes}


def order_event(**changes: Any) -> dict[str, Any]:
    event = events.order_created(42, 3, Decimal("2004.98"), [dict(i) for i in ITEMS], AT)
    return {**event, **changes}


def order_with_item(**changes: Any) -> dict[str, Any]:
    return order_event(items=[{**ITEMS[0], **changes}])


def without(event: dict[str, Any], field: str) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k != field}


def order_item_without(field: str) -> dict[str, Any]:
    return order_event(items=[without(ITEMS[0], field)])


def parse(event: dict[str, Any]) -> events.Event:
    return events.parse(jsonio.dumps(event))


# --- round trip ----------------------------------------------------------------------------


def test_product_created_round_trips():
    event = product_event()

    parsed = parse(event)

    assert parsed == events.ProductCreated(
        event_id=uuid.UUID(event["eventId"]),
        occurred_at=AT,
        product_id=1,
        name="Laptop",
        category="Tech",
        price=Decimal("999.00"),
        stock=50,
    )


def test_order_created_round_trips():
    event = order_event()

    parsed = parse(event)

    assert parsed == events.OrderCreated(
        event_id=uuid.UUID(event["eventId"]),
        occurred_at=AT,
        order_id=42,
        customer_id=3,
        total=Decimal("2004.98"),
        items=(
            events.OrderLine(7, 2, Decimal("999.99"), "Laptop", "Tech"),
            events.OrderLine(9, 1, Decimal("5.00"), "Pen", "Office"),
        ),
    )
    assert parsed.items[0].revenue == Decimal("1999.98")


def test_parse_accepts_bytes():
    event = order_event()

    assert events.parse(jsonio.dumps(event).encode()) == parse(event)


def test_parsed_timestamp_is_aware_utc():
    parsed = parse(product_event())

    assert parsed.occurred_at.utcoffset().total_seconds() == 0


def test_money_stays_decimal_through_the_round_trip():
    parsed = parse(order_event(total=Decimal("12345678901234567.89")))

    assert parsed.total == Decimal("12345678901234567.89")
    assert isinstance(parsed.items[0].price, Decimal)


def test_integer_money_is_read_as_decimal():
    parsed = parse(product_event(price=10))

    assert parsed.price == Decimal(10)
    assert isinstance(parsed.price, Decimal)


def test_each_built_event_has_its_own_id():
    assert product_event()["eventId"] != product_event()["eventId"]
    assert order_event()["eventId"] != order_event()["eventId"]


def test_built_events_carry_type_and_utc_timestamp():
    event = order_event()

    assert event["eventType"] == "OrderCreated"
    assert event["occurredAt"] == "2024-03-01T12:30:45.123Z"
    assert events.TOPICS[event["eventType"]] == events.ORDER_EVENTS


def test_built_events_are_whole_and_name_their_topic():
    """The builders are the one owner of an event: every field the contract lists, and the
    topic it is stored and published under (the SQL adds nothing)."""
    order, product = order_event(), product_event()

    assert set(order) == {
        "eventId", "eventType", "occurredAt", "orderId", "customerId", "total", "items",
    }  # fmt: skip
    assert [set(item) for item in order["items"]] == [
        {"productId", "quantity", "price", "name", "category"}
    ] * 2
    assert set(product) == {
        "eventId", "eventType", "occurredAt", "productId", "name", "category", "price", "stock",
    }  # fmt: skip
    assert events.topic_of(order) == events.ORDER_EVENTS == "order-events"
    assert events.topic_of(product) == events.PRODUCT_EVENTS == "product-events"


def test_now_is_utc_and_keeps_only_milliseconds():
    moment = events.now()

    assert moment.tzinfo is not None
    assert moment.utcoffset().total_seconds() == 0
    assert moment.microsecond % 1000 == 0
    assert jsonio.parse_iso(jsonio.iso_utc(moment)) == moment


def test_unknown_extra_fields_are_tolerated():
    event = order_event(schemaVersion=2, source={"region": "eu"})
    event["items"] = [{**ITEMS[0], "sku": "LAP-1"}]

    parsed = parse(event)

    assert isinstance(parsed, events.OrderCreated)
    assert parsed.items == (events.OrderLine(7, 2, Decimal("999.99"), "Laptop", "Tech"),)


def test_unknown_extra_fields_on_product_created_are_tolerated():
    assert parse(product_event(color="red")).product_id == 1


# --- malformed -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"{", b"\xff\xfe", "{'eventType': 'OrderCreated'}", "NaN", '{"x": NaN}'],
)
def test_non_json_is_malformed(body):
    with pytest.raises(events.MalformedEvent, match="not JSON"):
        events.parse(body)


@pytest.mark.parametrize("body", ["[]", "1", "null", '"OrderCreated"', "[{}]"])
def test_non_object_is_malformed(body):
    with pytest.raises(events.MalformedEvent, match="not a JSON object"):
        events.parse(body)


@pytest.mark.parametrize(
    "event",
    [
        {},
        without(order_event(), "eventType"),
        order_event(eventType="OrderCancelled"),
        order_event(eventType="orderCreated"),
        order_event(eventType=None),
        order_event(eventType=["OrderCreated"]),
    ],
)
def test_unknown_event_type_is_malformed(event):
    with pytest.raises(events.MalformedEvent, match="unknown eventType"):
        parse(event)


BAD_ORDERS = {
    "missing eventId": without(order_event(), "eventId"),
    "bad UUID": order_event(eventId="not-a-uuid"),
    "numeric eventId": order_event(eventId=12),
    "missing occurredAt": without(order_event(), "occurredAt"),
    "naive timestamp": order_event(occurredAt="2024-03-01T12:30:45"),
    "garbage timestamp": order_event(occurredAt="yesterday"),
    "missing orderId": without(order_event(), "orderId"),
    "zero orderId": order_event(orderId=0),
    "string orderId": order_event(orderId="42"),
    "missing customerId": without(order_event(), "customerId"),
    "bool customerId": order_event(customerId=True),
    "missing total": without(order_event(), "total"),
    "string total": order_event(total="10.00"),
    "negative total": order_event(total=Decimal("-1.00")),
    "missing items": without(order_event(), "items"),
    "empty items": order_event(items=[]),
    "items as object": order_event(items={"0": ITEMS[0]}),
    "item as number": order_event(items=[1]),
    "bool quantity": order_with_item(quantity=True),
    "zero quantity": order_with_item(quantity=0),
    "fractional quantity": order_with_item(quantity=Decimal("1.5")),
    "integral decimal quantity": order_with_item(quantity=Decimal("2.0")),
    "missing item quantity": order_item_without("quantity"),
    "missing item productId": order_item_without("productId"),
    "zero productId": order_with_item(productId=0),
    "missing item price": order_item_without("price"),
    "negative item price": order_with_item(price=Decimal("-0.01")),
    "bool item price": order_with_item(price=False),
    "missing item name": order_item_without("name"),
    "missing item category": order_item_without("category"),
    "empty item category": order_with_item(category=""),
    "numeric item category": order_with_item(category=5),
}


@pytest.mark.parametrize("event", BAD_ORDERS.values(), ids=BAD_ORDERS.keys())
def test_invalid_order_created_is_malformed(event):
    with pytest.raises(events.MalformedEvent, match="invalid OrderCreated"):
        parse(event)


BAD_PRODUCTS = {
    "missing eventId": without(product_event(), "eventId"),
    "bad UUID": product_event(eventId="1234"),
    "naive timestamp": product_event(occurredAt="2024-03-01 12:30:45"),
    "missing productId": without(product_event(), "productId"),
    "bool productId": product_event(productId=True),
    "negative productId": product_event(productId=-1),
    "missing name": without(product_event(), "name"),
    "empty category": product_event(category=""),
    "string price": product_event(price="1.00"),
    "negative price": product_event(price=-1),
    "bool stock": product_event(stock=False),
    "negative stock": product_event(stock=-1),
    "fractional stock": product_event(stock=Decimal("0.5")),
}


@pytest.mark.parametrize("event", BAD_PRODUCTS.values(), ids=BAD_PRODUCTS.keys())
def test_invalid_product_created_is_malformed(event):
    with pytest.raises(events.MalformedEvent, match="invalid ProductCreated"):
        parse(event)


def test_malformed_event_names_the_bad_field():
    with pytest.raises(events.MalformedEvent) as caught:
        parse(order_with_item(quantity=True))

    assert "quantity" in str(caught.value)


def test_deeply_nested_json_is_malformed_not_a_crash():
    with pytest.raises(events.MalformedEvent):
        events.parse("[" * 100_000 + "]" * 100_000)


def test_malformed_event_is_a_value_error():
    assert issubclass(events.MalformedEvent, ValueError)
