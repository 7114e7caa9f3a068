"""create_product through its functions-framework entry point, against the real Postgres."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shopcore import events
from shopcore.platform import jsonio
from tests.support.functions import http_client, write_rows


@pytest.fixture
def client():
    return http_client("create_product")


def counts() -> tuple[int, int]:
    return write_rows("SELECT (SELECT count(*) FROM products), (SELECT count(*) FROM outbox)")[0]


def test_creates_product_and_its_event_in_one_transaction(client, unique):
    body = {"name": f"Laptop {unique}", "category": "Tech", "price": 999.5, "stock": 50}
    response = client.post("/", json=body)

    assert response.status_code == 201
    product_id = response.json["productId"]
    assert write_rows(
        "SELECT name, category, price, stock FROM products WHERE id = %s", product_id
    ) == [(f"Laptop {unique}", "Tech", Decimal("999.50"), 50)]
    [(topic, payload)] = write_rows(
        "SELECT topic, payload::text FROM outbox WHERE payload->>'productId' = %s", str(product_id)
    )
    assert topic == "product-events"
    event = events.parse(payload)
    assert isinstance(event, events.ProductCreated)
    assert (event.product_id, event.name, event.price, event.stock) == (
        product_id,
        f"Laptop {unique}",
        Decimal("999.50"),
        50,
    )
    assert jsonio.loads(payload)["eventType"] == "ProductCreated"


def test_the_outbox_holds_the_whole_event_the_builders_made(client, unique):
    """shopcore/events builds ProductCreated whole (productId and topic included); the
    database stores it as given, byte for byte what jsonb makes of it."""
    body = {"name": f"Pen {unique}", "category": "Office", "price": 1.5, "stock": 3}
    response = client.post("/", json=body)
    assert response.status_code == 201
    product_id = response.json["productId"]

    [(topic, payload, created_at)] = write_rows(
        "SELECT topic, payload::text, created_at FROM outbox WHERE payload->>'productId' = %s",
        str(product_id),
    )
    built = events.product_created(
        product_id, f"Pen {unique}", "Office", Decimal("1.50"), 3, created_at
    )
    built["eventId"] = jsonio.loads(payload)["eventId"]
    [(expected,)] = write_rows("SELECT %s::jsonb::text", jsonio.dumps(built))
    assert payload == expected
    assert topic == events.topic_of(built) == "product-events"


def test_price_keeps_cents_exactly(client, unique):
    response = client.post("/", json={"name": unique, "category": "Tech", "price": 0.1, "stock": 0})
    assert response.status_code == 201
    [(price,)] = write_rows("SELECT price FROM products WHERE id = %s", response.json["productId"])
    assert price == Decimal("0.10")


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"name": "", "category": "Tech", "price": 1, "stock": 1}', "name"),
        ('{"name": "A", "category": "Tech", "price": -1, "stock": 1}', "price"),
        ('{"name": "A", "category": "Tech", "price": "9", "stock": 1}', "price"),
        ('{"name": "A", "category": "Tech", "price": 1.005, "stock": 1}', "price"),
        ('{"name": "A", "category": "Tech", "price": 1, "stock": 1.5}', "stock"),
        ('{"name": "A", "category": "Tech", "price": 1, "stock": true}', "stock"),
        ('{"name": "A", "category": "Tech", "price": 1, "stock": 99999999999}', "stock"),
        ('{"name": "A", "category": "Tech", "price": 1e300, "stock": 1}', "price"),
        ('{"name": "A\\u0000", "category": "Tech", "price": 1, "stock": 1}', "name"),
        ('{"category": "Tech", "price": 1, "stock": 1}', "name"),
        ('{"name": "A", "category": "Tech", "price": 1, "stock": 1, "x": 1}', "x"),
    ],
)
def test_malformed_input_is_400_naming_the_field_and_writes_nothing(client, raw, field):
    before = counts()
    response = client.post("/", data=raw, content_type="application/json")
    assert response.status_code == 400
    assert response.json["field"] == field
    assert field in response.json["error"]
    assert counts() == before


@pytest.mark.parametrize(
    "raw", ["", "not json", "[1, 2]", "null", '{"name": NaN}', "\xff\xfe", '{"a":' * 10000]
)
def test_unparseable_bodies_are_400(client, raw):
    before = counts()
    response = client.post("/", data=raw, content_type="application/json")
    assert response.status_code == 400
    assert "error" in response.json
    assert counts() == before


def test_oversized_body_is_413(client):
    response = client.post(
        "/", data='{"name": "' + "x" * 200_000 + '"}', content_type="application/json"
    )
    assert response.status_code == 413
    assert "error" in response.json


def test_wrong_method_is_405_and_health_is_200(client):
    assert client.get("/").status_code == 405
    assert client.get("/health").json == {"status": "ok"}
