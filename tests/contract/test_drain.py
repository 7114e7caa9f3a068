"""The relay's drain (shopcore/pipeline/outbox.py) on every backend: order, batches in flight,
refusals, crashes between confirm and mark, watching, stopping, concurrent relays."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from shopcore import events
from shopcore.pipeline.outbox import drain
from shopcore.pipeline.publisher import PublishFailed
from shopcore.platform import jsonio

T0 = datetime(2024, 5, 1, 10, 15, tzinfo=UTC)


def add(backend, count: int, topic: str | None = None) -> list[str]:
    """`count` events in the outbox; their ids."""
    sent = []
    for i in range(count):
        event = events.product_created(i + 1, f"p{i}", "c", Decimal("1.00"), 1, T0)
        backend.outbox.append(event, topic)
        sent.append(event["eventId"])
    return sent


def published(backend) -> list[str]:
    return [jsonio.loads(body)["eventId"] for _, body in backend.broker.take(events.PRODUCT_EVENTS)]


def run(backend, publisher=None, batch_size: int = 10, **options):
    stores = (backend.outbox.session(), backend.outbox.session())
    return drain(stores, publisher or backend.broker.publisher(), batch_size, 10, **options)


class Recording:
    """A publisher that records the tickets it hands out and can die after a confirm."""

    def __init__(self, inner, die_after_confirm: bool = False) -> None:
        self.inner, self.die_after_confirm = inner, die_after_confirm
        self.tickets: list[int] = []

    def send(self, rows):
        ticket = self.inner.send(rows)
        self.tickets.append(ticket)
        return ticket

    def wait_confirmed(self, ticket):
        self.inner.wait_confirmed(ticket)
        if self.die_after_confirm:
            raise KeyboardInterrupt("killed between confirm and mark")


def test_everything_goes_out_once_in_outbox_order_and_is_marked(backend):
    sent = add(backend, 45)

    result = run(backend, batch_size=10)

    assert (result.published, result.batches) == (45, 5)
    assert published(backend) == sent
    assert backend.outbox.unpublished() == []
    assert (run(backend).published, published(backend)) == (0, [])  # nothing twice


def test_two_batches_are_in_flight_and_the_queue_still_gets_outbox_order(backend):
    sent = add(backend, 45)
    publisher = Recording(backend.broker.publisher())

    run(backend, publisher, batch_size=10)

    assert publisher.tickets == [10, 20, 30, 40, 45]
    assert published(backend) == sent


def test_a_refused_message_leaves_every_batch_in_flight_unmarked(backend):
    add(backend, 5, topic="nowhere")  # the first batch cannot be routed
    add(backend, 15)

    with pytest.raises(PublishFailed):
        run(backend, batch_size=10)

    assert len(backend.outbox.unpublished()) == 20  # the batch behind it went back too
    assert len(backend.outbox.session().claim(100)) == 20  # and both were let go at once


def test_a_crash_between_confirm_and_mark_publishes_again(backend):
    [event_id] = add(backend, 1)

    with pytest.raises(KeyboardInterrupt):
        run(backend, Recording(backend.broker.publisher(), die_after_confirm=True))
    assert len(backend.outbox.unpublished()) == 1

    assert run(backend).published == 1
    assert published(backend) == [event_id, event_id]  # at least once


def test_watching_sends_rows_written_during_the_budget(backend):
    late: list[str] = []
    writer = threading.Timer(0.2, lambda: late.extend(add(backend, 1)))
    writer.start()
    stores = (backend.outbox.session(), backend.outbox.session())

    started = time.monotonic()
    result = drain(stores, backend.broker.publisher(), 10, budget_seconds=0.6, watch=True)

    assert time.monotonic() - started >= 0.55  # watched until the budget
    assert result.published == 1
    assert published(backend) == late


def test_a_stop_request_ends_the_drain_before_the_next_claim(backend):
    add(backend, 5)
    stop = threading.Event()
    stop.set()
    assert run(backend, stop=stop).published == 0
    assert len(backend.outbox.unpublished()) == 5


def test_concurrent_relays_publish_every_event_exactly_once(backend):
    sent = add(backend, 300)
    results = []
    relays = [
        threading.Thread(target=lambda: results.append(run(backend, batch_size=25)))
        for _ in range(3)
    ]
    for relay in relays:
        relay.start()
    for relay in relays:
        relay.join()

    assert sum(r.published for r in results) == 300
    assert sorted(published(backend)) == sorted(sent)
    assert backend.outbox.unpublished() == []
