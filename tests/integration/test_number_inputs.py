"""Numbers and ids no parser can represent, through the functions' real entry points: a 400
naming the field (issue 9, "No 5xx from any input"), nothing written.

tests/unit/test_number_parsing.py fuzzes the parsers themselves; these check the whole path a
request takes: the framework, read_json, the schemas, the query API's routing.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.support.functions import http_client, write_rows

HUGE = "1e99999999999999999999"  # Decimal raises InvalidOperation (an ArithmeticError)
TINY = "-1e-99999999999999999999"
LONG = "9" * 5000  # int() raises ValueError beyond 4300 digits


def counts() -> tuple[int, int, int]:
    return write_rows(
        "SELECT (SELECT count(*) FROM products), (SELECT count(*) FROM orders),"
        " (SELECT count(*) FROM outbox)"
    )[0]


def post(function: str, raw: str):
    before = counts()
    response = http_client(function).post("/", data=raw, content_type="application/json")
    assert counts() == before
    assert response.headers["Content-Type"] == "application/json"
    return response


@pytest.mark.parametrize(
    ("price", "stock", "field"),
    [
        (HUGE, "1", "price"),
        (TINY, "1", "price"),
        ("1e999999", "1", "price"),  # Decimal holds it: the schema says how big it may be
        ("1e-999999", "1", "price"),
        (LONG, "1", "price"),
        ("1", HUGE, "stock"),
        ("1", LONG, "stock"),
        ("1", "-" + LONG, "stock"),
    ],
)
def test_create_product_refuses_unrepresentable_numbers_naming_the_field(price, stock, field):
    raw = f'{{"name": "Lamp", "category": "Home", "price": {price}, "stock": {stock}}}'
    response = post("create_product", raw)

    assert response.status_code == 400
    assert f"{field}: " in response.json["error"]
    assert len(response.json["error"]) < 300  # the number is not echoed in full


def order(customer: str = "1", product: str = "1", quantity: str = "1", price: str = "1") -> str:
    item = f'{{"productId": {product}, "quantity": {quantity}, "price": {price}}}'
    return f'{{"customerId": {customer}, "items": [{item}]}}'


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (order(customer=HUGE), "customerId"),
        (order(customer=LONG), "customerId"),
        (order(product=LONG), "items[0].productId"),
        (order(quantity=HUGE), "items[0].quantity"),
        (order(price=HUGE), "items[0].price"),
        (order(price=TINY), "items[0].price"),
        (order(price="1e999999"), "items[0].price"),
    ],
)
def test_create_order_refuses_unrepresentable_numbers_naming_the_field(body, field):
    response = post("create_order", body)

    assert response.status_code == 400
    assert f"{field}: " in response.json["error"]


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (f"/api/analytics/products/{'1' * 5000}/sales", "productId"),
        (f"/api/analytics/customers/{'9' * 5000}/lifetime-value", "customerId"),
        (f"/api/analytics/products/{quote('١٢')}/sales", "productId"),
        (f"/api/analytics/products/{quote('²')}/sales", "productId"),
        ("/api/analytics/products/+1/sales", "productId"),
        (f"/api/analytics/products/{quote(' 1')}/sales", "productId"),
        ("/api/analytics/sales/hourly?from=" + quote("2026-01-01T00:00:00\x00Z"), "from"),
        ("/api/analytics/sales/hourly?to=" + quote("٢٠٢٦-01-01T00:00:00Z"), "to"),
        (f"/api/analytics/sales/hourly?to={'9' * 5000}-01-01T00:00:00Z", "to"),
    ],
)
def test_analytics_refuses_unrepresentable_ids_and_timestamps(path, field):
    response = http_client("analytics").get(path)

    assert response.status_code in (400, 404)
    assert response.headers["Content-Type"] == "application/json"
    assert response.json["field"] == field
    assert len(response.json["error"]) < 300


def test_a_long_id_of_leading_zeros_is_still_that_id():
    response = http_client("analytics").get(f"/api/analytics/products/{'0' * 5000}1/sales")

    assert response.status_code in (200, 404)  # product 1 may not have sold yet
    assert response.json["productId"] == 1
