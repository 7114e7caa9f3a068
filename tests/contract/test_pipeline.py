"""The whole pipeline through its ports, on every backend: outbox -> drain -> broker ->
projector -> read models, and sync-status watching it catch up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from shopcore import events
from shopcore.pipeline import messages
from shopcore.pipeline.outbox import drain
from shopcore.pipeline.projector import project_batch
from shopcore.read.queries import measure_sync

T0 = datetime(2024, 5, 1, 10, 15, tzinfo=UTC)


def test_orders_written_reach_the_read_models_and_sync_status_catches_up(backend):
    backend.outbox.append(events.product_created(1, "Lamp", "Home", Decimal("19.99"), 9, T0))
    item = {"productId": 1, "quantity": 2, "price": Decimal("19.99"), "name": "Lamp"}
    for customer in (7, 8, 7):
        total = Decimal("39.98")
        at = T0 + timedelta(minutes=customer)
        backend.outbox.append(
            events.order_created(customer, customer, total, [{**item, "category": "Home"}], at)
        )
    now = T0 + timedelta(hours=1)
    before = measure_sync(backend.read.projected, backend.outbox.written, now=now)
    assert (before.pending, before.lag_seconds) == (4, 3600.0)

    stores = (backend.outbox.session(), backend.outbox.session())
    assert drain(stores, backend.broker.publisher(), batch_size=2, budget_seconds=10).published == 4
    for queue in (events.PRODUCT_EVENTS, events.ORDER_EVENTS):
        taken = backend.broker.take(queue)
        batch = messages.from_batch(
            messages.to_batch([(queue, props, body, False) for props, body in taken])
        )
        outcome = project_batch(batch, lambda m, reason: None, backend.read.store)
        assert outcome.applied == len(taken)

    assert backend.read.rows("product_sales_view") == {(1, 6, Decimal("119.94"), 3)}
    assert backend.read.rows("customer_ltv_view") == {
        (7, Decimal("79.96"), 2, T0 + timedelta(minutes=7)),
        (8, Decimal("39.98"), 1, T0 + timedelta(minutes=8)),
    }
    after = measure_sync(backend.read.projected, backend.outbox.written, now=now)
    assert (after.pending, after.lag_seconds, after.projected_through) == (0, 0.0, 4)
