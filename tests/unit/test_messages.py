"""Queue batches in Amazon MQ for RabbitMQ's shape: built from pika deliveries, read back."""

from __future__ import annotations

import base64
import copy

import pika
import pytest

from shopcore.pipeline import messages

# Amazon MQ for RabbitMQ's documented example event for Lambda, plus one header holding
# non-ASCII text: Java serialises its bytes signed, so 0xC3 0xA9 ("é") arrive as -61, -87.
AWS_EXAMPLE = {
    "eventSource": "aws:rmq",
    "eventSourceArn": (
        "arn:aws:mq:us-west-2:111122223333:broker:pizzaBroker:b-9bcfa592-423a-4942-879d-eb284b418fc8"
    ),
    "rmqMessagesByQueue": {
        "pizzaQueue::/": [
            {
                "basicProperties": {
                    "contentType": "text/plain",
                    "contentEncoding": None,
                    "headers": {
                        "header1": {"bytes": [118, 97, 108, 117, 101, 49]},
                        "header2": {"bytes": [118, 97, 108, 117, 101, 50]},
                        "numberInHeader": 10,
                        "accented": {"bytes": [99, 97, 102, -61, -87]},
                    },
                    "deliveryMode": 1,
                    "priority": 34,
                    "correlationId": None,
                    "replyTo": None,
                    "expiration": "60000",
                    "messageId": None,
                    "timestamp": "Jan 1, 1970, 12:33:41 AM",
                    "type": None,
                    "userId": "AIDACKCEVSQ6C2EXAMPLE",
                    "appId": None,
                    "clusterId": None,
                    "bodySize": 80,
                },
                "redelivered": False,
                "data": "eyJ0aW1lb3V0IjowLCJkYXRhIjoiQ1pybWYwR3c4T3Y0YnFMUXhENEUifQ==",
            }
        ]
    },
}


def props(message_id: str | None = "m-1", **headers: object) -> pika.BasicProperties:
    return pika.BasicProperties(
        content_type="application/json",
        message_id=message_id,
        delivery_mode=2,
        type="OrderCreated",
        headers=headers or None,
    )


# --- the AWS shape -------------------------------------------------------------------------


def test_from_batch_reads_the_documented_aws_event():
    [message] = messages.from_batch(copy.deepcopy(AWS_EXAMPLE))

    assert message.queue == "pizzaQueue"
    assert message.body == b'{"timeout":0,"data":"CZrmf0Gw8Ov4bqLQxD4E"}'
    assert message.redelivered is False
    assert message.properties["contentType"] == "text/plain"
    assert message.properties["userId"] == "AIDACKCEVSQ6C2EXAMPLE"
    assert message.properties["messageId"] is None


def test_from_batch_decodes_byte_headers_to_strings():
    [message] = messages.from_batch(copy.deepcopy(AWS_EXAMPLE))

    assert message.headers["header1"] == "value1"
    assert message.header("header2") == "value2"


def test_from_batch_decodes_negative_java_bytes_as_utf8():
    [message] = messages.from_batch(copy.deepcopy(AWS_EXAMPLE))

    assert message.header("accented") == "café"


def test_from_batch_keeps_non_byte_headers_as_they_are():
    [message] = messages.from_batch(copy.deepcopy(AWS_EXAMPLE))

    assert message.headers["numberInHeader"] == 10
    assert message.header("numberInHeader") == "10"
    assert message.header("absent") is None


def test_from_batch_does_not_modify_the_event():
    event = copy.deepcopy(AWS_EXAMPLE)

    messages.from_batch(event)

    assert event == AWS_EXAMPLE


def test_from_batch_keeps_delivery_order_within_each_queue():
    def entry(body: bytes, redelivered: bool = False) -> dict:
        return {
            "basicProperties": {"headers": None},
            "redelivered": redelivered,
            "data": base64.b64encode(body).decode(),
        }

    event = {
        "rmqMessagesByQueue": {
            "order-events::/": [entry(b"1"), entry(b"2", True), entry(b"3")],
            "product-events::shop": [entry(b"p")],
        }
    }

    got = [(m.queue, m.body, m.redelivered) for m in messages.from_batch(event)]

    assert got == [
        ("order-events", b"1", False),
        ("order-events", b"2", True),
        ("order-events", b"3", False),
        ("product-events", b"p", False),
    ]


@pytest.mark.parametrize("event", [{}, {"rmqMessagesByQueue": {}}, {"rmqMessagesByQueue": None}])
def test_from_batch_of_nothing_is_empty(event):
    assert messages.from_batch(event) == []


def test_message_without_headers_or_data():
    event = {"rmqMessagesByQueue": {"q::/": [{"basicProperties": {}}]}}

    [message] = messages.from_batch(event)

    assert message.body == b""
    assert message.headers == {}
    assert message.header("x") is None


# --- round trip ----------------------------------------------------------------------------


def test_to_batch_then_from_batch_round_trips():
    body = b'{"eventId": "e", "total": 12345678901234567.89}'
    deliveries = [("order-events", props("m-1", **{"x-outbox-id": "17"}), body, False)]

    [message] = messages.from_batch(messages.to_batch(deliveries))

    assert message.queue == "order-events"
    assert message.body == body
    assert message.properties["messageId"] == "m-1"
    assert message.header("x-outbox-id") == "17"
    assert message.redelivered is False


def test_to_batch_uses_the_aws_shape():
    batch = messages.to_batch([("order-events", props("m-1", source="outbox"), b"{}", True)])

    assert batch["eventSource"] == "aws:rmq"
    [entry] = batch["rmqMessagesByQueue"]["order-events::/"]
    assert entry["data"] == base64.b64encode(b"{}").decode()
    assert entry["redelivered"] is True
    assert entry["basicProperties"]["headers"] == {"source": {"bytes": list(b"outbox")}}
    assert entry["basicProperties"]["messageId"] == "m-1"
    assert entry["basicProperties"]["type"] == "OrderCreated"
    assert entry["basicProperties"]["bodySize"] == 2


def test_round_trip_keeps_many_messages_queues_and_flags_in_order():
    deliveries = [
        ("order-events", props("a"), b"first", False),
        ("product-events", props("b"), b"second", True),
        ("order-events", props("c"), b"third", True),
    ]

    got = messages.from_batch(messages.to_batch(deliveries))

    assert [(m.queue, m.body, m.properties["messageId"], m.redelivered) for m in got] == [
        ("order-events", b"first", "a", False),
        ("order-events", b"third", "c", True),
        ("product-events", b"second", "b", True),
    ]


@pytest.mark.parametrize("value", ["plain", "café ☕", "", "ünïcødé 日本"])
def test_round_trip_keeps_string_headers(value):
    deliveries = [("q", props(trace=value), b"x", False)]

    [message] = messages.from_batch(messages.to_batch(deliveries))

    assert message.header("trace") == value


def test_round_trip_keeps_binary_body_bytes():
    body = bytes(range(256))

    [message] = messages.from_batch(messages.to_batch([("q", props(), body, False)]))

    assert message.body == body


def test_round_trip_without_headers_or_message_id():
    [message] = messages.from_batch(messages.to_batch([("q", props(None), b"x", False)]))

    assert message.properties["messageId"] is None
    assert message.headers == {}


def test_to_batch_keys_queues_by_vhost():
    batch = messages.to_batch([("order-events", props(), b"x", False)], vhost="shop")

    assert list(batch["rmqMessagesByQueue"]) == ["order-events::shop"]
    assert messages.from_batch(batch)[0].queue == "order-events"


@pytest.mark.parametrize("value", ["plain", "café ☕", "", "ünïcødé 日本"])
def test_string_headers_can_stay_strings_and_still_round_trip(value):
    """The local queue trigger skips Amazon MQ's byte lists; from_batch reads both shapes."""
    deliveries = [("q", props(trace=value, raw=b"\x00\xff"), b"x", False)]

    batch = messages.to_batch(deliveries, header_bytes=False)
    [message] = messages.from_batch(batch)

    [entry] = batch["rmqMessagesByQueue"]["q::/"]
    assert entry["basicProperties"]["headers"]["trace"] == value
    assert message.header("trace") == value
    assert message.headers["raw"] == b"\x00\xff".decode("utf-8", "replace")


def test_negative_and_positive_byte_lists_decode_alike():
    batch = {
        "rmqMessagesByQueue": {
            "q::/": [
                {"data": "", "basicProperties": {"headers": {
                    "signed": {"bytes": [99, 97, 102, -61, -87]},
                    "unsigned": {"bytes": [99, 97, 102, 195, 169]},
                }}},
            ]
        }
    }  # fmt: skip

    [message] = messages.from_batch(batch)

    assert message.header("signed") == message.header("unsigned") == "café"
