"""The Publisher port (what the relay's drain sends through), on the fake and on RabbitMQ."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from shopcore import events
from shopcore.pipeline.publisher import PublishFailed
from shopcore.platform import jsonio

T0 = datetime(2024, 5, 1, 10, 15, tzinfo=UTC)


def claimed(backend, *events_: dict, topic: str | None = None):
    for event in events_:
        backend.outbox.append(event, topic)
    return backend.outbox.session().claim(100)


def test_sent_rows_reach_their_queues_in_order_as_cloudevents(backend):
    products = [events.product_created(i, "p", "c", Decimal("1.00"), 1, T0) for i in (1, 2, 3)]
    order = events.order_created(9, 4, Decimal("1.00"), [], T0)
    rows = claimed(backend, *products, order)
    publisher = backend.broker.publisher()

    first = publisher.send(rows[:2])
    second = publisher.send(rows[2:])
    publisher.wait_confirmed(second)

    assert first < second
    taken = backend.broker.take(events.PRODUCT_EVENTS)
    assert [jsonio.loads(body)["eventId"] for _, body in taken] == [p["eventId"] for p in products]
    props, body = taken[0]
    assert body.decode() == rows[0].payload
    assert props.message_id == products[0]["eventId"]
    assert props.delivery_mode == 2  # persistent
    assert props.headers["ce-type"] == "ProductCreated"
    assert props.headers["ce-sequence"] == str(rows[0].id)
    [(props, _)] = backend.broker.take(events.ORDER_EVENTS)
    assert (props.headers["ce-subject"], props.headers["ce-id"]) == ("9", order["eventId"])


def test_a_message_no_queue_takes_fails_the_wait(backend):
    rows = claimed(backend, events.product_created(1, "p", "c", Decimal("1.00"), 1, T0))
    rows += claimed(
        backend, events.product_created(2, "p", "c", Decimal("1.00"), 1, T0), topic="nowhere"
    )
    publisher = backend.broker.publisher()

    ticket = publisher.send(rows)
    with pytest.raises(PublishFailed, match="unroutable"):
        publisher.wait_confirmed(ticket)
    assert len(backend.broker.take(events.PRODUCT_EVENTS)) == 1  # the routable one went
    publisher.wait_confirmed(ticket)  # a failure is reported once
