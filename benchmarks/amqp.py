"""RabbitMQ ceilings: publish with windowed confirms, consume with prefetch and multiple acks.

With pika (the client the relay and the projector use), on a scratch queue of the system's
kind (durable quorum queue, in the run's sandbox vhost), with messages of the system's shape:
an OrderCreated event as the relay sends it (persistent, the CloudEvents headers,
`mandatory`). Both run on a SelectConnection, so the client never waits for one confirm before
sending the next message: up to `window` are in flight. Client CPU is the thread's CPU time.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pika
import pika.spec

QUEUE = "bench.ceiling"


def sample_message() -> tuple[bytes, pika.BasicProperties]:
    """An OrderCreated of two lines, with the properties the relay gives an event (the
    CloudEvents AMQP binary binding, persistent)."""
    event_id = str(uuid.uuid4())
    occurred = "2026-01-01T12:00:00.000Z"
    event = {
        "eventId": event_id, "eventType": "OrderCreated", "occurredAt": occurred,
        "orderId": 1, "customerId": 42, "total": 22.48,
        "items": [
            {"productId": 101, "quantity": 2, "price": 9.99, "name": "bench product 0-1",
             "category": "bench-cat-01"},
            {"productId": 202, "quantity": 1, "price": 2.50, "name": "bench product 1-7",
             "category": "bench-cat-02"},
        ],
    }  # fmt: skip
    properties = pika.BasicProperties(
        message_id=event_id,
        content_type="application/json",
        delivery_mode=pika.DeliveryMode.Persistent,
        type="OrderCreated",
        headers={
            "ce-specversion": "1.0",
            "ce-id": event_id,
            "ce-type": "OrderCreated",
            "ce-source": "/shop/order-events",
            "ce-time": occurred,
            "ce-subject": "1",
            "ce-sequence": "1",
        },
    )
    return json.dumps(event).encode(), properties


def prepare(url: str, queue: str = QUEUE) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    channel.queue_purge(queue)
    connection.close()


def delete(url: str, queue: str = QUEUE) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    connection.channel().queue_delete(queue)
    connection.close()


class _Run:
    """One SelectConnection driven by callbacks until `finish`."""

    def __init__(self, url: str, timeout: float) -> None:
        self.error: str | None = None
        self.started = self.elapsed = 0.0
        self.cpu_started = self.cpu = 0.0
        self.connection = pika.SelectConnection(
            pika.URLParameters(url),
            on_open_callback=self._opened,
            on_open_error_callback=self._failed,
            on_close_callback=self._closed,
        )
        self.connection.ioloop.call_later(timeout, lambda: self.finish("timed out"))

    def go(self) -> None:
        self.connection.ioloop.start()
        if self.error:
            raise RuntimeError(f"{type(self).__name__}: {self.error}")

    def on_channel(self, channel: Any) -> None:
        raise NotImplementedError

    def start_clock(self) -> None:
        self.started, self.cpu_started = time.perf_counter(), time.thread_time()

    def stop_clock(self) -> None:
        self.elapsed = time.perf_counter() - self.started
        self.cpu = time.thread_time() - self.cpu_started

    def finish(self, error: str | None = None) -> None:
        if error and not self.error:
            self.error = error
        if self.connection.is_open:
            self.connection.close()
        elif not self.connection.is_closing:
            self.connection.ioloop.stop()

    def _opened(self, connection: pika.SelectConnection) -> None:
        connection.channel(on_open_callback=self.on_channel)

    def _failed(self, connection: pika.SelectConnection, exc: Exception) -> None:
        self.error = f"cannot connect: {exc}"
        connection.ioloop.stop()

    def _closed(self, connection: pika.SelectConnection, reason: Exception) -> None:
        connection.ioloop.stop()


class _Publisher(_Run):
    def __init__(self, url: str, queue: str, count: int, window: int, timeout: float) -> None:
        super().__init__(url, timeout)
        self.queue, self.count, self.window = queue, count, window
        self.body, self.properties = sample_message()
        self.published = self.confirmed = self.nacked = self.returned = 0
        self.acked_up_to = 0  # every tag <= this is confirmed
        self.singles: set[int] = set()  # tags above it confirmed one by one

    def on_channel(self, channel: Any) -> None:
        self.channel = channel
        channel.add_on_return_callback(self._returned)
        channel.confirm_delivery(self._confirmed, callback=self._ready)

    def _ready(self, _frame: Any) -> None:
        self.start_clock()
        self._pump()

    def _pump(self) -> None:
        while self.published < self.count and self.published - self.confirmed < self.window:
            self.channel.basic_publish(
                "", self.queue, self.body, properties=self.properties, mandatory=True
            )
            self.published += 1

    def _returned(self, *_args: Any) -> None:
        self.returned += 1

    def _confirmed(self, frame: Any) -> None:
        method = frame.method
        tag = method.delivery_tag
        newly = 0
        if method.multiple:
            for t in range(self.acked_up_to + 1, tag + 1):
                if t in self.singles:
                    self.singles.discard(t)
                else:
                    newly += 1
            self.acked_up_to = max(self.acked_up_to, tag)
        elif tag > self.acked_up_to and tag not in self.singles:
            self.singles.add(tag)
            newly = 1
        self.confirmed += newly
        if isinstance(method, pika.spec.Basic.Nack):
            self.nacked += newly
        if self.confirmed >= self.count:
            self.stop_clock()
            self.finish()
        else:
            self._pump()


class _Consumer(_Run):
    def __init__(
        self, url: str, queue: str, count: int, prefetch: int, ack_every: int, timeout: float
    ) -> None:
        super().__init__(url, timeout)
        self.queue, self.count = queue, count
        self.prefetch, self.ack_every = prefetch, ack_every
        self.received = 0

    def on_channel(self, channel: Any) -> None:
        self.channel = channel
        channel.basic_qos(prefetch_count=self.prefetch, callback=self._qos_ok)

    def _qos_ok(self, _frame: Any) -> None:
        self.start_clock()
        self.channel.basic_consume(self.queue, self._message)

    def _message(self, channel: Any, method: Any, _properties: Any, _body: bytes) -> None:
        self.received += 1
        if self.received % self.ack_every == 0 or self.received >= self.count:
            channel.basic_ack(method.delivery_tag, multiple=True)
        if self.received == self.count:
            self.stop_clock()
            self.finish()


def publish(
    url: str, count: int, window: int = 1000, queue: str = QUEUE, timeout: float = 300
) -> dict[str, Any]:
    run = _Publisher(url, queue, count, window, timeout)
    run.go()
    if run.nacked or run.returned:
        raise RuntimeError(f"publish ceiling: {run.nacked} nacked, {run.returned} returned")
    return {
        "messages": count,
        "window": window,
        "bodyBytes": len(run.body),
        "seconds": round(run.elapsed, 4),
        "perSecond": round(count / run.elapsed, 1),
        "clientCpuSeconds": round(run.cpu, 3),
        "clientCores": round(run.cpu / run.elapsed, 3),
    }


def consume(
    url: str,
    count: int,
    prefetch: int = 1000,
    ack_every: int = 100,
    queue: str = QUEUE,
    timeout: float = 300,
) -> dict[str, Any]:
    run = _Consumer(url, queue, count, prefetch, ack_every, timeout)
    run.go()
    return {
        "messages": count,
        "prefetch": prefetch,
        "ackEvery": ack_every,
        "seconds": round(run.elapsed, 4),
        "perSecond": round(count / run.elapsed, 1),
        "clientCpuSeconds": round(run.cpu, 3),
        "clientCores": round(run.cpu / run.elapsed, 3),
    }
