"""A batch of queue messages as a trigger hands it to the projector.

The shape is Amazon MQ for RabbitMQ's event (`rmqMessagesByQueue`, base64 `data`, string
headers as `{"bytes": [...]}`), so the local queue trigger and AWS Lambda feed the projector
the same thing and one parser serves both.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import pika

from shopcore.events.model import MAX_ID

_MAX_BIGINT = MAX_ID


@dataclass(frozen=True)
class QueueMessage:
    queue: str
    body: bytes
    properties: dict[str, Any] = field(default_factory=dict)
    redelivered: bool = False

    @property
    def headers(self) -> dict[str, Any]:
        return self.properties.get("headers") or {}

    def header(self, name: str) -> str | None:
        value = self.headers.get(name)
        return None if value is None else str(value)

    @property
    def delivery_count(self) -> int:
        """How many times the broker has delivered this message before (a quorum queue's
        `x-delivery-count`; 0 when absent)."""
        count = self.header("x-delivery-count")
        return int(count) if count and count.isascii() and count.isdigit() else 0

    @property
    def outbox_id(self) -> int | None:
        """The relay's `ce-sequence` header as an outbox id; None when absent or not one.
        Checked before int() reads it: int() raises ValueError for '²' (a digit to
        str.isdigit) and for more than 4300 digits, and takes other scripts' digits ('١٢' is
        12)."""
        sequence = self.header("ce-sequence")
        if not sequence or len(sequence) > 19 or not sequence.isascii() or not sequence.isdigit():
            return None
        value = int(sequence)
        return value if value <= _MAX_BIGINT else None


def from_batch(data: dict[str, Any]) -> list[QueueMessage]:
    """Messages of an `rmqMessagesByQueue` batch, in delivery order per queue."""
    out: list[QueueMessage] = []
    for queue_key, entries in (data.get("rmqMessagesByQueue") or {}).items():
        queue = queue_key.split("::", 1)[0]
        for entry in entries:
            props = dict(entry.get("basicProperties") or {})
            props["headers"] = {k: _header(v) for k, v in (props.get("headers") or {}).items()}
            out.append(
                QueueMessage(
                    queue=queue,
                    body=base64.b64decode(entry.get("data") or ""),
                    properties=props,
                    redelivered=bool(entry.get("redelivered")),
                )
            )
    return out


def to_batch(
    deliveries: list[tuple[str, pika.BasicProperties, bytes, bool]],
    vhost: str = "/",
    header_bytes: bool = True,
) -> dict[str, Any]:
    """Build the batch event from pika deliveries: (queue, properties, body, redelivered).

    With `header_bytes` false, string headers stay strings instead of Amazon MQ's lists of
    byte values (`from_batch` reads both): a list of numbers per header was a third of the
    local queue trigger's cost per message, in building, JSON-encoding and reading it back.
    """
    encode = _encode_header if header_bytes else _plain_header
    by_queue: dict[str, list[dict[str, Any]]] = {}
    for queue, props, body, redelivered in deliveries:
        by_queue.setdefault(f"{queue}::{vhost}", []).append(
            {
                "basicProperties": {
                    "contentType": props.content_type,
                    "messageId": props.message_id,
                    "deliveryMode": props.delivery_mode,
                    "type": props.type,
                    "headers": {k: encode(v) for k, v in (props.headers or {}).items()},
                    "bodySize": len(body),
                },
                "redelivered": redelivered,
                "data": base64.b64encode(body).decode(),
            }
        )
    return {"eventSource": "aws:rmq", "rmqMessagesByQueue": by_queue}


def _encode_header(value: Any) -> Any:
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return {"bytes": list(value)}
    return value


def _plain_header(value: Any) -> Any:
    return _encode_header(value) if isinstance(value, bytes) else value


def _header(value: Any) -> Any:
    if isinstance(value, dict) and "bytes" in value:
        raw = value["bytes"]
        try:
            data = bytes(raw)
        except ValueError:  # Java's bytes are signed: above 127 they arrive negative
            data = bytes(b & 0xFF for b in raw)
        return data.decode("utf-8", "replace")
    return value
