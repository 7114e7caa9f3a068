"""The projector dying at the two moments that matter: before its commit and after it (before
the ack). Either way the batch comes back and is counted exactly once."""

from __future__ import annotations

import pytest

from shopcore import events
from shopcore.pipeline import broker
from shopcore.read import projections
from tests.support.functions import (
    as_batch,
    drain_queue,
    http_client,
    projector_invoker,
    read_rows,
    relay_invoker,
)


@pytest.fixture
def queued_product(unique):
    """A ProductCreated event waiting in its queue, not yet projected."""
    for queue in broker.QUEUES:
        drain_queue(queue)
    r = http_client("create_product").post(
        "/", json={"name": "Crash", "category": unique, "price": 1, "stock": 1}
    )
    assert relay_invoker()({}) == 200
    return r.json["productId"]


def take_unacked(connection):
    channel = connection.channel()
    method, props, body = channel.basic_get(events.PRODUCT_EVENTS, auto_ack=False)
    assert method is not None
    return method, props, body


def projected(product_id: int) -> int:
    return len(read_rows("SELECT 1 FROM product_catalog WHERE product_id = %s", product_id))


def test_crash_after_commit_before_ack_is_redelivered_and_absorbed(queued_product):
    connection = broker.connect()
    method, props, body = take_unacked(connection)
    assert not method.redelivered
    assert projector_invoker()(as_batch(events.PRODUCT_EVENTS, [(props, body)])) == 200
    connection.close()  # the process dies before its ack: the broker takes the message back

    connection = broker.connect()
    method, props, body = take_unacked(connection)
    assert method.redelivered
    assert projector_invoker()(as_batch(events.PRODUCT_EVENTS, [(props, body)])) == 200
    connection.close()
    assert projected(queued_product) == 1
    assert read_rows(
        "SELECT count(*) FROM processed_events WHERE event_id = %s", props.message_id
    ) == [(1,)]
    drain_queue(events.PRODUCT_EVENTS)


def test_crash_before_commit_leaves_nothing_and_the_redelivery_applies(queued_product, monkeypatch):
    real_add = projections.PostgresReadModels.add

    def die_before_commit(models: projections.PostgresReadModels, changes) -> None:
        real_add(models, changes)
        models.conn.pgconn.finish()  # the process is gone: its session ends, uncommitted
        raise KeyboardInterrupt("killed before COMMIT")

    connection = broker.connect()
    method, props, body = take_unacked(connection)
    monkeypatch.setattr(projections.PostgresReadModels, "add", die_before_commit)
    with pytest.raises(KeyboardInterrupt):
        projector_invoker()(as_batch(events.PRODUCT_EVENTS, [(props, body)]))
    monkeypatch.undo()
    connection.close()

    assert projected(queued_product) == 0  # rolled back with the session
    assert read_rows(
        "SELECT count(*) FROM processed_events WHERE event_id = %s", props.message_id
    ) == [(0,)]

    connection = broker.connect()
    method, props, body = take_unacked(connection)
    assert method.redelivered
    assert projector_invoker()(as_batch(events.PRODUCT_EVENTS, [(props, body)])) == 200
    connection.close()
    assert projected(queued_product) == 1
    drain_queue(events.PRODUCT_EVENTS)
