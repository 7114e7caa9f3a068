"""The local queue trigger against the real broker: batching, acks, the delivery limit."""

from __future__ import annotations

import threading
import time

import pytest

from infra.triggers.queue import QueueTrigger
from shopcore import events
from shopcore.pipeline import broker, messages
from tests.support.functions import drain_queue, publish_raw


@pytest.fixture(autouse=True)
def _empty(services):
    for queue in (*broker.QUEUES, broker.DEAD_LETTER_QUEUE):
        drain_queue(queue)


def run_until(trigger: QueueTrigger, done, timeout: float = 20) -> None:
    thread = threading.Thread(target=trigger.run)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, "condition not reached"
            time.sleep(0.05)
    finally:
        trigger.stop.set()
        thread.join(10)
    assert not thread.is_alive()


def test_batches_messages_and_acks_after_success():
    batches: list[list[messages.QueueMessage]] = []

    def invoke(event: dict) -> int:
        batches.append(messages.from_batch(event))
        return 200

    for i in range(25):
        publish_raw(events.ORDER_EVENTS, f"m{i}".encode(), message_id=f"id-{i}")
    trigger = QueueTrigger(batch_size=10, window_seconds=0.05, invoke=invoke)
    run_until(trigger, lambda: sum(len(b) for b in batches) >= 25)

    assert max(len(b) for b in batches) <= 10
    assert sorted(m.body for b in batches for m in b) == sorted(f"m{i}".encode() for i in range(25))
    assert drain_queue(events.ORDER_EVENTS) == []  # all acked


def test_a_batch_that_keeps_failing_is_dead_lettered_after_the_delivery_limit():
    attempts: list[int] = []

    def invoke(event: dict) -> int:
        attempts.append(len(messages.from_batch(event)))
        return 500

    publish_raw(events.ORDER_EVENTS, b"fails every time", message_id="doomed")
    trigger = QueueTrigger(batch_size=10, window_seconds=0.01, invoke=invoke)
    parked: list = []
    run_until(trigger, lambda: parked.extend(drain_queue(broker.DEAD_LETTER_QUEUE)) or parked)

    [(props, body)] = parked
    assert body == b"fails every time"
    assert props.message_id == "doomed"
    assert props.headers["x-death"][0]["reason"] == "delivery_limit"
    assert len(attempts) in (broker.DELIVERY_LIMIT, broker.DELIVERY_LIMIT + 1)


def test_unavailable_projector_keeps_the_batch_without_using_up_deliveries():
    """Eight 503s in a row (more than the delivery limit) and the message is still applied:
    an outage is retried in place, not counted against the message."""
    statuses = iter([503] * 8 + [200] * 100)
    calls: list[int] = []

    def invoke(event: dict) -> int:
        status = next(statuses)
        calls.append(status)
        return status

    publish_raw(events.ORDER_EVENTS, b"wait for the database", message_id="patient")
    trigger = QueueTrigger(batch_size=10, window_seconds=0.01, invoke=invoke, max_backoff=0.05)
    run_until(trigger, lambda: 200 in calls)

    assert calls == [503] * 8 + [200]
    assert drain_queue(broker.DEAD_LETTER_QUEUE) == []
    assert drain_queue(events.ORDER_EVENTS) == []  # acked


def test_a_lower_priority_consumer_gets_messages_only_under_a_backlog():
    """Two triggers as the local emulation runs them (priorities 1 and 0): a trickle goes to
    the first alone, in whole batches; a backlog larger than its prefetch reaches both."""
    got: dict[str, list[int]] = {"first": [], "second": []}

    def invoker(name: str):
        def invoke(event: dict) -> int:
            got[name].append(len(messages.from_batch(event)))
            time.sleep(0.05)  # slow enough that a backlog fills the first one's prefetch
            return 200

        return invoke

    first = QueueTrigger(batch_size=5, window_seconds=0.01, invoke=invoker("first"), priority=1)
    second = QueueTrigger(batch_size=5, window_seconds=0.01, invoke=invoker("second"), priority=0)
    threads = [threading.Thread(target=t.run) for t in (first, second)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1)  # both consuming
        for i in range(10):  # a trickle
            publish_raw(events.ORDER_EVENTS, f"t{i}".encode(), message_id=f"t{i}")
            time.sleep(0.1)
        deadline = time.monotonic() + 10
        while sum(got["first"]) < 10:
            assert time.monotonic() < deadline, got
            time.sleep(0.05)
        assert sum(got["second"]) == 0, got

        for i in range(200):  # a backlog: 20x the first one's prefetch (2 batches)
            publish_raw(events.ORDER_EVENTS, f"b{i}".encode(), message_id=f"b{i}")
        deadline = time.monotonic() + 30
        while sum(got["first"]) + sum(got["second"]) < 210:
            assert time.monotonic() < deadline, got
            time.sleep(0.05)
        assert sum(got["second"]) > 0, got
    finally:
        for trigger in (first, second):
            trigger.stop.set()
        for thread in threads:
            thread.join(10)
    assert drain_queue(events.ORDER_EVENTS) == []  # every message acked once
