"""Each function's AWS Lambda handler, driven with AWS's documented event shapes
(tests/events/) against the real Postgres and RabbitMQ of the run's sandbox.

The HTTP handlers must answer exactly as the functions-framework entry points do; the relay
must stay inside Lambda's time; the projector must park what it cannot apply and raise on an
outage (the Amazon MQ trigger then redelivers the whole batch).
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pika
import psycopg
import pytest
from werkzeug.test import Client

from infra.functions import FUNCTIONS, by_name
from infra.triggers.invoke import load
from shopcore import events
from shopcore.pipeline import broker, lambda_entry, outbox
from shopcore.platform import jsonio, runtime
from shopcore.platform.config import SETTINGS, settings
from tests.integration.test_projector import ids, order_event, product_event, product_sales
from tests.support import stack
from tests.support.functions import drain_queue, write_rows
from tests.support.lambda_events import (
    FakeContext,
    amq_batch,
    http_request,
    lambda_handler,
    load_event,
)

HTTP_FUNCTIONS = [f.name for f in FUNCTIONS if f.trigger == "http"]


def call(name: str, event: dict) -> tuple[int, dict]:
    """Invoke an HTTP function's handler; its status and JSON body, after checking that the
    answer is an API Gateway v2 response carrying JSON text (not base64)."""
    response = lambda_handler(name)(event, FakeContext(30))
    assert response["headers"]["content-type"] == "application/json"
    assert response["isBase64Encoded"] is False
    return response["statusCode"], jsonio.loads(response["body"])


def create_product(unique: str, stock: int = 5) -> int:
    body = {"name": f"Lamp {unique}", "category": f"cat-{unique}", "price": 12.5, "stock": stock}
    status, answer = call("create_product", http_request("POST", "/api/products", body))
    assert status == 201, answer
    return answer["productId"]


# --- HTTP: create_product, create_order, analytics ------------------------------------------


def test_creates_a_product_through_api_gateway(unique):
    product_id = create_product(unique, stock=7)

    assert write_rows("SELECT name, price, stock FROM products WHERE id = %s", product_id) == [
        (f"Lamp {unique}", Decimal("12.50"), 7)
    ]
    assert write_rows(
        "SELECT topic FROM outbox WHERE payload->>'productId' = %s", str(product_id)
    ) == [("product-events",)]


def test_creates_an_order_through_api_gateway(unique, customer_id):
    product_id = create_product(unique, stock=5)
    order = {
        "customerId": customer_id,
        "items": [{"productId": product_id, "quantity": 2, "price": 12.5}],
    }

    status, answer = call("create_order", http_request("POST", "/api/orders", order))

    assert status == 201
    assert write_rows("SELECT customer_id, total FROM orders WHERE id = %s", answer["orderId"]) == [
        (customer_id, Decimal("25.00"))
    ]
    assert write_rows("SELECT stock FROM products WHERE id = %s", product_id) == [(3,)]


def test_a_binary_body_arrives_decoded(unique):
    """API Gateway base64-encodes a body it does not know to be text; apig-wsgi decodes it."""
    body = {"name": unique, "category": "Tech", "price": 1, "stock": 1}
    event = http_request("POST", "/api/products", raw=jsonio.dumps(body).encode())
    assert event["isBase64Encoded"] is True
    assert call("create_product", event)[0] == 201


@pytest.mark.parametrize(
    ("name", "event", "status", "field"),
    [
        (
            "create_product",
            http_request(
                "POST", "/api/products", {"name": "", "category": "T", "price": 1, "stock": 1}
            ),
            400,
            "name",
        ),
        ("create_product", http_request("POST", "/api/products", raw=b"not json"), 400, None),
        (
            "create_order",
            http_request(
                "POST",
                "/api/orders",
                {
                    "customerId": 1,
                    "items": [{"productId": 9_000_000_000, "quantity": 1, "price": 1}],
                },
            ),
            400,
            None,
        ),
        ("create_order", http_request("GET", "/api/orders"), 405, None),
        ("analytics", http_request("GET", "/api/analytics/products/999999999/sales"), 404, None),
        ("analytics", http_request("GET", "/api/analytics/nothing-here"), 404, None),
        (
            "analytics",
            http_request("GET", "/api/analytics/customers/abc/lifetime-value"),
            400,
            "customerId",
        ),
    ],
)
def test_errors_are_the_same_json_as_everywhere(name, event, status, field):
    before = write_rows("SELECT (SELECT count(*) FROM products), (SELECT count(*) FROM orders)")

    got, body = call(name, event)

    assert got == status
    assert isinstance(body["error"], str) and body["error"]
    if field:
        assert body["field"] == field
    assert (
        write_rows("SELECT (SELECT count(*) FROM products), (SELECT count(*) FROM orders)")
        == before
    )


def test_a_body_over_the_limit_is_413():
    limit = settings().max_body_bytes
    event = http_request(
        "POST", "/api/products", {"name": "x" * limit, "category": "T", "price": 1, "stock": 1}
    )

    status, body = call("create_product", event)

    assert status == 413
    assert body["limit"] == limit


@pytest.mark.parametrize("name", HTTP_FUNCTIONS)
def test_every_http_function_answers_health_and_its_openapi_document(name):
    assert call(name, http_request("GET", "/health")) == (200, {"status": "ok"})
    status, document = call(name, http_request("GET", "/openapi.json"))
    assert status == 200 and document["openapi"].startswith("3.")


def test_analytics_reads_the_query_string():
    query = "from=2026-01-01T00:00:00Z&to=2026-01-01T02:00:00Z"
    status, body = call(
        "analytics", http_request("GET", "/api/analytics/sales/hourly", query=query)
    )
    assert status == 200
    assert body["from"].startswith("2026-01-01T00:00:00")


def test_an_http_handler_answers_as_its_functions_framework_app(unique):
    """Same request through both entry points: same status, same body."""
    path = f"/api/analytics/categories/never-{unique}/revenue"
    direct = Client(load(by_name("analytics"))).get(path)
    assert call("analytics", http_request("GET", path)) == (direct.status_code, direct.json)


# --- outbox_relay: EventBridge Scheduler ----------------------------------------------------


@pytest.fixture
def empty_outbox(services):
    """Nothing unpublished and nothing queued from other tests."""
    lambda_handler("outbox_relay")(load_event("eventbridge_scheduled"), FakeContext(2))
    for queue in broker.QUEUES:
        drain_queue(queue)


def add_product_event(name: str) -> dict:
    event = events.product_created(1, name, "Tech", Decimal("1.00"), 1, events.now())
    with psycopg.connect(settings().database_url) as conn:
        outbox.append(conn, event)
    return event


def published_ids() -> list[str]:
    return [jsonio.loads(body)["eventId"] for _, body in drain_queue(events.PRODUCT_EVENTS)]


def test_relay_drains_the_outbox_on_a_scheduled_event(empty_outbox, unique):
    sent = [add_product_event(f"{unique}-{i}")["eventId"] for i in range(3)]

    result = lambda_handler("outbox_relay")(load_event("eventbridge_scheduled"), FakeContext(1.0))

    assert result == {"published": 3, "batches": 1}
    assert published_ids() == sent
    assert write_rows("SELECT count(*) FROM outbox WHERE published_at IS NULL") == [(0,)]


def test_relay_watches_until_its_budget_and_returns_before_lambdas_timeout(
    empty_outbox, unique, monkeypatch
):
    """With 2 s left and the margin, the budget is 1 s: a row written during it leaves at once,
    and the invocation returns after the budget, well before Lambda would kill it."""
    monkeypatch.setenv("RELAY_WATCH", "true")
    runtime.current().reset(SETTINGS)
    context = FakeContext(2.0)
    assert lambda_entry.relay_budget(context) == pytest.approx(1.0, abs=0.05)
    late: list[str] = []
    writer = threading.Timer(0.2, lambda: late.append(add_product_event(unique)["eventId"]))

    started = time.monotonic()
    writer.start()
    result = lambda_handler("outbox_relay")(load_event("eventbridge_scheduled"), context)
    elapsed = time.monotonic() - started

    assert result["published"] == 1
    assert published_ids() == late
    assert 0.9 <= elapsed < 1.5
    assert context.get_remaining_time_in_millis() > 400


def test_the_safety_margin_never_takes_more_than_half_of_the_time():
    assert lambda_entry.relay_budget(FakeContext(70)) == pytest.approx(60, abs=0.1)
    assert lambda_entry.relay_budget(FakeContext(4)) == pytest.approx(2, abs=0.1)
    assert lambda_entry.relay_budget(FakeContext(0)) == 0


def test_the_scheduler_cloudevent_drives_the_functions_framework_relay(empty_outbox, unique):
    """The same drain through the relay's other entry point, with the canonical CloudEvent in
    structured mode, as functions-framework receives it."""
    sent = add_product_event(unique)["eventId"]
    client = Client(load(by_name("outbox_relay")))

    response = client.post(
        "/",
        data=jsonio.dumps(load_event("cloudevent_scheduler")),
        content_type="application/cloudevents+json",
    )

    assert response.status_code == 200
    assert published_ids() == [sent]


# --- projector: Amazon MQ for RabbitMQ event source mapping -------------------------------


@pytest.fixture
def empty_dead_letters(services):
    drain_queue(broker.DEAD_LETTER_QUEUE)


def delivery(item: dict | bytes, sequence: int = 1) -> tuple[pika.BasicProperties, bytes]:
    body = item if isinstance(item, bytes) else jsonio.dumps(item).encode()
    message_id = None if isinstance(item, bytes) else item["eventId"]
    headers = {"ce-sequence": str(sequence), "ce-type": "x"}
    return pika.BasicProperties(message_id=message_id, headers=headers), body


def test_projector_applies_a_batch_and_parks_the_poison_message(empty_dead_letters, customer_id):
    p, q, cat = ids()
    first = order_event(1, customer_id, [(p, 2, "10.00", cat)])
    second = order_event(2, customer_id, [(p, 1, "10.00", cat), (q, 3, "1.50", cat)])
    poison = b'{"eventType": "OrderShipped", "eventId": "x"}'
    event = amq_batch(events.ORDER_EVENTS, [delivery(first), delivery(poison), delivery(second)])

    result = lambda_handler("projector")(event, FakeContext(30))

    assert result == {"received": 3, "applied": 2, "duplicates": 0, "deadLettered": 1}
    assert product_sales(p) == [(3, Decimal("30.00"), 2)]
    assert product_sales(q) == [(3, Decimal("4.50"), 1)]
    [(props, body)] = drain_queue(broker.DEAD_LETTER_QUEUE)
    assert body == poison
    assert "unknown eventType" in props.headers[broker.REASON_HEADER]
    assert props.headers["x-original-queue"] == events.ORDER_EVENTS
    # the documented sample's own headers travel with it, decoded from their byte arrays
    assert props.headers["header1"] == "value1"
    assert props.headers["numberInHeader"] == 10


def test_a_redelivered_batch_counts_once(empty_dead_letters, customer_id):
    p, _, cat = ids()
    event = amq_batch(
        events.ORDER_EVENTS, [delivery(order_event(1, customer_id, [(p, 4, "1.25", cat)]))]
    )

    lambda_handler("projector")(event, FakeContext(30))
    again = lambda_handler("projector")(event, FakeContext(30))

    assert again["duplicates"] == 1 and again["applied"] == 0
    assert product_sales(p) == [(4, Decimal("5.00"), 1)]


def test_the_documented_sample_message_itself_is_parked_not_fatal(empty_dead_letters):
    """AWS's sample carries `{"timeout":0,...}`, not one of our events: parked with a reason."""
    event = load_event("amazonmq_rabbitmq_batch")

    result = lambda_handler("projector")(event, FakeContext(30))

    assert result["deadLettered"] == 1 and result["applied"] == 0
    [(props, _)] = drain_queue(broker.DEAD_LETTER_QUEUE)
    assert props.headers["x-original-queue"] == "pizzaQueue"


def test_a_product_event_gives_zero_sales_rows(empty_dead_letters):
    p, _, cat = ids()
    event = amq_batch(events.PRODUCT_EVENTS, [delivery(product_event(p, cat))])
    assert lambda_handler("projector")(event, FakeContext(30))["applied"] == 1
    assert product_sales(p) == [(0, Decimal("0"), 0)]


def test_projector_raises_on_an_outage_and_the_redelivered_batch_completes(
    empty_dead_letters, customer_id, monkeypatch
):
    """The broker is down when the poison message must be parked: the invocation raises, so the
    mapping redelivers the whole batch; the second time, the event already applied counts as a
    duplicate and the poison message is parked. (A broker outage, not a database one: an
    unreachable database costs the pool's connect timeout twice, 10 s of test time.)"""
    p, _, cat = ids()
    good = order_event(1, customer_id, [(p, 1, "2.00", cat)])
    event = amq_batch(events.ORDER_EVENTS, [delivery(good), delivery(b"not json")])
    monkeypatch.setenv("BROKER_URL", "amqp://guest:guest@127.0.0.1:1/")
    stack.reset_process_state()
    try:
        with pytest.raises(broker.CONNECTION_ERRORS):
            lambda_handler("projector")(event, FakeContext(30))
    finally:
        monkeypatch.undo()
        stack.reset_process_state()

    again = lambda_handler("projector")(event, FakeContext(30))

    assert again == {"received": 2, "applied": 0, "duplicates": 1, "deadLettered": 1}
    assert product_sales(p) == [(1, Decimal("2.00"), 1)]
    [(_, body)] = drain_queue(broker.DEAD_LETTER_QUEUE)
    assert body == b"not json"


def test_a_token_wait_never_outlasts_the_lambda(unique):
    """A wait asked for beyond the invocation's time ends early enough to answer: 503, not a
    timeout that API Gateway would turn into its own error."""
    event = http_request(
        "GET",
        "/api/analytics/sync-status",
        headers={"x-consistency-token": "c1.9223372036854775000", "prefer": "wait=30"},
    )
    started = time.monotonic()
    response = lambda_handler("analytics")(event, FakeContext(3.0))
    elapsed = time.monotonic() - started
    assert response["statusCode"] == 503
    assert response["headers"]["retry-after"] == "1"
    assert elapsed < 3.0  # within the invocation's time, with room to answer
