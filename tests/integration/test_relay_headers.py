"""The headers the relay publishes each outbox row with: the event's own attributes, which the
claim query reads from the stored payload (the relay parses no payload), as CloudEvents
headers, the same as when the relay parsed every payload to build them."""

from __future__ import annotations

from shopcore.pipeline import outbox, publisher
from shopcore.platform import jsonio
from tests.support.functions import http_client, write_rows


def test_each_row_carries_what_its_headers_need(unique, customer_id):
    product = {"name": f"Pen {unique}", "category": unique, "price": 2, "stock": 5}
    product_id = http_client("create_product").post("/", json=product).json["productId"]
    order = {
        "customerId": customer_id,
        "items": [{"productId": product_id, "quantity": 1, "price": 2}],
    }
    order_id = http_client("create_order").post("/", json=order).json["orderId"]

    rows = [
        outbox.OutboxRow(*row)
        for row in write_rows(
            f"SELECT {outbox.ROW} FROM outbox"
            " WHERE (payload->>'eventType' = 'ProductCreated' AND payload->>'productId' = %s)"
            " OR (payload->>'eventType' = 'OrderCreated' AND payload->>'orderId' = %s)"
            " ORDER BY id",
            str(product_id),
            str(order_id),
        )
    ]

    assert [(r.event_type, r.subject) for r in rows] == [
        ("ProductCreated", str(product_id)),
        ("OrderCreated", str(order_id)),
    ]
    for row in rows:
        event = jsonio.loads(row.payload)
        properties = publisher.event_properties(row)
        assert (properties.message_id, properties.type) == (event["eventId"], event["eventType"])
        assert properties.headers == {
            "ce-specversion": "1.0",
            "ce-id": event["eventId"],
            "ce-type": event["eventType"],
            "ce-source": f"/shop/{row.topic}",
            "ce-time": event["occurredAt"],
            "ce-subject": str(event.get("orderId", event.get("productId"))),
            "ce-sequence": str(row.id),
        }
