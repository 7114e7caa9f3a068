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
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from shopcore import events
from shopcore.platform import outages
from shopcore.platform.config import settings

log = logging.getLogger("shopcore.pipeline.broker")

T = TypeVar("T")

EXCHANGE = "events"
DEAD_LETTER_EXCHANGE = "events.dlx"
DEAD_LETTER_QUEUE = "events.dead-letter"
QUEUES = (events.PRODUCT_EVENTS, events.ORDER_EVENTS)
# Part of the queues' identity: changing it needs the queues deleted and declared again.
DELIVERY_LIMIT = 5
REASON_HEADER = "x-dead-letter-reason"

CONNECTION_ERRORS = outages.BROKER_CONNECTION_ERRORS


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
    return bool(connection.is_open)


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


class ConnectionCache(Generic[T]):
    """A broker connection, and what `open_on` builds on it, kept across warm invocations.

    `get()` checks the cached connection first and reconnects if the broker dropped it, so a
    stale connection costs one reconnect, not a failed invocation. pika connections are not
    thread-safe and a host may run invocations on several threads: one per thread.
    """

    def __init__(self, open_on: Callable[[pika.BlockingConnection], T]) -> None:
        self._open_on = open_on
        self._local = threading.local()

    def get(self) -> T:
        connection = getattr(self._local, "connection", None)
        if not is_usable(connection) or getattr(self._local, "resource", None) is None:
            self.close()
            connection = connect()
            declare_topology(connection.channel())
            self._local.connection = connection
            self._local.resource = self._open_on(connection)
        resource: T = self._local.resource
        return resource

    @property
    def connection(self) -> pika.BlockingConnection | None:
        """This thread's cached connection (None before the first `get` or after `close`)."""
        connection: pika.BlockingConnection | None = getattr(self._local, "connection", None)
        return connection

    def close(self) -> None:
        """Close this thread's connection; the next `get` opens a new one."""
        connection = self.connection
        self._local.connection = self._local.resource = None
        if connection is not None and connection.is_open:
            with contextlib.suppress(*CONNECTION_ERRORS):
                connection.close()


def confirmed_channel(connection: pika.BlockingConnection) -> BlockingChannel:
    """A channel whose every publish waits for the broker's confirm."""
    channel = connection.channel()
    channel.confirm_delivery()
    return channel
