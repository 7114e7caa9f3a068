"""analytics through its functions-framework entry point, over read models the pipeline built."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import quote

import pytest

from shopcore.platform import jsonio
from shopcore.read import queries
from tests.support.functions import http_client, read_rows, relay_and_project, write_rows


@pytest.fixture(scope="module")
def api():
    return http_client("analytics")


def post(function: str, body: dict) -> dict:
    response = http_client(function).post(
        "/", data=jsonio.dumps(body), content_type="application/json"
    )
    assert response.status_code == 201, response.json
    return response.json


def get(api, path: str):
    response = api.get(path)
    return response.status_code, jsonio.loads(response.get_data())


def test_answers_match_the_orders(api, unique, customer_id):
    category = f"Home & Garden/{unique}"
    lamp = post(
        "create_product", {"name": "Lamp", "category": category, "price": 19.99, "stock": 9}
    )["productId"]
    rug = post("create_product", {"name": "Rug", "category": category, "price": 120, "stock": 9})[
        "productId"
    ]
    post(
        "create_order",
        {
            "customerId": customer_id,
            "items": [
                {"productId": lamp, "quantity": 3, "price": 19.99},
                {"productId": rug, "quantity": 1, "price": 100.01},
            ],
        },
    )
    post(
        "create_order",
        {"customerId": customer_id, "items": [{"productId": lamp, "quantity": 1, "price": 18}]},
    )
    relay_and_project()

    assert get(api, f"/api/analytics/products/{lamp}/sales") == (
        200,
        {
            "productId": lamp,
            "totalQuantitySold": 4,
            "totalRevenue": Decimal("77.97"),
            "orderCount": 2,
        },
    )
    assert get(api, f"/api/analytics/categories/{quote(category, safe='')}/revenue") == (
        200,
        {"category": category, "totalRevenue": Decimal("177.98"), "totalOrders": 2},
    )
    status, ltv = get(api, f"/api/analytics/customers/{customer_id}/lifetime-value")
    assert status == 200
    assert (ltv["customerId"], ltv["totalSpent"], ltv["orderCount"]) == (
        customer_id,
        Decimal("177.98"),
        2,
    )
    assert ltv["lastOrderDate"].endswith("Z")
    status, hourly = get(api, "/api/analytics/sales/hourly")
    assert status == 200
    assert sum(h["totalOrders"] for h in hourly["hours"]) >= 2


def test_money_is_printed_with_two_decimals(api, unique):
    product = post("create_product", {"name": "A", "category": unique, "price": 5, "stock": 1})[
        "productId"
    ]
    relay_and_project()
    response = api.get(f"/api/analytics/categories/{unique}/revenue")
    assert b'"totalRevenue":0.00' in response.get_data()
    assert api.get(f"/api/analytics/products/{product}/sales").json["totalRevenue"] == 0


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/analytics/products/999999999/sales", 404),
        ("/api/analytics/customers/999999999/lifetime-value", 404),
        ("/api/analytics/categories/no-such-category-anywhere/revenue", 404),
        ("/api/analytics/products/abc/sales", 400),
        ("/api/analytics/products/-1/sales", 400),
        ("/api/analytics/products/0/sales", 400),
        ("/api/analytics/products/99999999999999999999/sales", 400),
        ("/api/analytics/customers/1.5/lifetime-value", 400),
        ("/api/analytics/categories/a%00b/revenue", 400),
        ("/api/analytics/categories/" + "x" * 300 + "/revenue", 400),
        ("/api/analytics/sales/hourly?from=yesterday", 400),
        ("/api/analytics/nothing-here", 404),
    ],
)
def test_bad_paths_get_json_errors(api, path, status):
    code, body = get(api, path)
    assert code == status
    assert isinstance(body["error"], str) and body["error"]


def test_only_get_is_allowed(api):
    assert api.post("/api/analytics/sync-status").status_code == 405


def test_sync_status_reports_pending_then_catches_up(api, unique):
    relay_and_project()
    code, caught_up = get(api, "/api/analytics/sync-status")
    assert code == 200
    assert (caught_up["pendingEvents"], caught_up["lagSeconds"]) == (0, 0)

    post("create_product", {"name": "A", "category": unique, "price": 1, "stock": 1})
    post("create_product", {"name": "B", "category": unique, "price": 1, "stock": 1})
    _, pending = get(api, "/api/analytics/sync-status")
    assert pending["pendingEvents"] == 2
    assert pending["lagSeconds"] > 0

    relay_and_project()
    _, after = get(api, "/api/analytics/sync-status")
    assert (after["pendingEvents"], after["lagSeconds"]) == (0, 0)
    assert after["lastProcessedEventTimestamp"] != caught_up["lastProcessedEventTimestamp"]


def _outbox_rows(count: int) -> list[int]:
    """Published outbox rows no relay will touch; their ids."""
    return [
        r[0]
        for r in write_rows(
            "INSERT INTO outbox (topic, payload, created_at, published_at) "
            "SELECT 'order-events', '{}'::jsonb, now() - interval '1 second', now() "
            "FROM generate_series(1, %s) RETURNING id",
            count,
        )
    ]


def _project_ids(*outbox_ids: int) -> None:
    for oid in outbox_ids:
        read_rows(
            "INSERT INTO processed_events (event_id, event_type, outbox_id, occurred_at) "
            "VALUES (gen_random_uuid(), 'OrderCreated', %s, now()) RETURNING outbox_id",
            oid,
        )


def test_sync_status_finds_holes_above_a_range_it_knows_is_complete(fresh_stack):
    """sync-status remembers how far every id is projected and counts only above that; a hole
    that opens above it (an event projected out of order) is still found."""
    first = _outbox_rows(5)
    _project_ids(*first)
    assert queries.sync_status()["pendingEvents"] == 0  # remembers: complete through first[-1]

    a, b, c = _outbox_rows(3)
    _project_ids(a, c)  # b is still on its way
    status = queries.sync_status()
    assert status["pendingEvents"] == 1
    assert status["lagSeconds"] >= 1
    assert queries.sync_status()["pendingEvents"] == 1  # not forgotten on the next request

    _project_ids(b)
    assert queries.sync_status()["pendingEvents"] == 0
    assert queries.sync_status()["pendingEvents"] == 0  # and again from the remembered point

    [d] = _outbox_rows(1)
    assert queries.sync_status()["pendingEvents"] == 1  # past the newest projected one
    _project_ids(d)
    assert queries.sync_status()["pendingEvents"] == 0


def test_sync_status_after_the_read_side_is_emptied_counts_everything_again(fresh_stack):
    """A read database emptied for a rebuild: what sync-status remembered as complete no
    longer holds, so it counts from the start again."""
    rows = _outbox_rows(4)
    _project_ids(*rows)
    assert queries.sync_status()["pendingEvents"] == 0  # remembers: complete through rows[-1]

    read_rows("DELETE FROM processed_events RETURNING outbox_id")
    _project_ids(rows[0], rows[2])  # the rebuild so far: rows[1] is a hole, rows[3] to come
    status = queries.sync_status()
    assert status["pendingEvents"] == 2
    assert status["lagSeconds"] > 0
