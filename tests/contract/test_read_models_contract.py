"""The read-model ports: ReadModelStore and ReadModels (what the projector writes) and
ProjectedEvents (what sync-status reads), on the fake and on Postgres."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest

from shopcore.events import OrderCreated, OrderLine, ProductCreated
from shopcore.read.projections import Changes, summarize

T0 = datetime(2024, 5, 1, 10, 15, tzinfo=UTC)


def product(product_id: int, price: str = "2.50", at: datetime = T0) -> ProductCreated:
    return ProductCreated(uuid.uuid4(), at, product_id, "name", "Tools", Decimal(price), 5)


def order(customer_id: int, product_id: int, quantity: int, at: datetime = T0) -> OrderCreated:
    line = OrderLine(product_id, quantity, Decimal("2.50"), "name", "Tools")
    return OrderCreated(uuid.uuid4(), at, 1, customer_id, line.revenue, (line,))


def record(backend, *delivered) -> set:
    return backend.read.store.transaction(lambda models: models.record_processed(list(delivered)))


def add(backend, changes: Changes) -> None:
    backend.read.store.transaction(lambda models: models.add(changes))


def test_recording_returns_only_the_events_not_recorded_before(backend):
    a, b, c = product(1), product(2), product(3)

    assert record(backend, (a, 11), (b, None)) == {a.event_id, b.event_id}
    assert record(backend, (b, None), (c, 13)) == {c.event_id}
    assert backend.read.rows("processed_events") == {
        (a.event_id, "ProductCreated", 11),
        (b.event_id, "ProductCreated", None),
        (c.event_id, "ProductCreated", 13),
    }


def test_changes_add_up_and_the_catalog_keeps_the_first_announcement(backend):
    add(backend, summarize([product(1), order(7, 1, 2)]))
    add(backend, summarize([product(1, price="9.99"), order(7, 1, 3, at=T0 - timedelta(days=1))]))

    assert backend.read.rows("product_catalog") == {(1, "name", "Tools", Decimal("2.50"), T0)}
    assert backend.read.rows("product_sales_view") == {(1, 5, Decimal("12.50"), 2)}
    assert backend.read.rows("category_metrics_view") == {("Tools", Decimal("12.50"), 2)}
    assert backend.read.rows("customer_ltv_view") == {(7, Decimal("12.50"), 2, T0)}
    hours = {(h, n, r) for h, n, r in backend.read.rows("hourly_sales_view")}
    assert hours == {
        (T0.replace(minute=0), 1, Decimal("5.00")),
        ((T0 - timedelta(days=1)).replace(minute=0), 1, Decimal("7.50")),
    }


def test_a_transaction_that_raises_leaves_nothing(backend):
    event = order(7, 1, 2)

    def fail_after_writing(models):
        models.record_processed([(event, 1)])
        models.add(summarize([event]))
        raise RuntimeError("the projector died")

    with pytest.raises(RuntimeError):
        backend.read.store.transaction(fail_after_writing)
    assert backend.read.rows("processed_events") == set()
    assert backend.read.rows("product_sales_view") == set()
    assert record(backend, (event, 1)) == {event.event_id}  # it can come again


def test_a_price_no_numeric_14_2_holds_is_refused_and_nothing_is_kept(backend):
    with pytest.raises(psycopg.DataError):
        add(backend, summarize([product(1), product(2, price="1E+20")]))
    assert backend.read.rows("product_catalog") == set()
    add(backend, summarize([product(3, price="999999999999.99")]))  # the largest it holds
    assert len(backend.read.rows("product_catalog")) == 1


def test_the_window_runs_from_the_newest_projected_id_down(backend):
    projected = backend.read.projected
    empty = projected.window(hole_window=100, known=0)
    assert (empty.last_processed, empty.newest, empty.low, empty.projected) == (None, 0, 0, 0)

    before = datetime.now(UTC)
    record(backend, *[(product(i), i) for i in (1, 2, 3, 5, 8)], (product(99), None))

    window = projected.window(hole_window=100, known=0)
    assert (window.newest, window.low, window.projected) == (8, 0, 5)
    assert before - timedelta(seconds=5) <= window.last_processed <= datetime.now(UTC)
    assert projected.window(hole_window=4, known=0).low == 4  # at most hole_window ids
    assert projected.window(hole_window=100, known=3).low == 3  # from what is known
    assert projected.window(hole_window=100, known=9).low == 0  # known past the newest: all
    assert projected.window(hole_window=4, known=2).projected == 2  # 5 and 8 in (4, 8]
    assert projected.projected_ids(1, 5) == {2, 3, 5}
