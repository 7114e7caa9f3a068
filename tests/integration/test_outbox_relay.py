"""outbox_relay through its CloudEvent entry point, with the real broker."""

from __future__ import annotations

import threading
from decimal import Decimal

import psycopg
import pytest

from shopcore import events
from shopcore.pipeline import broker, outbox
from shopcore.pipeline.publisher import PublishFailed, WindowedPublisher
from shopcore.platform import jsonio
from shopcore.platform.config import settings
from tests.support.functions import drain_queue, relay_invoker, write_rows


def add_product_event(name: str) -> dict:
    event = events.product_created(1, name, "Tech", Decimal("1.00"), 1, events.now())
    with psycopg.connect(settings().database_url) as conn:
        outbox.append(conn, event)
    return event


@pytest.fixture(autouse=True)
def _empty_queues(services):
    for queue in broker.QUEUES:
        drain_queue(queue)
    # leave nothing unpublished from other tests
    assert relay_invoker()({}) == 200
    for queue in broker.QUEUES:
        drain_queue(queue)


def test_publishes_each_event_as_a_cloudevent_and_marks_it(unique):
    sent = [add_product_event(f"{unique}-{i}") for i in range(3)]

    assert relay_invoker()({}) == 200

    taken = drain_queue(events.PRODUCT_EVENTS)
    assert [jsonio.loads(body)["eventId"] for _, body in taken] == [e["eventId"] for e in sent]
    props, _body = taken[0]
    assert props.message_id == sent[0]["eventId"]
    assert props.delivery_mode == 2  # persistent
    assert props.content_type == "application/json"
    headers = props.headers
    assert headers["ce-id"] == sent[0]["eventId"]
    assert headers["ce-type"] == "ProductCreated"
    assert headers["ce-specversion"] == "1.0"
    assert headers["ce-time"] == sent[0]["occurredAt"]
    assert headers["ce-subject"] == "1"
    assert headers["ce-source"]
    [(outbox_id,)] = write_rows(
        "SELECT id FROM outbox WHERE payload->>'eventId' = %s", sent[0]["eventId"]
    )
    assert headers["ce-sequence"] == str(outbox_id)
    assert write_rows("SELECT count(*) FROM outbox WHERE published_at IS NULL") == [(0,)]


def test_money_digits_survive_the_trip(unique):
    event = add_product_event(unique)
    assert relay_invoker()({}) == 200
    [(_, body)] = drain_queue(events.PRODUCT_EVENTS)
    assert b'"price": 1.00' in body or b'"price":1.00' in body
    assert jsonio.loads(body)["eventId"] == event["eventId"]


def test_published_rows_are_kept_as_the_event_log(unique):
    event = add_product_event(unique)
    assert relay_invoker()({}) == 200
    drain_queue(events.PRODUCT_EVENTS)
    [(published_at,)] = write_rows(
        "SELECT published_at FROM outbox WHERE payload->>'eventId' = %s", event["eventId"]
    )
    assert published_at is not None


def test_concurrent_relays_publish_every_event_exactly_once(unique):
    sent = {add_product_event(f"{unique}-{i}")["eventId"] for i in range(400)}
    settings_batch = settings().relay_batch_size
    assert settings_batch >= 1
    invokers = [relay_invoker() for _ in range(4)]
    statuses: list[int] = []
    threads = [threading.Thread(target=lambda i=i: statuses.append(i({}))) for i in invokers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert statuses == [200] * 4
    got = [jsonio.loads(body)["eventId"] for _, body in drain_queue(events.PRODUCT_EVENTS)]
    assert sorted(got) == sorted(sent)


def _drain_with(publisher_class: type[WindowedPublisher], batch_size: int) -> None:
    url = settings().database_url
    connection = broker.connect()
    try:
        with (
            psycopg.connect(url, autocommit=True) as first,
            psycopg.connect(url, autocommit=True) as second,
        ):
            stores = (outbox.PostgresOutbox(first), outbox.PostgresOutbox(second))
            outbox.drain(stores, publisher_class(connection), batch_size, 10)
    finally:
        connection.close()


def test_crash_between_confirm_and_commit_republishes(unique):
    """At least once: a relay that dies after the broker confirmed but before its commit leaves
    the rows unpublished, so the next run sends them again (consumers dedupe by eventId)."""
    event = add_product_event(unique)

    class CrashAfterConfirm(WindowedPublisher):
        def wait_confirmed(self, ticket):
            super().wait_confirmed(ticket)
            raise KeyboardInterrupt("killed between confirm and commit")

    with pytest.raises(KeyboardInterrupt):
        _drain_with(CrashAfterConfirm, batch_size=10)

    assert write_rows(
        "SELECT published_at FROM outbox WHERE payload->>'eventId' = %s", event["eventId"]
    ) == [(None,)]
    assert relay_invoker()({}) == 200
    got = [jsonio.loads(body)["eventId"] for _, body in drain_queue(events.PRODUCT_EVENTS)]
    assert got == [event["eventId"], event["eventId"]]


def test_batches_in_flight_arrive_in_outbox_order(unique):
    """Two batches are in flight at once; the queue still gets every event once, in order."""
    sent = [add_product_event(f"{unique}-{i}")["eventId"] for i in range(45)]
    tickets: list[int] = []

    class Recording(WindowedPublisher):
        def send(self, rows):
            ticket = super().send(rows)
            tickets.append(ticket)
            return ticket

    _drain_with(Recording, batch_size=10)

    assert tickets == [10, 20, 30, 40, 45]
    got = [jsonio.loads(body)["eventId"] for _, body in drain_queue(events.PRODUCT_EVENTS)]
    assert got == sent
    assert write_rows("SELECT count(*) FROM outbox WHERE published_at IS NULL") == [(0,)]


def test_a_refused_batch_rolls_back_the_one_behind_it_too(unique):
    """When the broker refuses anything, no batch in flight is marked: all go out again."""
    sent = [add_product_event(f"{unique}-{i}")["eventId"] for i in range(20)]

    class FirstBatchRefused(WindowedPublisher):
        def wait_confirmed(self, ticket):
            self._failed.append("refused for the test")
            super().wait_confirmed(ticket)

    with pytest.raises(PublishFailed):
        _drain_with(FirstBatchRefused, batch_size=10)

    assert write_rows("SELECT count(*) FROM outbox WHERE published_at IS NULL") == [(20,)]
    drain_queue(events.PRODUCT_EVENTS)
    assert relay_invoker()({}) == 200
    got = [jsonio.loads(body)["eventId"] for _, body in drain_queue(events.PRODUCT_EVENTS)]
    assert got == sent


def test_relay_recovers_after_the_broker_drops_its_connection(unique):
    from shopcore.pipeline import relay
    from shopcore.platform import runtime

    add_product_event(f"{unique}-a")
    assert relay_invoker()({}) == 200
    cached = runtime.current().get(relay.PUBLISHERS).connection
    assert cached is not None
    cached.close()  # as if the broker went away between invocations
    event = add_product_event(f"{unique}-b")
    assert relay_invoker()({}) == 200
    got = [jsonio.loads(body)["eventId"] for _, body in drain_queue(events.PRODUCT_EVENTS)]
    assert got[-1] == event["eventId"]
