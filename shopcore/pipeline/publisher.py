"""Publishing outbox rows as CloudEvents, with windowed publisher confirms.

A confirm per message costs a broker round trip (and a disk sync) each; publishing the batch
and then waiting for the confirms lets the broker sync once for many. The window bounds how
many may be unconfirmed at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pika
import pika.channel
import pika.spec

from shopcore.pipeline.broker import EXCHANGE
from shopcore.pipeline.outbox import OutboxRow

CONFIRM_TIMEOUT_SECONDS = 30


class PublishFailed(Exception):
    """The broker nacked or returned (unroutable) a message, or did not confirm in time."""


def event_properties(row: OutboxRow) -> pika.BasicProperties:
    """CloudEvents AMQP binary binding: attributes as `ce-` headers, the event as JSON body.
    The attributes come with the row (the claim query reads them): no payload is parsed here."""
    return pika.BasicProperties(
        message_id=row.event_id,
        content_type="application/json",
        delivery_mode=pika.DeliveryMode.Persistent,
        type=row.event_type,
        headers={
            "ce-specversion": "1.0",
            "ce-id": row.event_id,
            "ce-type": row.event_type,
            "ce-source": f"/shop/{row.topic}",
            "ce-time": row.occurred_at,
            "ce-subject": row.subject,
            # the outbox id, so the read side can tell which write-side events it has
            "ce-sequence": str(row.id),
        },
    )


class WindowedPublisher:
    """Publishes a batch of outbox rows, persistent and `mandatory`, and returns only when the
    broker confirmed every one of them; raises PublishFailed otherwise."""

    def __init__(self, connection: pika.BlockingConnection, window: int = 1000) -> None:
        self.connection = connection
        self.window = window
        # pika's BlockingChannel waits for each confirm in turn; the channel underneath it
        # publishes without waiting and reports confirms to a callback, which is what a window
        # needs.
        self._blocking_channel = connection.channel()  # keeps the channel registered
        self._channel = self._blocking_channel._impl
        self._next_tag = 1  # delivery tags run 1, 2, ... per channel in confirm mode
        self._unconfirmed: set[int] = set()
        self._failed: list[str] = []
        ready: list[bool] = []
        self._channel.confirm_delivery(
            ack_nack_callback=self._on_confirm, callback=lambda _frame: ready.append(True)
        )
        self._channel.add_on_return_callback(self._on_return)
        self._wait_until(lambda: bool(ready))

    def send(self, rows: list[OutboxRow]) -> int:
        """Publish `rows` and hand them to the broker without waiting for its confirms;
        returns the ticket (the last delivery tag) to pass to `wait_confirmed`."""
        for row in rows:
            if len(self._unconfirmed) >= self.window:
                self._wait_until(lambda: len(self._unconfirmed) < self.window)
            self._channel.basic_publish(
                EXCHANGE,
                row.topic,
                row.payload.encode(),
                properties=event_properties(row),
                mandatory=True,
            )
            self._unconfirmed.add(self._next_tag)
            self._next_tag += 1
        # pika buffers what it publishes until its I/O loop runs: write it out now, so the
        # broker works on this batch while the caller prepares the next
        self.connection.process_data_events(time_limit=0)
        return self._next_tag - 1

    def wait_confirmed(self, ticket: int) -> None:
        """Return once every message up to `ticket` is confirmed; raise PublishFailed if the
        broker refused any message since the last failure (the caller republishes all it has
        not committed, so a failure is not attributed to one batch)."""
        self._wait_until(lambda: not self._unconfirmed or min(self._unconfirmed) > ticket)
        if self._failed:
            failed, self._failed = self._failed, []
            raise PublishFailed("; ".join(failed[:5]))

    def _on_confirm(self, frame: pika.frame.Method) -> None:
        method = frame.method
        if isinstance(method, pika.spec.Basic.Nack):
            self._failed.append(f"broker nacked delivery {method.delivery_tag}")
        if method.multiple:
            self._unconfirmed = {t for t in self._unconfirmed if t > method.delivery_tag}
        else:
            self._unconfirmed.discard(method.delivery_tag)

    def _on_return(
        self,
        _channel: pika.channel.Channel,
        method: pika.spec.Basic.Return,
        properties: pika.BasicProperties,
        _body: bytes,
    ) -> None:
        self._failed.append(f"unroutable: {properties.message_id} ({method.reply_text})")

    def _wait_until(self, done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + CONFIRM_TIMEOUT_SECONDS
        while not done():
            if time.monotonic() > deadline:
                raise PublishFailed("the broker did not confirm in time")
            # A confirm arrives through a callback that does not end a longer wait early:
            # poll in 1 ms steps so the batch returns as soon as its last confirm is in.
            self.connection.process_data_events(time_limit=0.001)
