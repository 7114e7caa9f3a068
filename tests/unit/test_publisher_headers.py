"""The relay's message properties come from the outbox row's columns, never from its payload."""

from __future__ import annotations

import pika

from shopcore.pipeline.outbox import OutboxRow
from shopcore.pipeline.publisher import event_properties


def test_headers_are_the_rows_attributes_and_the_payload_is_not_read():
    row = OutboxRow(
        41,
        "order-events",
        "not JSON: a payload the publisher would fail to parse",
        None,
        "8c3f2b1e-9d4a-4f6b-a1c2-3e4f5a6b7c8d",
        "OrderCreated",
        "2026-11-29T12:00:00.123Z",
        "17",
    )

    properties = event_properties(row)

    assert properties.message_id == "8c3f2b1e-9d4a-4f6b-a1c2-3e4f5a6b7c8d"
    assert properties.type == "OrderCreated"
    assert properties.content_type == "application/json"
    assert properties.delivery_mode == pika.DeliveryMode.Persistent.value
    assert properties.headers == {
        "ce-specversion": "1.0",
        "ce-id": "8c3f2b1e-9d4a-4f6b-a1c2-3e4f5a6b7c8d",
        "ce-type": "OrderCreated",
        "ce-source": "/shop/order-events",
        "ce-time": "2026-11-29T12:00:00.123Z",
        "ce-subject": "17",
        "ce-sequence": "41",
    }
