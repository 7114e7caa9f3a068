"""Idempotency-Key on both POSTs (CONTRACT.md, "Safe retries"), through the functions' entry
points against the real Postgres."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import psycopg
import pytest

from shopcore.pipeline import housekeeping
from shopcore.platform import jsonio, runtime
from shopcore.platform.config import SETTINGS, settings
from shopcore.write import idempotency
from tests.support.functions import http_client, write_rows
from tests.support.lambda_events import FakeContext, http_request, lambda_handler


@pytest.fixture
def orders():
    return http_client("create_order")


@pytest.fixture
def products():
    return http_client("create_product")


def product_body(unique: str, stock: int = 10) -> dict:
    return {"name": f"P-{unique}", "category": f"C-{unique}", "price": 12.5, "stock": stock}


def post(client, body, key=None, raw=None, **headers):
    if key is not None:
        headers["Idempotency-Key"] = key
    data = raw if raw is not None else jsonio.dumps(body)
    return client.post("/", data=data, content_type="application/json", headers=headers)


def stock_of(product_id: int) -> int:
    return write_rows("SELECT stock FROM products WHERE id = %s", product_id)[0][0]


def orders_of(customer_id: int) -> int:
    return write_rows("SELECT count(*) FROM orders WHERE customer_id = %s", customer_id)[0][0]


def keys_named(key: str) -> int:
    return write_rows("SELECT count(*) FROM idempotency_keys WHERE key = %s", key)[0][0]


def test_a_replayed_order_writes_nothing_and_answers_the_same(
    orders, products, unique, customer_id
):
    product = post(products, product_body(unique, stock=5)).json["productId"]
    body = {"customerId": customer_id, "items": [{"productId": product, "quantity": 2, "price": 3}]}
    first = post(orders, body, key=f"k-{unique}")
    outbox_before = write_rows("SELECT count(*) FROM outbox")[0][0]
    # same body, other spelling: whitespace, member order, 3 against 3.00
    again = post(
        orders,
        None,
        key=f"k-{unique}",
        raw=(
            f'{{ "items": [ {{"price": 3.00, "quantity": 2, "productId": {product}}} ],'
            f' "customerId": {customer_id} }}'
        ),
    )

    assert first.status_code == again.status_code == 201
    assert again.json == first.json
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["X-Consistency-Token"] == first.headers["X-Consistency-Token"]
    assert first.json["consistencyToken"] == first.headers["X-Consistency-Token"]
    assert (stock_of(product), orders_of(customer_id)) == (3, 1)
    assert write_rows("SELECT count(*) FROM outbox")[0][0] == outbox_before


def test_a_replay_is_not_refused_for_stock_its_first_request_took(
    orders, products, unique, customer_id
):
    product = post(products, product_body(unique, stock=1)).json["productId"]
    body = {"customerId": customer_id, "items": [{"productId": product, "quantity": 1, "price": 3}]}
    first = post(orders, body, key=f"last-{unique}")
    again = post(orders, body, key=f"last-{unique}")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json["orderId"] == first.json["orderId"]
    assert stock_of(product) == 0


def test_a_key_reused_with_another_body_or_route_is_422(orders, products, unique, customer_id):
    product = post(products, product_body(unique), key=f"p-{unique}").json["productId"]
    body = {"customerId": customer_id, "items": [{"productId": product, "quantity": 1, "price": 3}]}
    assert post(orders, body, key=f"o-{unique}").status_code == 201

    other_body = post(orders, {**body, "customerId": customer_id + 1}, key=f"o-{unique}")
    other_route = post(products, product_body(unique), key=f"o-{unique}")

    assert other_body.status_code == other_route.status_code == 422
    assert other_body.json["field"] == "Idempotency-Key"
    assert other_body.mimetype == "application/json"
    assert orders_of(customer_id) == 1 and orders_of(customer_id + 1) == 0
    assert stock_of(product) == 9


def test_a_refused_request_stores_no_key(orders, products, unique, customer_id):
    product = post(products, product_body(unique, stock=1)).json["productId"]
    too_many = {
        "customerId": customer_id,
        "items": [{"productId": product, "quantity": 2, "price": 3}],
    }
    assert post(orders, too_many, key=f"r-{unique}").status_code == 409
    assert keys_named(f"r-{unique}") == 0
    fits = {**too_many, "items": [{"productId": product, "quantity": 1, "price": 3}]}
    assert post(orders, fits, key=f"r-{unique}").status_code == 201
    assert keys_named(f"r-{unique}") == 1


@pytest.mark.parametrize("bad", ["", "has space", "é", "x" * 256, "tab\there"])
def test_a_malformed_key_is_400_and_writes_nothing(products, unique, bad):
    before = write_rows("SELECT count(*) FROM products")[0][0]
    response = post(products, product_body(unique), key=bad)
    assert response.status_code == 400
    assert response.json["field"] == "Idempotency-Key"
    assert write_rows("SELECT count(*) FROM products")[0][0] == before


def test_keys_up_to_255_visible_characters_are_accepted(products, unique):
    key = ("!~" + unique) * 30
    key = key[:255]
    assert post(products, product_body(unique), key=key).status_code == 201
    assert post(products, product_body(unique), key=key).headers["Idempotent-Replayed"] == "true"


def test_fifty_concurrent_requests_with_one_key_place_one_order(
    orders, products, unique, customer_id
):
    product = post(products, product_body(unique, stock=100)).json["productId"]
    body = {"customerId": customer_id, "items": [{"productId": product, "quantity": 3, "price": 3}]}
    start = threading.Barrier(50)

    def send(_: int):
        client = http_client("create_order")
        start.wait()
        response = post(client, body, key=f"c-{unique}")
        return response.status_code, response.json

    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(send, range(50)))

    statuses = [status for status, _ in answers]
    assert all(status in (201, 409) for status in statuses), statuses
    assert statuses.count(201) >= 1
    assert len({body["orderId"] for status, body in answers if status == 201}) == 1
    assert (orders_of(customer_id), stock_of(product)) == (1, 97)


def test_an_expired_key_may_be_used_again(orders, products, unique, customer_id):
    product = post(products, product_body(unique)).json["productId"]
    body = {"customerId": customer_id, "items": [{"productId": product, "quantity": 1, "price": 3}]}
    first = post(orders, body, key=f"e-{unique}")
    write_rows(
        "UPDATE idempotency_keys SET expires_at = now() - interval '1 second'"
        " WHERE key = %s RETURNING 1",
        f"e-{unique}",
    )
    second = post(orders, body, key=f"e-{unique}")
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json["orderId"] != first.json["orderId"]
    assert "Idempotent-Replayed" not in second.headers
    assert orders_of(customer_id) == 2
    assert stock_of(product) == 8


# --- a request in flight with the same key -----------------------------------------------------


def hold_key(key: str, route: str = "POST /api/orders") -> psycopg.Connection:
    """A transaction that has claimed `key` and not ended: a request in flight with it."""
    conn = psycopg.connect(settings().database_url)
    conn.execute(
        "SELECT * FROM claim_idempotency_key('', %s, %s, '\\x00', 201::smallint,"
        " '{\"orderId\": 1, \"consistencyToken\": \"c1.1\"}', interval '1 day', interval '1s')",
        (key, route),
    )
    return conn


def test_a_duplicate_waits_for_a_holder_that_is_refused_then_runs_as_first(
    orders, products, unique, customer_id
):
    product = post(products, product_body(unique)).json["productId"]
    body = {"customerId": customer_id, "items": [{"productId": product, "quantity": 1, "price": 3}]}
    holder = hold_key(f"w-{unique}")
    pool = ThreadPoolExecutor(1)
    waiting = pool.submit(post, orders, body, f"w-{unique}")
    time.sleep(0.3)
    assert not waiting.done()  # it waits on the holder, it does not write
    assert orders_of(customer_id) == 0
    holder.rollback()  # the first request was refused
    response = waiting.result(10)
    holder.close()
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response.headers
    assert (orders_of(customer_id), stock_of(product)) == (1, 9)


def test_a_duplicate_waits_for_a_holder_that_commits_then_gets_its_answer(
    orders, products, unique, customer_id
):
    product = post(products, product_body(unique)).json["productId"]
    body = {"customerId": customer_id, "items": [{"productId": product, "quantity": 1, "price": 3}]}
    holder = hold_key(f"h-{unique}")
    pool = ThreadPoolExecutor(1)
    waiting = pool.submit(post, orders, body, f"h-{unique}")
    time.sleep(0.3)
    assert not waiting.done()
    holder.commit()  # the holder's fingerprint is not this body's: 422, nothing written
    response = waiting.result(10)
    holder.close()
    assert response.status_code == 422
    assert (orders_of(customer_id), stock_of(product)) == (0, 10)


def test_a_holder_that_does_not_finish_in_time_means_409_with_retry_after(
    orders, products, unique, customer_id, monkeypatch
):
    monkeypatch.setattr(idempotency, "WAIT_FOR_HOLDER", timedelta(milliseconds=300))
    product = post(products, product_body(unique)).json["productId"]
    body = {"customerId": customer_id, "items": [{"productId": product, "quantity": 1, "price": 3}]}
    holder = hold_key(f"t-{unique}")
    try:
        response = post(orders, body, key=f"t-{unique}")
    finally:
        holder.rollback()
        holder.close()
    assert response.status_code == 409
    assert response.headers["Retry-After"] == "1"
    assert response.json["field"] == "Idempotency-Key"
    assert "in progress" in response.json["error"]
    assert (orders_of(customer_id), stock_of(product)) == (0, 10)
    # the key is free again once its holder is gone
    assert post(orders, body, key=f"t-{unique}").status_code == 201


# --- scope, Lambda, cleanup --------------------------------------------------------------------


@pytest.fixture
def api_keys(monkeypatch):
    monkeypatch.setenv("COMMAND_API_KEYS", "alpha-key,beta-key")
    runtime.current().reset(SETTINGS)
    yield
    monkeypatch.delenv("COMMAND_API_KEYS")
    runtime.current().reset(SETTINGS)


def test_keys_are_scoped_per_api_key(api_keys, products, unique):
    body = product_body(unique)
    alpha = post(products, body, key=f"s-{unique}", **{"X-API-Key": "alpha-key"})
    beta = post(products, body, key=f"s-{unique}", **{"Authorization": "Bearer beta-key"})
    alpha_again = post(products, body, key=f"s-{unique}", **{"X-API-Key": "alpha-key"})

    assert (alpha.status_code, beta.status_code, alpha_again.status_code) == (201, 201, 201)
    assert alpha.json["productId"] != beta.json["productId"]
    assert alpha_again.json == alpha.json
    assert alpha_again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in beta.headers
    stored = write_rows("SELECT scope FROM idempotency_keys WHERE key = %s", f"s-{unique}")
    assert len({scope for (scope,) in stored}) == 2
    assert all("alpha" not in scope and "beta" not in scope for (scope,) in stored)


def test_an_unauthorised_request_is_401_before_its_key_is_looked_at(api_keys, products, unique):
    response = post(products, product_body(unique), key="bad key with spaces")
    assert response.status_code == 401


def test_the_lambda_entry_points_replay_the_same_way(unique, customer_id):
    created = lambda_handler("create_product")(
        http_request(
            "POST", "/api/products", product_body(unique), headers={"idempotency-key": unique}
        ),
        FakeContext(30),
    )
    product_status, product = created["statusCode"], jsonio.loads(created["body"])
    body = {"customerId": customer_id, "items": [{"productId": product["productId"],
                                                   "quantity": 1, "price": 3}]}  # fmt: skip
    event = http_request("POST", "/api/orders", body, headers={"idempotency-key": f"o{unique}"})
    first = lambda_handler("create_order")(event, FakeContext(30))
    again = lambda_handler("create_order")(event, FakeContext(30))
    other = http_request(
        "POST", "/api/orders", {**body, "customerId": customer_id + 1},
        headers={"idempotency-key": f"o{unique}"},
    )  # fmt: skip
    refused = lambda_handler("create_order")(other, FakeContext(30))

    assert product_status == 201
    assert (first["statusCode"], again["statusCode"], refused["statusCode"]) == (201, 201, 422)
    assert jsonio.loads(again["body"]) == jsonio.loads(first["body"])
    assert again["headers"]["idempotent-replayed"] == "true"
    assert again["headers"]["x-consistency-token"] == first["headers"]["x-consistency-token"]
    assert orders_of(customer_id) == 1


def test_housekeeping_removes_expired_keys_only(products, unique):
    for n in range(3):
        post(products, product_body(unique), key=f"old{n}-{unique}")
    post(products, product_body(unique), key=f"live-{unique}")
    write_rows(
        "UPDATE idempotency_keys SET expires_at = now() - interval '1 hour'"
        " WHERE key LIKE %s RETURNING 1",
        f"old%-{unique}",
    )
    with psycopg.connect(settings().relay_database_url, autocommit=True) as conn:
        removed = housekeeping.remove_expired_keys(conn, batch_size=2)
    assert removed >= 3
    left = write_rows("SELECT key FROM idempotency_keys WHERE key LIKE %s", f"%-{unique}")
    assert left == [(f"live-{unique}",)]
