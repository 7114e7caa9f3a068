"""projector through its CloudEvent entry point: duplicates, disorder, poison messages."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pika
import pytest

from shopcore import events
from shopcore.pipeline import broker, messages
from shopcore.platform import jsonio
from tests.support.functions import drain_queue, projector_invoker, read_rows


@pytest.fixture(autouse=True)
def _empty_dead_letters(services):
    drain_queue(broker.DEAD_LETTER_QUEUE)


def order_event(order_id: int, customer: int, lines: list[tuple[int, int, str, str]], at=None):
    items = [
        {"productId": p, "quantity": q, "price": Decimal(price), "name": f"n{p}", "category": c}
        for p, q, price, c in lines
    ]
    total = sum((i["quantity"] * i["price"] for i in items), Decimal("0.00"))
    return events.order_created(order_id, customer, total, items, at or events.now())


def product_event(product_id: int, category: str):
    return events.product_created(product_id, "n", category, Decimal("2.50"), 5, events.now())


def batch(*items: dict | bytes, queue: str = events.ORDER_EVENTS) -> dict:
    deliveries = []
    for item in items:
        body = item if isinstance(item, bytes) else jsonio.dumps(item).encode()
        message_id = None if isinstance(item, bytes) else item["eventId"]
        props = pika.BasicProperties(message_id=message_id, headers={"ce-sequence": "1"})
        deliveries.append((queue, props, body, False))
    return messages.to_batch(deliveries)


def product_sales(product_id: int):
    return read_rows(
        "SELECT total_quantity_sold, total_revenue, order_count FROM product_sales_view"
        " WHERE product_id = %s",
        product_id,
    )


def ids() -> tuple[int, int, str]:
    n = uuid.uuid4().int % 10**9
    return n, n + 1, f"cat-{n}"


def test_applies_orders_to_every_read_model(customer_id):
    p, q, cat = ids()
    at = datetime(2026, 3, 1, 10, 15, tzinfo=UTC)
    e1 = order_event(1, customer_id, [(p, 2, "10.00", cat), (q, 1, "5.50", cat)], at)
    e2 = order_event(2, customer_id, [(p, 1, "10.00", cat)], at + timedelta(hours=1))

    assert projector_invoker()(batch(e1, e2)) == 200

    assert product_sales(p) == [(3, Decimal("30.00"), 2)]
    assert product_sales(q) == [(1, Decimal("5.50"), 1)]
    assert read_rows(
        "SELECT total_revenue, total_orders FROM category_metrics_view WHERE category_name = %s",
        cat,
    ) == [(Decimal("35.50"), 2)]
    assert read_rows(
        "SELECT total_spent, order_count, last_order_date FROM customer_ltv_view"
        " WHERE customer_id = %s",
        customer_id,
    ) == [(Decimal("35.50"), 2, at + timedelta(hours=1))]


def test_duplicates_in_a_batch_and_across_batches_count_once(customer_id):
    p, _, cat = ids()
    e = order_event(1, customer_id, [(p, 4, "1.25", cat)])
    assert projector_invoker()(batch(e, e, e)) == 200
    assert projector_invoker()(batch(e)) == 200
    assert product_sales(p) == [(4, Decimal("5.00"), 1)]
    assert read_rows("SELECT count(*) FROM processed_events WHERE event_id = %s", e["eventId"]) == [
        (1,)
    ]


def test_out_of_order_delivery_gives_the_same_totals(customer_id):
    p, _, cat = ids()
    early = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
    late = datetime(2026, 1, 2, 8, 0, tzinfo=UTC)
    e_late = order_event(2, customer_id, [(p, 1, "3.00", cat)], late)
    e_early = order_event(1, customer_id, [(p, 2, "3.00", cat)], early)
    created = product_event(p, cat)

    # the newest order first, the product announcement last
    assert projector_invoker()(batch(e_late)) == 200
    assert projector_invoker()(batch(e_early)) == 200
    assert projector_invoker()(batch(created, queue=events.PRODUCT_EVENTS)) == 200

    assert product_sales(p) == [(3, Decimal("9.00"), 2)]
    assert read_rows(
        "SELECT last_order_date FROM customer_ltv_view WHERE customer_id = %s", customer_id
    ) == [(late,)]
    assert read_rows("SELECT category FROM product_catalog WHERE product_id = %s", p) == [(cat,)]


def test_product_created_gives_zero_rows(unique):
    p, _, cat = ids()
    assert projector_invoker()(batch(product_event(p, cat), queue=events.PRODUCT_EVENTS)) == 200
    assert product_sales(p) == [(0, Decimal("0"), 0)]
    assert read_rows(
        "SELECT total_revenue, total_orders FROM category_metrics_view WHERE category_name = %s",
        cat,
    ) == [(Decimal("0"), 0)]


@pytest.mark.parametrize(
    ("poison", "reason"),
    [
        (b"this is not json", "not JSON"),
        (b'{"eventType": "OrderShipped", "eventId": "x"}', "unknown eventType"),
        (
            b'{"eventType": "OrderCreated", "eventId": "5b1d0c1e-3a8e-4c86-9f0d-1c1d3c9e2f10"}',
            "invalid",
        ),
        (b"[1, 2, 3]", "not a JSON object"),
    ],
)
def test_poison_messages_are_dead_lettered_with_reason_and_the_rest_apply(
    customer_id, poison, reason
):
    p, _, cat = ids()
    good = order_event(1, customer_id, [(p, 1, "2.00", cat)])

    assert projector_invoker()(batch(poison, good)) == 200

    assert product_sales(p) == [(1, Decimal("2.00"), 1)]
    [(props, body)] = drain_queue(broker.DEAD_LETTER_QUEUE)
    assert body == poison
    assert reason in props.headers[broker.REASON_HEADER]
    assert props.headers["x-original-queue"] == events.ORDER_EVENTS


def test_database_outage_answers_503_so_the_trigger_retries(customer_id, monkeypatch):
    p, _, cat = ids()
    good = order_event(1, customer_id, [(p, 1, "2.00", cat)])
    from tests.support import stack

    monkeypatch.setenv("READ_DATABASE_URL", "postgresql://127.0.0.1:1/nowhere?connect_timeout=1")
    stack.reset_process_state()
    try:
        assert projector_invoker()(batch(good)) == 503
    finally:
        monkeypatch.undo()
        stack.reset_process_state()
    assert product_sales(p) == []


def test_an_event_the_database_refuses_is_parked_and_the_rest_apply(customer_id):
    """Valid JSON, valid fields, but a price no numeric(14,2) column holds: only that event
    is dead-lettered, the other events of its batch are applied."""
    p, q, cat = ids()
    refused = events.product_created(p, "n", cat, Decimal("1E+20"), 1, events.now())
    fine = product_event(q, cat)

    assert projector_invoker()(batch(refused, fine, queue=events.PRODUCT_EVENTS)) == 200

    assert product_sales(q) == [(0, Decimal("0"), 0)]
    assert product_sales(p) == []
    [(props, _)] = drain_queue(broker.DEAD_LETTER_QUEUE)
    assert props.message_id == refused["eventId"]
    assert "refused by the read database" in props.headers[broker.REASON_HEADER]
