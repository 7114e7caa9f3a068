"""The projector's queue trigger: consume RabbitMQ, batch, invoke, ack.

Like Amazon MQ's event source mapping: up to PROJECTOR_BATCH_SIZE messages, or whatever has
arrived PROJECTOR_BATCH_WINDOW_MS after the first, go to the projector in one invocation.
- 200: the batch is acked (one multiple-ack).
- 503 (database or broker unreachable): the batch is kept and re-invoked with backoff; the
  outage does not count against the messages' delivery limit.
- anything else: the batch is nacked and requeued; the quorum queue counts the delivery and
  dead-letters a message after its limit, so nothing is retried forever.
SIGTERM: the batch in hand finishes (or, if it cannot, returns to the queue), then exit.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel

from infra.functions import by_name
from infra.triggers.invoke import CloudEventInvoker
from shopcore.pipeline import broker, messages

log = logging.getLogger("infra.triggers.queue")

Delivery = tuple[str, pika.BasicProperties, bytes, bool, int]  # ..., delivery tag


class QueueTrigger:
    def __init__(
        self,
        batch_size: int,
        window_seconds: float,
        invoke: Callable[[dict[str, Any]], int] | None = None,
        max_backoff: float = 10.0,
        priority: int = 0,
    ) -> None:
        """`invoke(batch_event) -> HTTP status`; by default the projector, in-process.
        `priority`: RabbitMQ's consumer priority (x-priority). The broker gives a lower-priority
        consumer messages only while every higher one has its prefetch full, that is, only
        under a backlog; so extra consumers help a catch-up without splitting a light stream
        into smaller, costlier batches."""
        self.batch_size = batch_size
        self.priority = priority
        self.window = window_seconds
        self.max_backoff = max_backoff
        self.stop = threading.Event()
        self.function = by_name("projector")
        self.invoke = invoke or CloudEventInvoker(
            self.function, "//local/rabbitmq", "dev.shop.rabbitmq.messages"
        )
        self.buffer: list[Delivery] = []

    def run(self) -> None:
        backoff = 0.0
        while not self.stop.is_set():
            try:
                self._consume()
                backoff = 0.0
            except broker.CONNECTION_ERRORS as exc:
                backoff = min(self.max_backoff, max(0.25, backoff * 2))
                log.warning("broker connection lost (%s); reconnecting in %.2fs", exc, backoff)
                self.buffer.clear()  # unacked deliveries return to the queue by themselves
                self.stop.wait(backoff)

    def _consume(self) -> None:
        connection = broker.connect()
        try:
            channel = connection.channel()
            broker.declare_topology(channel)
            channel.basic_qos(prefetch_count=self.batch_size * 2)
            for queue in self.function.queues:
                channel.basic_consume(
                    queue, self._on_message_for(queue), arguments={"x-priority": self.priority}
                )
            while not self.stop.is_set():
                self._fill(connection)
                if self.buffer:
                    self._deliver(channel)
        finally:
            if connection.is_open:
                with contextlib.suppress(*broker.CONNECTION_ERRORS):
                    connection.close()  # unacked messages go back to their queues

    def _on_message_for(self, queue: str):
        def on_message(
            _ch: BlockingChannel,
            method: pika.spec.Basic.Deliver,
            props: pika.BasicProperties,
            body: bytes,
        ) -> None:
            self.buffer.append((queue, props, body, method.redelivered, method.delivery_tag))

        return on_message

    def _fill(self, connection: pika.BlockingConnection) -> None:
        """Wait for a first message (up to 0.5 s), then up to the window for more."""
        deadline = None
        while len(self.buffer) < self.batch_size and not self.stop.is_set():
            if self.buffer and deadline is None:
                deadline = time.monotonic() + self.window
            remaining = 0.5 if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                break
            connection.process_data_events(time_limit=remaining)
            if deadline is None and not self.buffer:
                return

    def _deliver(self, channel: BlockingChannel) -> None:
        batch, self.buffer = self.buffer[: self.batch_size], self.buffer[self.batch_size :]
        event = messages.to_batch([(q, p, b, r) for q, p, b, r, _tag in batch], header_bytes=False)
        last_tag = max(tag for *_rest, tag in batch)
        backoff = 0.0
        while True:
            status = self.invoke(event)
            if status == 200:
                channel.basic_ack(last_tag, multiple=True)
                return
            if status != 503 or self.stop.is_set():
                log.warning("projector failed (HTTP %s); requeueing %d", status, len(batch))
                channel.basic_nack(last_tag, multiple=True, requeue=True)
                return
            backoff = min(self.max_backoff, max(0.25, backoff * 2))
            log.warning("projector unavailable (HTTP 503); retrying in %.2fs", backoff)
            # keep heartbeats flowing while we wait, so the broker does not drop us
            channel.connection.sleep(backoff)
