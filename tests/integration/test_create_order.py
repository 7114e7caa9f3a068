"""create_order through its functions-framework entry point, against the real Postgres."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from shopcore import events
from shopcore.platform import jsonio
from tests.support.functions import http_client, read_rows, relay_and_project, write_rows


@pytest.fixture
def orders():
    return http_client("create_order")


@pytest.fixture
def new_product(unique):
    products = http_client("create_product")

    def make(stock: int = 10, price: str = "10.00", category: str | None = None) -> int:
        body = {
            "name": f"P-{unique}",
            "category": category or f"C-{unique}",
            "price": Decimal(price),
            "stock": stock,
        }
        response = products.post("/", data=jsonio.dumps(body), content_type="application/json")
        assert response.status_code == 201, response.json
        return response.json["productId"]

    return make


def stock_of(product_id: int) -> int:
    return write_rows("SELECT stock FROM products WHERE id = %s", product_id)[0][0]


def write_counts() -> tuple[int, int, int]:
    return write_rows(
        "SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM order_items),"
        " (SELECT count(*) FROM outbox)"
    )[0]


def test_order_writes_items_decrements_stock_and_appends_event(orders, new_product, customer_id):
    a, b = new_product(stock=5, category="Books"), new_product(stock=7, category="Games")
    response = orders.post(
        "/",
        json={
            "customerId": customer_id,
            "items": [
                {"productId": a, "quantity": 2, "price": 10.5},
                {"productId": b, "quantity": 1, "price": 3},
            ],
        },
    )

    assert response.status_code == 201
    order_id = response.json["orderId"]
    assert (stock_of(a), stock_of(b)) == (3, 6)
    assert write_rows("SELECT customer_id, total FROM orders WHERE id = %s", order_id) == [
        (customer_id, Decimal("24.00"))
    ]
    assert sorted(
        write_rows(
            "SELECT product_id, quantity, price FROM order_items WHERE order_id = %s", order_id
        )
    ) == sorted([(a, 2, Decimal("10.50")), (b, 1, Decimal("3.00"))])
    [(topic, payload)] = write_rows(
        "SELECT topic, payload::text FROM outbox WHERE payload->>'orderId' = %s", str(order_id)
    )
    assert topic == "order-events"
    event = events.parse(payload)
    assert isinstance(event, events.OrderCreated)
    assert (event.customer_id, event.total) == (customer_id, Decimal("24.00"))
    assert {(i.product_id, i.category) for i in event.items} == {(a, "Books"), (b, "Games")}


def test_the_outbox_holds_the_whole_event_the_builders_made(
    orders, new_product, unique, customer_id
):
    """shopcore/events builds OrderCreated whole (ids, items with name and category, topic);
    the database stores it as given, byte for byte what jsonb makes of it."""
    a, b = new_product(price="2.50", category="Books"), new_product(category="Games")
    lines = [
        {"productId": b, "quantity": 1, "price": Decimal("0.10")},
        {"productId": a, "quantity": 2, "price": Decimal("2.50")},
    ]
    body = jsonio.dumps({"customerId": customer_id, "items": lines})
    response = orders.post("/", data=body, content_type="application/json")
    assert response.status_code == 201
    order_id = response.json["orderId"]

    [(topic, payload, created_at)] = write_rows(
        "SELECT topic, payload::text, created_at FROM outbox WHERE payload->>'orderId' = %s",
        str(order_id),
    )
    stored = jsonio.loads(payload)
    items = [
        {**lines[0], "name": f"P-{unique}", "category": "Games"},
        {**lines[1], "name": f"P-{unique}", "category": "Books"},
    ]
    built = events.order_created(order_id, customer_id, Decimal("5.10"), items, created_at)
    built["eventId"] = stored["eventId"]
    [(expected,)] = write_rows("SELECT %s::jsonb::text", jsonio.dumps(built))
    assert payload == expected
    assert topic == events.topic_of(built) == "order-events"


def test_repeated_product_lines_are_merged(orders, new_product, customer_id):
    a = new_product(stock=5)
    response = orders.post(
        "/",
        json={
            "customerId": customer_id,
            "items": [
                {"productId": a, "quantity": 2, "price": 1},
                {"productId": a, "quantity": 3, "price": 1},
            ],
        },
    )
    assert response.status_code == 201
    assert stock_of(a) == 0
    assert write_rows(
        "SELECT quantity FROM order_items WHERE order_id = %s", response.json["orderId"]
    ) == [(5,)]


def test_repeated_lines_count_together_against_stock(orders, new_product, customer_id):
    a = new_product(stock=4)
    before = write_counts()
    response = orders.post(
        "/",
        json={
            "customerId": customer_id,
            "items": [
                {"productId": a, "quantity": 3, "price": 1},
                {"productId": a, "quantity": 2, "price": 2},
            ],
        },
    )
    assert response.status_code == 409
    assert response.json["available"] == 4
    assert (stock_of(a), write_counts()) == (4, before)


def test_unknown_product_is_400_and_writes_nothing(orders, new_product, customer_id):
    a = new_product(stock=5)
    before = write_counts()
    response = orders.post(
        "/",
        json={
            "customerId": customer_id,
            "items": [
                {"productId": a, "quantity": 1, "price": 1},
                {"productId": 987654321, "quantity": 1, "price": 1},
            ],
        },
    )
    assert response.status_code == 400
    assert "987654321" in response.json["error"]
    assert (stock_of(a), write_counts()) == (5, before)


def test_insufficient_stock_is_409_naming_product_and_available(orders, new_product, customer_id):
    a, b = new_product(stock=5), new_product(stock=1)
    before = write_counts()
    response = orders.post(
        "/",
        json={
            "customerId": customer_id,
            "items": [
                {"productId": a, "quantity": 2, "price": 1},
                {"productId": b, "quantity": 2, "price": 1},
            ],
        },
    )
    assert response.status_code == 409
    assert response.json["productId"] == b
    assert response.json["available"] == 1
    assert str(b) in response.json["error"]
    assert (stock_of(a), stock_of(b), write_counts()) == (5, 1, before)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"items": [{"productId": 1, "quantity": 1, "price": 1}]}, "customerId"),
        ({"customerId": 0, "items": [{"productId": 1, "quantity": 1, "price": 1}]}, "customerId"),
        ({"customerId": "1", "items": [{"productId": 1, "quantity": 1, "price": 1}]}, "customerId"),
        ({"customerId": 1, "items": []}, "items"),
        ({"customerId": 1, "items": {}}, "items"),
        (
            {"customerId": 1, "items": [{"productId": 1, "quantity": 0, "price": 1}]},
            "items[0].quantity",
        ),
        (
            {"customerId": 1, "items": [{"productId": 1, "quantity": -1, "price": 1}]},
            "items[0].quantity",
        ),
        (
            {"customerId": 1, "items": [{"productId": 1, "quantity": 1, "price": -5}]},
            "items[0].price",
        ),
        (
            {"customerId": 1, "items": [{"productId": 2**70, "quantity": 1, "price": 1}]},
            "items[0].productId",
        ),
        ({"customerId": 1, "items": [{"quantity": 1, "price": 1}]}, "items[0].productId"),
        ({"customerId": 1, "items": [{"productId": 1, "quantity": 1, "price": 1}] * 101}, "items"),
    ],
)
def test_malformed_orders_are_400_naming_the_field(orders, body, field):
    before = write_counts()
    response = orders.post("/", json=body)
    assert response.status_code == 400
    assert response.json["field"] == field
    assert write_counts() == before


def test_thirty_concurrent_orders_against_stock_ten(orders, new_product, unique):
    """Exactly 10 win, 20 get 409, stock ends at 0, and the read model shows 10 sold."""
    product = new_product(stock=10, price="5.00")
    clients = [http_client("create_order") for _ in range(30)]

    def order(i: int) -> int:
        body = {
            "customerId": 1000 + i,
            "items": [{"productId": product, "quantity": 1, "price": 5}],
        }
        return clients[i].post("/", json=body).status_code

    with ThreadPoolExecutor(max_workers=30) as pool:
        statuses = list(pool.map(order, range(30)))

    assert sorted(statuses) == [201] * 10 + [409] * 20
    assert stock_of(product) == 0
    relay_and_project()
    assert read_rows(
        "SELECT total_quantity_sold, total_revenue, order_count FROM product_sales_view"
        " WHERE product_id = %s",
        product,
    ) == [(10, Decimal("50.00"), 10)]


def test_concurrent_orders_over_shared_products_do_not_deadlock(new_product, customer_id):
    """Orders lock products in id order; crossing orders (a,b) and (b,a) all complete."""
    a, b = new_product(stock=1000), new_product(stock=1000)
    clients = [http_client("create_order") for _ in range(20)]

    def order(i: int) -> int:
        pair = [a, b] if i % 2 else [b, a]
        body = {
            "customerId": customer_id,
            "items": [{"productId": p, "quantity": 1, "price": 1} for p in pair],
        }
        return clients[i].post("/", json=body).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(order, range(20)))
    assert statuses == [201] * 20
    assert (stock_of(a), stock_of(b)) == (980, 980)
