"""RabbitMQ: the topology (declared idempotently) and confirmed publishing.

Topology
    exchange `events` (direct, durable) --routing key = topic--> quorum queues
    `product-events` and `order-events` (CONTRACT). A message delivered DELIVERY_LIMIT times
    without an ack is moved by the broker to `events.dlx` (fanout) -> `events.dead-letter`.
    Quorum queues count deliveries themselves, so a message that crashes its consumer every
    time is still parked in the end: nothing is retried forever, nothing is dropped.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Mapping
from typing import Any

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from shopcore import events, jsonio
from shopcore.config import settings
from shopcore.outbox import OutboxRow

log = logging.getLogger("shopcore.broker")

EXCHANGE = "events"
DEAD_LETTER_EXCHANGE = "events.dlx"
DEAD_LETTER_QUEUE = "events.dead-letter"
QUEUES = (events.PRODUCT_EVENTS, events.ORDER_EVENTS)
# Part of the queues' identity: changing it needs the queues deleted and declared again.
DELIVERY_LIMIT = 5
REASON_HEADER = "x-dead-letter-reason"

# Errors that mean "the broker is unreachable or dropped us": retry later, on a new connection.
CONNECTION_ERRORS = (
    pika.exceptions.AMQPConnectionError,
    pika.exceptions.AMQPChannelError,
    pika.exceptions.StreamLostError,
    ConnectionError,
    OSError,
)


def connect(url: str | None = None) -> pika.BlockingConnection:
    params = pika.URLParameters(url or settings().broker_url)
    params.connection_attempts = 1
    params.socket_timeout = 5
    params.blocked_connection_timeout = 30
    params.client_properties = {"connection_name": "shop-analytics"}
    return pika.BlockingConnection(params)


def is_usable(connection: pika.BlockingConnection | None) -> bool:
    """True if a cached connection still talks to the broker (serves pending heartbeats)."""
    if connection is None or not connection.is_open:
        return False
    try:
        connection.process_data_events(time_limit=0)
    except CONNECTION_ERRORS:
        return False
    return connection.is_open


def declare_topology(channel: BlockingChannel) -> None:
    channel.exchange_declare(EXCHANGE, exchange_type="direct", durable=True)
    channel.exchange_declare(DEAD_LETTER_EXCHANGE, exchange_type="fanout", durable=True)
    channel.queue_declare(DEAD_LETTER_QUEUE, durable=True)
    channel.queue_bind(DEAD_LETTER_QUEUE, DEAD_LETTER_EXCHANGE)
    for queue in QUEUES:
        channel.queue_declare(
            queue,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-delivery-limit": DELIVERY_LIMIT,
                "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
                # dead-letter with confirms inside the broker, so parking cannot lose a message
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            },
        )
        channel.queue_bind(queue, EXCHANGE, routing_key=queue)


def event_properties(row: OutboxRow) -> pika.BasicProperties:
    """CloudEvents AMQP binary binding: attributes as `ce-` headers, the event as JSON body."""
    event_id, event_type, occurred_at, subject = _envelope(row.payload)
    return pika.BasicProperties(
        message_id=event_id,
        content_type="application/json",
        delivery_mode=pika.DeliveryMode.Persistent,
        type=event_type,
        headers={
            "ce-specversion": "1.0",
            "ce-id": event_id,
            "ce-type": event_type,
            "ce-source": f"/shop/{row.topic}",
            "ce-time": occurred_at,
            "ce-subject": subject,
            # the outbox id, so the read side can tell which write-side events it has
            "ce-sequence": str(row.id),
        },
    )


def _envelope(payload: str) -> tuple[str, str, str, str]:
    event = jsonio.loads(payload)
    aggregate = event.get("orderId", event.get("productId"))
    return event["eventId"], event["eventType"], event["occurredAt"], str(aggregate)


class ConfirmedPublisher:
    """Publishes outbox rows to the events exchange; each is confirmed by the broker and
    `mandatory`, so a message no queue would take raises instead of vanishing.

    `channel` must already be in confirm mode (ChannelCache provides one)."""

    def __init__(self, channel: BlockingChannel) -> None:
        self.channel = channel

    def publish_batch(self, rows: list[OutboxRow]) -> None:
        for row in rows:
            self.channel.basic_publish(
                EXCHANGE,
                row.topic,
                row.payload.encode(),
                properties=event_properties(row),
                mandatory=True,
            )


def dead_letter(
    channel: BlockingChannel,
    queue: str,
    body: bytes,
    properties: Mapping[str, Any],
    reason: str,
) -> None:
    """Park a message the consumer cannot apply in the dead-letter queue, with its reason.

    `channel` must be in confirm mode: the caller acks the original only after this returns.
    """
    headers = dict(properties.get("headers") or {})
    headers[REASON_HEADER] = reason[:1000]
    headers["x-original-queue"] = queue
    channel.basic_publish(
        DEAD_LETTER_EXCHANGE,
        queue,
        body,
        properties=pika.BasicProperties(
            message_id=properties.get("messageId"),
            content_type=properties.get("contentType"),
            delivery_mode=pika.DeliveryMode.Persistent,
            headers=headers,
        ),
        mandatory=True,
    )


class ChannelCache:
    """A broker connection and confirm-mode channel kept across warm invocations.

    `channel()` checks the cached connection first and reconnects if the broker dropped it,
    so a stale connection costs one reconnect, not a failed invocation. pika connections are
    not thread-safe and a host may run invocations on several threads: one per thread.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def channel(self) -> BlockingChannel:
        connection = getattr(self._local, "connection", None)
        channel = getattr(self._local, "channel", None)
        if not (is_usable(connection) and channel is not None and channel.is_open):
            self.close()
            connection = connect()
            channel = connection.channel()
            declare_topology(channel)
            channel.confirm_delivery()
            self._local.connection, self._local.channel = connection, channel
        return channel

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        self._local.connection = self._local.channel = None
        if connection is not None and connection.is_open:
            with contextlib.suppress(*CONNECTION_ERRORS):
                connection.close()
