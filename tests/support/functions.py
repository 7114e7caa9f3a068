"""Drive a function through the entry point a platform would call: its functions-framework app."""

from __future__ import annotations

from typing import Any

import pika
import psycopg
from werkzeug.test import Client

from infra.functions import by_name
from infra.triggers.invoke import CloudEventInvoker, load
from shopcore.pipeline import broker, messages
from shopcore.platform.config import settings


def http_client(name: str) -> Client:
    return Client(load(by_name(name)))


def relay_invoker() -> CloudEventInvoker:
    return CloudEventInvoker(
        by_name("outbox_relay"), "//tests/scheduler", "google.cloud.scheduler.job.v1.executed"
    )


def projector_invoker() -> CloudEventInvoker:
    return CloudEventInvoker(by_name("projector"), "//tests/rabbitmq", "dev.shop.rabbitmq.messages")


def write_rows(sql: str, *params: Any) -> list[tuple]:
    with psycopg.connect(settings().database_url) as conn:
        return conn.execute(sql, params or None).fetchall()


def read_rows(sql: str, *params: Any) -> list[tuple]:
    with psycopg.connect(settings().read_database_url) as conn:
        return conn.execute(sql, params or None).fetchall()


def drain_queue(queue: str) -> list[tuple[pika.BasicProperties, bytes]]:
    """Take every message currently in `queue` (acked: they are gone afterwards)."""
    connection = broker.connect()
    try:
        channel = connection.channel()
        taken = []
        while True:
            method, props, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return taken
            taken.append((props, body))
    finally:
        connection.close()


def as_batch(queue: str, taken: list[tuple[pika.BasicProperties, bytes]]) -> dict[str, Any]:
    return messages.to_batch([(queue, props, body, False) for props, body in taken])


def publish_raw(queue: str, body: bytes, message_id: str | None = None) -> None:
    """Put a message straight onto a queue, as a misbehaving producer would."""
    connection = broker.connect()
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            "", queue, body, properties=pika.BasicProperties(message_id=message_id)
        )
    finally:
        connection.close()


def relay_and_project() -> None:
    """Move everything in the outbox through the broker into the read models."""
    assert relay_invoker()({}) == 200
    for queue in broker.QUEUES:
        taken = drain_queue(queue)
        if taken:
            assert projector_invoker()(as_batch(queue, taken)) == 200
