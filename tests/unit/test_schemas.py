"""The command schemas: what loads, and which field each malformed body is blamed on."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest

from shopcore import errors
from shopcore.platform import jsonio
from shopcore.platform.config import settings
from shopcore.write import schemas

PRODUCT = {"name": "Laptop", "category": "Tech", "price": 999, "stock": 50}
ITEM = {"productId": 1, "quantity": 2, "price": Decimal("9.99")}
ORDER = {"customerId": 1, "items": [ITEM]}


def load_product(data: Any) -> dict[str, Any]:
    return schemas.load(schemas.CreateProductSchema(), data)


def load_order(data: Any) -> dict[str, Any]:
    return schemas.load(schemas.CreateOrderSchema(), data)


def product(**changes: Any) -> dict[str, Any]:
    return {**PRODUCT, **changes}


def product_without(field: str) -> dict[str, Any]:
    return {k: v for k, v in PRODUCT.items() if k != field}


def order_with_item(**changes: Any) -> dict[str, Any]:
    return {"customerId": 1, "items": [{**ITEM, **changes}]}


def order_item_without(field: str) -> dict[str, Any]:
    return {"customerId": 1, "items": [{k: v for k, v in ITEM.items() if k != field}]}


def items(count: int) -> list[dict[str, Any]]:
    return [{"productId": n + 1, "quantity": 1, "price": 1} for n in range(count)]


# --- valid payloads ----------------------------------------------------------------------------


def test_product_loads_with_price_quantized_to_cents():
    loaded = load_product(PRODUCT)

    assert loaded == {"name": "Laptop", "category": "Tech", "price": Decimal("999.00"), "stock": 50}
    assert isinstance(loaded["price"], Decimal)
    assert loaded["price"].as_tuple().exponent == -2


def test_product_names_are_stripped():
    loaded = load_product(product(name="  Laptop Pro \t", category="\nTech  "))

    assert loaded["name"] == "Laptop Pro"
    assert loaded["category"] == "Tech"


def test_product_from_json_text_keeps_price_exact():
    body = jsonio.loads('{"name": "Pen", "category": "Office", "price": 0.1, "stock": 0}')

    assert load_product(body)["price"] == Decimal("0.10")


@pytest.mark.parametrize(
    ("price", "expected"),
    [
        (0, Decimal("0.00")),
        (Decimal("0.01"), Decimal("0.01")),
        (Decimal("12.5"), Decimal("12.50")),
        (Decimal("1.100"), Decimal("1.10")),  # trailing zeros are not extra precision
        (Decimal("1E+2"), Decimal("100.00")),
        (schemas.MAX_PRICE, schemas.MAX_PRICE.quantize(schemas.CENT)),
    ],
)
def test_product_price_edges_load(price, expected):
    loaded = load_product(product(price=price))["price"]

    assert loaded == expected
    assert loaded.as_tuple().exponent == -2


@pytest.mark.parametrize("stock", [0, schemas.MAX_INT])
def test_product_stock_edges_load(stock):
    assert load_product(product(stock=stock))["stock"] == stock


def test_product_label_of_255_characters_after_stripping_loads():
    name = "  " + "x" * 255 + "  "

    assert load_product(product(name=name))["name"] == "x" * 255


def test_order_loads():
    loaded = load_order(ORDER)

    assert loaded == {
        "customerId": 1,
        "items": [{"productId": 1, "quantity": 2, "price": Decimal("9.99")}],
    }


def test_order_item_prices_are_quantized_to_cents():
    loaded = load_order(order_with_item(price=5))

    assert loaded["items"][0]["price"] == Decimal("5.00")
    assert loaded["items"][0]["price"].as_tuple().exponent == -2


def test_order_with_the_maximum_number_of_items_loads():
    limit = settings().max_order_items

    assert len(load_order({"customerId": 1, "items": items(limit)})["items"]) == limit


def test_order_integer_edges_load():
    body = {
        "customerId": schemas.MAX_BIGINT,
        "items": [{"productId": schemas.MAX_BIGINT, "quantity": schemas.MAX_QUANTITY, "price": 0}],
    }

    loaded = load_order(body)

    assert loaded["customerId"] == schemas.MAX_BIGINT
    assert loaded["items"][0]["quantity"] == schemas.MAX_QUANTITY


def test_load_does_not_mutate_its_input():
    body = copy.deepcopy(ORDER)

    load_order(body)

    assert body == ORDER


# --- malformed payloads ------------------------------------------------------------------------

BAD_PRODUCTS = {
    # missing fields
    "missing name": (product_without("name"), "name"),
    "missing category": (product_without("category"), "category"),
    "missing price": (product_without("price"), "price"),
    "missing stock": (product_without("stock"), "stock"),
    "null name": (product(name=None), "name"),
    "null price": (product(price=None), "price"),
    # wrong types
    "name as number": (product(name=5), "name"),
    "category as list": (product(category=["Tech"]), "category"),
    "category as object": (product(category={"name": "Tech"}), "category"),
    "price as string": (product(price="999"), "price"),
    "price as bool": (product(price=True), "price"),
    "price as list": (product(price=[1]), "price"),
    "price as float": (product(price=9.99), "price"),
    "stock as bool": (product(stock=True), "stock"),
    "stock as false": (product(stock=False), "stock"),
    "stock as string": (product(stock="5"), "stock"),
    "stock as integral decimal": (product(stock=Decimal("5.0")), "stock"),
    "stock as exponent decimal": (product(stock=Decimal("1E+1")), "stock"),
    "stock as fraction": (product(stock=Decimal("1.5")), "stock"),
    "stock as object": (product(stock={"value": 1}), "stock"),
    # out of range
    "negative price": (product(price=-1), "price"),
    "negative decimal price": (product(price=Decimal("-0.01")), "price"),
    "price above maximum": (product(price=schemas.MAX_PRICE + Decimal("0.01")), "price"),
    "huge price": (product(price=Decimal("1E+400")), "price"),
    "price with 3 decimals": (product(price=Decimal("9.999")), "price"),
    "price with tiny fraction": (product(price=Decimal("1E-400")), "price"),
    "negative stock": (product(stock=-1), "stock"),
    "stock above maximum": (product(stock=schemas.MAX_INT + 1), "stock"),
    # bad strings
    "empty name": (product(name=""), "name"),
    "blank name": (product(name="   \t\n"), "name"),
    "blank category": (product(category=" "), "category"),
    "name over 255": (product(name="x" * 256), "name"),
    "category over 255": (product(category="c" * 300), "category"),
    "name with NUL": (product(name="Lap\x00top"), "name"),
    "category only NUL": (product(category="\x00"), "category"),
    # extra fields
    "unknown field": (product(color="red"), "color"),
}


@pytest.mark.parametrize(("body", "field"), BAD_PRODUCTS.values(), ids=BAD_PRODUCTS.keys())
def test_malformed_product_is_rejected_naming_the_field(body, field):
    with pytest.raises(errors.InvalidInput) as caught:
        load_product(body)

    assert caught.value.details["field"] == field
    assert field in caught.value.details["fields"]
    assert caught.value.message.startswith(f"{field}: ")
    assert caught.value.status == 400


BAD_ORDERS = {
    # missing fields
    "missing customerId": ({"items": [ITEM]}, "customerId"),
    "missing items": ({"customerId": 1}, "items"),
    "missing item productId": (order_item_without("productId"), "items[0].productId"),
    "missing item quantity": (order_item_without("quantity"), "items[0].quantity"),
    "missing item price": (order_item_without("price"), "items[0].price"),
    "null items": ({"customerId": 1, "items": None}, "items"),
    # wrong types
    "customerId as bool": ({"customerId": True, "items": [ITEM]}, "customerId"),
    "customerId as string": ({"customerId": "1", "items": [ITEM]}, "customerId"),
    "customerId as decimal": ({"customerId": Decimal("1.0"), "items": [ITEM]}, "customerId"),
    "items as object": ({"customerId": 1, "items": {"0": ITEM}}, "items"),
    "items as string": ({"customerId": 1, "items": "items"}, "items"),
    "item as number": ({"customerId": 1, "items": [1]}, "items[0]"),
    "item as list": ({"customerId": 1, "items": [[1, 1, 1]]}, "items[0]"),
    "quantity as bool": (order_with_item(quantity=True), "items[0].quantity"),
    "quantity as decimal": (order_with_item(quantity=Decimal("2.0")), "items[0].quantity"),
    "quantity as string": (order_with_item(quantity="2"), "items[0].quantity"),
    "productId as string": (order_with_item(productId="1"), "items[0].productId"),
    "productId as list": (order_with_item(productId=[1]), "items[0].productId"),
    "price as string": (order_with_item(price="9.99"), "items[0].price"),
    "price as bool": (order_with_item(price=False), "items[0].price"),
    "price as object": (order_with_item(price={"amount": 1}), "items[0].price"),
    # out of range
    "zero customerId": ({"customerId": 0, "items": [ITEM]}, "customerId"),
    "negative customerId": ({"customerId": -5, "items": [ITEM]}, "customerId"),
    "customerId above bigint": (
        {"customerId": schemas.MAX_BIGINT + 1, "items": [ITEM]},
        "customerId",
    ),
    "zero quantity": (order_with_item(quantity=0), "items[0].quantity"),
    "negative quantity": (order_with_item(quantity=-1), "items[0].quantity"),
    "quantity above maximum": (
        order_with_item(quantity=schemas.MAX_QUANTITY + 1),
        "items[0].quantity",
    ),
    "zero productId": (order_with_item(productId=0), "items[0].productId"),
    "productId above bigint": (
        order_with_item(productId=schemas.MAX_BIGINT + 1),
        "items[0].productId",
    ),
    "negative price": (order_with_item(price=Decimal("-1.00")), "items[0].price"),
    "price above maximum": (order_with_item(price=10**10), "items[0].price"),
    "price with 3 decimals": (order_with_item(price=Decimal("0.001")), "items[0].price"),
    # item count
    "empty items": ({"customerId": 1, "items": []}, "items"),
    # extra fields
    "unknown top-level field": ({**ORDER, "coupon": "X"}, "coupon"),
    "unknown item field": (order_with_item(discount=1), "items[0].discount"),
}


@pytest.mark.parametrize(("body", "field"), BAD_ORDERS.values(), ids=BAD_ORDERS.keys())
def test_malformed_order_is_rejected_naming_the_field(body, field):
    with pytest.raises(errors.InvalidInput) as caught:
        load_order(body)

    assert caught.value.details["field"] == field
    assert caught.value.message.startswith(f"{field}: ")


def test_error_in_a_later_item_names_its_index():
    body = {"customerId": 1, "items": [ITEM, ITEM, {**ITEM, "quantity": 0}]}

    with pytest.raises(errors.InvalidInput) as caught:
        load_order(body)

    assert caught.value.details["field"] == "items[2].quantity"
    assert list(caught.value.details["fields"]) == ["items[2].quantity"]


def test_order_with_more_than_the_maximum_items_is_rejected():
    limit = settings().max_order_items

    with pytest.raises(errors.InvalidInput) as caught:
        load_order({"customerId": 1, "items": items(limit + 1)})

    assert caught.value.details["field"] == "items"
    assert str(limit) in caught.value.message


def test_every_problem_is_listed_in_fields():
    with pytest.raises(errors.InvalidInput) as caught:
        load_product({"name": "", "category": "Tech", "price": "x", "stock": -1})

    assert set(caught.value.details["fields"]) == {"name", "price", "stock"}
    assert caught.value.details["field"] in {"name", "price", "stock"}


def test_error_body_carries_the_message_and_field():
    with pytest.raises(errors.InvalidInput) as caught:
        load_product(product(stock=True))

    body = caught.value.body()
    assert body["field"] == "stock"
    assert body["error"].startswith("stock: ")


@pytest.mark.parametrize("body", [None, [], [PRODUCT], "name", 42, Decimal("1.5"), True])
@pytest.mark.parametrize("schema", [schemas.CreateProductSchema, schemas.CreateOrderSchema])
def test_non_object_body_is_rejected(schema, body):
    with pytest.raises(errors.InvalidInput) as caught:
        schemas.load(schema(), body)

    assert "body" in caught.value.message
    assert caught.value.status == 400


@pytest.mark.parametrize("field", ["name", "category"])
def test_label_with_lone_surrogate_is_rejected(field):
    # Valid JSON text; json.loads turns the escape into an unencodable lone surrogate.
    body = jsonio.loads('{"name": "a", "category": "b", "price": 1, "stock": 1}')
    body[field] = jsonio.loads('"Lap\\ud800top"')

    with pytest.raises(errors.InvalidInput) as caught:
        load_product(body)

    assert caught.value.details["field"] == field
