"""What a consistency token guarantees beyond its own write (README, "Read your writes"):
every write with a lower outbox id that has committed is included too; an id that rolled back
or is still in flight is never waited for; a parked event holds back no one; the watermark
never rises past an id a transaction may still commit.

The module runs on a stack of its own (other tests leave events unprojected, which would hold
back every later token), and moves events by hand, one queue at a time, so "projected" and
"not yet" are deterministic.
"""

from __future__ import annotations

import time

import psycopg
import pytest

from infra.ops import reconcile
from shopcore import events
from shopcore.events import tokens
from shopcore.platform import jsonio, runtime
from shopcore.platform.config import settings
from shopcore.read import consistency
from tests.support import stack
from tests.support.functions import (
    as_batch,
    drain_queue,
    http_client,
    projector_invoker,
    relay_invoker,
    write_rows,
)

TOKEN = "X-Consistency-Token"


@pytest.fixture(autouse=True)
def own_stack(module_stack, monkeypatch):
    stack.activate(module_stack)
    monkeypatch.setenv("RELAY_WATCH", "false")
    runtime.current().reset()
    yield module_stack
    runtime.current().reset()


def post(function: str, body: dict) -> str:
    response = http_client(function).post(
        "/", data=jsonio.dumps(body), content_type="application/json"
    )
    assert response.status_code == 201, response.json
    return response.headers[TOKEN]


def product(name: str = "Lamp") -> tuple[int, str]:
    response = http_client("create_product").post(
        "/", json={"name": name, "category": "Home", "price": 5, "stock": 100}
    )
    assert response.status_code == 201
    return response.json["productId"], response.headers[TOKEN]


def order(product_id: int, customer_id: int = 7) -> str:
    return post(
        "create_order",
        {
            "customerId": customer_id,
            "items": [{"productId": product_id, "quantity": 1, "price": 5}],
        },
    )


def relay() -> None:
    assert relay_invoker()({}) == 200


def project(queue: str) -> None:
    taken = drain_queue(queue)
    if taken:
        assert projector_invoker()(as_batch(queue, taken)) == 200


def get(token: str, wait: str = "0"):
    return http_client("analytics").get(
        "/api/analytics/customers/7/lifetime-value",
        headers={TOKEN: token, "Prefer": f"wait={wait}"},
    )


def test_a_token_waits_for_earlier_writes_on_the_other_queue():
    product_id, product_token = product()
    order_token = order(product_id)
    relay()
    project(events.ORDER_EVENTS)  # the order is projected, its product is not yet

    assert tokens.parse(product_token) < tokens.parse(order_token)
    assert get(order_token).status_code == 503
    project(events.PRODUCT_EVENTS)
    answer = get(order_token)
    assert answer.status_code == 200
    assert answer.json["orderCount"] == 1
    assert tokens.parse(answer.headers[TOKEN]) >= tokens.parse(order_token)


def test_an_id_that_rolled_back_is_never_waited_for():
    with psycopg.connect(settings().database_url) as conn:
        conn.execute("SELECT nextval('outbox_id_seq')")
        conn.rollback()
    product_id, _ = product()
    order_token = order(product_id)
    relay()
    project(events.PRODUCT_EVENTS)
    project(events.ORDER_EVENTS)
    assert get(order_token).status_code == 200
    # nothing can fill the gap: the watermark passes it, once every transaction that began
    # before the order took its id has ended (other databases' too: xids are cluster-wide)
    watch = runtime.current().get(consistency.WATCH)
    deadline = time.monotonic() + 20
    while watch.watermark() < tokens.parse(order_token) and time.monotonic() < deadline:
        assert watch.covered([tokens.parse(order_token)]) == {tokens.parse(order_token)}
        time.sleep(0.05)
    assert watch.watermark() == tokens.parse(order_token)


def test_a_write_still_in_flight_below_a_token_is_not_waited_for_nor_passed():
    product_id, _ = product()
    relay()
    project(events.PRODUCT_EVENTS)
    # a transaction that took an outbox id and has not committed
    in_flight = psycopg.connect(settings().database_url)
    in_flight.execute(
        "INSERT INTO outbox (id, topic, payload)"
        " VALUES (nextval('outbox_id_seq'), 'product-events', '{}')"
    )
    try:
        [(held,)] = in_flight.execute("SELECT max(id) FROM outbox").fetchall()
        order_token = order(product_id)
        relay()
        project(events.ORDER_EVENTS)

        # it committed after the order's id was taken: the token does not wait for it
        assert get(order_token).status_code == 200
        # but nothing may claim that every id up to the order is settled for good
        watch = runtime.current().get(consistency.WATCH)
        watch.covered([tokens.parse(order_token)])
        assert watch.watermark() < held
    finally:
        in_flight.rollback()
        in_flight.close()


def test_a_parked_event_holds_back_no_token():
    product_id, _ = product()
    # an event of ours the projector cannot apply (not a valid ProductCreated): parked
    write_rows(
        "INSERT INTO outbox (topic, payload)"
        " VALUES ('product-events', '{\"eventType\": \"ProductCreated\"}') RETURNING id"
    )
    order_token = order(product_id)
    relay()
    project(events.PRODUCT_EVENTS)
    project(events.ORDER_EVENTS)

    assert get(order_token).status_code == 200
    parked = (
        psycopg.connect(settings().read_database_url)
        .execute("SELECT count(*) FROM parked_events")
        .fetchone()
    )
    assert parked is not None and parked[0] >= 1


def test_a_token_of_an_id_never_written_answers_503_within_its_wait():
    product()
    relay()
    project(events.PRODUCT_EVENTS)
    answer = get(tokens.issue(10_000), wait="0.5")
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "1"


def test_an_event_both_projected_and_parked_counts_once():
    """A dead letter replayed and then applied is in parked_events and processed_events: it
    must not count twice, or it would hide a hole below a token."""
    first, _ = product("First")
    product("Second")
    order_token = order(first)
    relay()
    taken = drain_queue(events.PRODUCT_EVENTS)
    assert len(taken) == 2
    assert projector_invoker()(as_batch(events.PRODUCT_EVENTS, taken[:1])) == 200
    project(events.ORDER_EVENTS)
    first_id = tokens.parse(order_token) - 2  # the first product's event
    with psycopg.connect(settings().read_database_url, autocommit=True) as read:
        read.execute(
            "INSERT INTO parked_events (outbox_id, reason) VALUES (%s, 'replayed later')",
            (first_id,),
        )
    try:
        # the second product's event is lost: the order's token must not be covered
        assert get(order_token).status_code == 503
    finally:
        # put the lost event back, for the module's other tests
        reconcile.republish_lost(settings().database_url, settings().read_database_url)
        relay()
        project(events.PRODUCT_EVENTS)
    assert get(order_token).status_code == 200
