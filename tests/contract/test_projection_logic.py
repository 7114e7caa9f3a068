"""The projector's work on a batch (shopcore/pipeline/projector.py) on every backend:
idempotency by eventId, duplicates, order, malformed and refused events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from shopcore import events
from shopcore.pipeline.messages import QueueMessage
from shopcore.pipeline.projector import project_batch
from shopcore.platform import jsonio

T0 = datetime(2024, 5, 1, 10, 15, tzinfo=UTC)
HOUR = T0.replace(minute=0)


def message(event: dict, outbox_id: int | None = None, body: bytes | None = None) -> QueueMessage:
    """As the relay publishes it: the event as the body, its outbox id as ce-sequence."""
    headers = {} if outbox_id is None else {"ce-sequence": str(outbox_id)}
    return QueueMessage(
        queue=events.TOPICS.get(event.get("eventType", ""), events.ORDER_EVENTS),
        body=jsonio.dumps(event).encode() if body is None else body,
        properties={"messageId": event.get("eventId"), "headers": headers},
    )


def product(product_id: int, price: str = "2.00") -> dict:
    return events.product_created(product_id, "name", "Tools", Decimal(price), 5, T0)


def order(customer_id: int, *lines: tuple[int, int, str]) -> dict:
    items = [
        {"productId": p, "quantity": q, "price": Decimal(price), "name": "n", "category": "Tools"}
        for p, q, price in lines
    ]
    total = sum((Decimal(price) * q for _, q, price in lines), Decimal("0.00"))
    return events.order_created(1, customer_id, total, items, T0)


class Parked(list):
    """A dead-letter queue: (message, reason) pairs."""

    def __call__(self, message: QueueMessage, reason: str) -> None:
        self.append((message, reason))


def project(backend, *messages: QueueMessage, parked: Parked | None = None):
    return project_batch(
        list(messages), parked if parked is not None else Parked(), backend.read.store
    )


def models(backend) -> dict[str, set]:
    tables = ("product_sales_view", "category_metrics_view", "customer_ltv_view")
    return {t: backend.read.rows(t) for t in (*tables, "hourly_sales_view")}


def test_a_batch_changes_every_read_model(backend):
    outcome = project(
        backend,
        message(product(1), 1),
        message(order(7, (1, 2, "2.00"), (2, 1, "5.50")), 2),
    )

    assert (outcome.applied, outcome.duplicates, outcome.dead_lettered) == (2, 0, [])
    assert models(backend) == {
        "product_sales_view": {(1, 2, Decimal("4.00"), 1), (2, 1, Decimal("5.50"), 1)},
        "category_metrics_view": {("Tools", Decimal("9.50"), 1)},
        "customer_ltv_view": {(7, Decimal("9.50"), 1, T0)},
        "hourly_sales_view": {(HOUR, 1, Decimal("9.50"))},
    }
    assert backend.read.rows("product_catalog") == {(1, "name", "Tools", Decimal("2.00"), T0)}
    assert {(kind, oid) for _, kind, oid in backend.read.rows("processed_events")} == {
        ("ProductCreated", 1),
        ("OrderCreated", 2),
    }


def test_an_event_counts_once_however_often_it_comes(backend):
    sale = message(order(7, (1, 2, "2.00")), 1)

    first = project(backend, sale, sale)
    again = project(backend, sale)

    assert (first.applied, first.duplicates) == (1, 1)
    assert (again.applied, again.duplicates) == (0, 1)
    assert backend.read.rows("product_sales_view") == {(1, 2, Decimal("4.00"), 1)}


SALES = [
    message(product(1), 1),
    message(order(7, (1, 1, "2.00")), 2),
    message(order(8, (1, 3, "2.00")), 3),
    message(order(7, (1, 1, "2.00"), (2, 4, "1.25")), 4),
]


@pytest.mark.parametrize(
    "batches",
    [
        [[0, 1, 2, 3]],  # in order, one batch
        [[3], [2], [1], [0]],  # reversed, one by one
        [[2, 0, 2], [3, 1, 0], [1, 3]],  # shuffled, with redeliveries
    ],
    ids=["in-order", "reversed", "shuffled-with-duplicates"],
)
def test_any_order_and_any_number_of_deliveries_give_the_same_totals(backend, batches):
    for batch in batches:
        project(backend, *[SALES[i] for i in batch])

    assert backend.read.rows("product_sales_view") == {
        (1, 5, Decimal("10.00"), 3),
        (2, 4, Decimal("5.00"), 1),
    }
    assert backend.read.rows("customer_ltv_view") == {
        (7, Decimal("9.00"), 2, T0),
        (8, Decimal("6.00"), 1, T0),
    }
    assert len(backend.read.rows("processed_events")) == 4


def test_malformed_messages_are_parked_with_a_reason_and_the_rest_apply(backend):
    parked = Parked()
    good = message(order(7, (1, 1, "2.00")), 3)
    not_json = message({"eventId": "x"}, 1, body=b"{not json")
    unknown = message({**product(1), "eventType": "ProductDeleted"}, 2)

    outcome = project(backend, not_json, good, unknown, parked=parked)

    assert outcome.applied == 1
    assert [m for m, _ in parked] == [not_json, unknown]
    assert all(reason for _, reason in parked)
    assert backend.read.rows("product_sales_view") == {(1, 1, Decimal("2.00"), 1)}


def test_an_event_the_store_refuses_is_parked_and_the_rest_of_its_batch_applies(backend):
    parked = Parked()
    refused, fine = message(product(1, price="1E+20"), 1), message(product(2), 2)

    outcome = project(backend, refused, fine, parked=parked)

    assert (outcome.applied, outcome.duplicates) == (1, 0)
    [(message_, reason)] = parked
    assert message_ is refused and reason.startswith("refused by the read database")
    assert {row[0] for row in backend.read.rows("product_catalog")} == {2}
    assert {oid for *_, oid in backend.read.rows("processed_events")} == {2}


def test_an_outbox_id_that_is_not_one_is_recorded_as_none(backend):
    event = product(1)
    weird = QueueMessage(
        events.PRODUCT_EVENTS, jsonio.dumps(event).encode(), {"headers": {"ce-sequence": "١٢"}}
    )
    project(backend, weird)
    assert backend.read.rows("processed_events") == {
        (uuid.UUID(event["eventId"]), "ProductCreated", None)
    }
