"""infra.ops.reconcile.exactly_once, the harness's check that a client with Idempotency-Keys got
each order it meant placed once: clean on what the command function really wrote, and a
problem for each way the write database can disagree with what the client was told."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any

import psycopg
import pytest

from infra.ops import reconcile
from shopcore.platform import jsonio
from shopcore.platform.config import settings
from tests.support.functions import http_client

STOCK = 20


@dataclass
class Sent:
    """What a client knows of one order (reconcile.KeyedOrder)."""

    key: str
    body: dict[str, Any]
    status: int | None
    order_id: int | None


@pytest.fixture
def orders():
    return http_client("create_order")


@pytest.fixture
def product(unique):
    created = http_client("create_product").post(
        "/",
        data=jsonio.dumps({"name": f"P-{unique}", "category": unique, "price": 2, "stock": STOCK}),
        content_type="application/json",
    )
    assert created.status_code == 201
    return created.json["productId"]


def send(orders, body: dict[str, Any], key: str | None) -> Sent:
    headers = {} if key is None else {"Idempotency-Key": key}
    answer = orders.post(
        "/", data=jsonio.dumps(body), content_type="application/json", headers=headers
    )
    order_id = answer.json["orderId"] if answer.status_code == 201 else None
    return Sent(key or "", body, answer.status_code, order_id)


def order(customer: int, product: int, quantity: int, price: float = 2.5) -> dict[str, Any]:
    return {
        "customerId": customer,
        "items": [{"productId": product, "quantity": quantity, "price": price}],
    }


def check(sent: list[Sent], product: int, stock: int = STOCK) -> reconcile.ExactlyOnce:
    return reconcile.exactly_once(settings().database_url, sent, stock={product: stock})


@pytest.fixture
def placed(orders, product, customer_id) -> list[Sent]:
    """Four orders, one of them sent twice (a replay), and one refused for stock."""
    keys = [f"once-{uuid.uuid4()}" for _ in range(5)]
    sent = [send(orders, order(customer_id, product, 1 + n), keys[n]) for n in range(4)]
    replay = send(orders, sent[2].body, keys[2])
    assert replay.order_id == sent[2].order_id
    refused = send(orders, order(customer_id, product, 100), keys[4])
    assert refused.status == 409
    return [*sent, refused]


def test_what_the_function_wrote_is_exactly_once(placed, product):
    found = check(placed, product)
    assert found.ok, found.problems
    assert (found.intended, found.placed, found.refused, found.unresolved) == (5, 4, 1, 0)
    assert found.duplicates == 0
    assert found.report()["placedExactlyOnce"] == 4


def test_an_order_written_without_the_key_is_a_duplicate(placed, orders, product, customer_id):
    # what a client that retried without its key would have caused
    again = send(orders, placed[0].body, key=None)
    found = check(placed, product)
    assert found.duplicates == 1
    assert any(f"order {again.order_id} " in p and "duplicate" in p for p in found.problems)
    assert "5 orders written for the client's customers, 4 keys placed" in found.problems
    assert any(p.startswith(f"product {product}: stock") for p in found.problems)


def test_each_disagreement_with_the_client_is_a_problem(placed, product):
    first, second, third, fourth, refused = placed
    told = [
        replace(first, order_id=fourth.order_id),  # told another order's id
        replace(second, status=None, order_id=None),  # never got an answer
        replace(third, body=order(third.body["customerId"], product, 9)),  # not as sent
        replace(fourth, key=f"never-{uuid.uuid4()}"),  # a key nobody stored
        replace(refused, key=first.key),  # refused, yet its key is stored
    ]
    problems = check(told, product).problems
    assert any(f"key {first.key}: answered orderId {fourth.order_id}" in p for p in problems)
    assert f"key {second.key}: no definitive answer" in problems
    assert any(p.startswith(f"key {third.key}: order {third.order_id} holds") for p in problems)
    assert f"key {told[3].key}: answered 201, not stored" in problems
    assert f"key {first.key}: answered 409, yet stored" in problems


def test_stock_must_go_down_once_per_order(placed, product):
    found = check(placed, product, stock=STOCK + 1)
    assert found.problems == [
        f"product {product}: stock {STOCK - 10}, expected {STOCK + 1} - 10 ordered = "
        f"{STOCK + 1 - 10}"
    ]


def test_a_stored_answer_naming_another_order_is_a_problem(placed, product):
    with psycopg.connect(settings().database_url) as conn:
        conn.execute(
            "UPDATE idempotency_keys SET answer = answer || jsonb_build_object('orderId', %s)"
            " WHERE key = %s",
            (placed[1].order_id, placed[0].key),
        )
    problems = check(placed, product).problems
    assert any(p.startswith(f"key {placed[0].key}: answered orderId") for p in problems)
    assert f"order {placed[1].order_id}: answered to 2 keys" in problems
