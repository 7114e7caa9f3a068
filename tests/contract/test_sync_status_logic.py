"""sync-status (shopcore/read/queries.py measure_sync) on every backend: pending events past
the newest projected one, holes below it, what it remembers, a read side emptied."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from shopcore import events
from shopcore.events import ProductCreated
from shopcore.read.queries import measure_sync

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
NOW = T0 + timedelta(minutes=10)


def written(backend, count: int) -> list[int]:
    """`count` outbox rows, the i-th written at T0 + i seconds; their ids."""
    return [
        backend.outbox.append(
            events.product_created(i, "p", "c", Decimal("1.00"), 1, T0 + timedelta(seconds=i))
        )
        for i in range(count)
    ]


def project_ids(backend, *outbox_ids: int) -> None:
    """Record events with these outbox ids as projected (what the projector records)."""
    batch = [
        (ProductCreated(uuid.uuid4(), T0, 1, "p", "c", Decimal(1), 1), oid) for oid in outbox_ids
    ]
    backend.read.store.transaction(lambda models: models.record_processed(batch))


def status(backend, known: int = 0, hole_window: int = 10_000):
    return measure_sync(
        backend.read.projected, backend.outbox.written, known, NOW, hole_window=hole_window
    )


def test_nothing_written_nothing_pending(backend):
    result = status(backend)
    assert (result.pending, result.lag_seconds, result.last_processed) == (0, 0.0, None)


def test_events_past_the_newest_projected_are_pending_and_age_the_lag(backend):
    ids = written(backend, 5)
    project_ids(backend, *ids[:2])

    result = status(backend)

    assert result.pending == 3
    assert result.lag_seconds == (NOW - (T0 + timedelta(seconds=2))).total_seconds()
    assert result.last_processed is not None
    assert result.projected_through == ids[1]


def test_a_hole_below_the_newest_is_pending_and_remembered_ranges_are_not_recounted(backend):
    ids = written(backend, 6)
    project_ids(backend, *ids[:3])
    first = status(backend)
    assert (first.pending, first.projected_through) == (3, ids[2])

    project_ids(backend, ids[3], ids[5])  # ids[4] is still on its way
    holed = status(backend, known=first.projected_through)
    assert holed.pending == 1
    assert holed.lag_seconds == (NOW - (T0 + timedelta(seconds=4))).total_seconds()
    assert holed.projected_through == ids[2]  # not past the hole

    project_ids(backend, ids[4])
    done = status(backend, known=holed.projected_through)
    assert (done.pending, done.lag_seconds, done.projected_through) == (0, 0.0, ids[5])


def test_a_hole_further_down_than_the_window_is_not_looked_for(backend):
    ids = written(backend, 6)
    project_ids(backend, *ids[1:])  # ids[0] missing, 5 ids below the newest
    assert status(backend, hole_window=10).pending == 1
    assert status(backend, hole_window=4).pending == 0


def test_after_the_read_side_is_emptied_it_counts_from_the_start_again(backend):
    ids = written(backend, 4)
    project_ids(backend, *ids)
    remembered = status(backend).projected_through
    assert remembered == ids[-1]

    backend.read.clear()  # emptied for a rebuild
    project_ids(backend, ids[0], ids[2])  # the rebuild so far

    result = status(backend, known=remembered)
    assert result.pending == 2
    assert result.projected_through == 0
