"""The outbox ports: OutboxStore (what the relay's drain claims and marks) and WrittenEvents
(what sync-status reads), on the fake and on Postgres."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from shopcore import events
from shopcore.platform import jsonio

T0 = datetime(2024, 5, 1, 10, 15, 30, 123000, tzinfo=UTC)


def product(number: int, at: datetime = T0) -> dict:
    return events.product_created(number, f"p{number}", "Tools", Decimal("1.50"), 3, at)


def fill(backend, count: int) -> list[int]:
    return [backend.outbox.append(product(i, T0 + timedelta(seconds=i))) for i in range(count)]


def test_a_claim_takes_the_lowest_unpublished_ids_up_to_its_limit(backend):
    event = product(7)
    first = backend.outbox.append(event)
    fill(backend, 4)

    rows = backend.outbox.session().claim(3)

    assert [r.id for r in rows] == [first, first + 1, first + 2]
    assert rows[0].topic == events.PRODUCT_EVENTS
    assert jsonio.loads(rows[0].payload) == jsonio.loads(jsonio.dumps(event))
    assert rows[0].created_at == T0
    assert (rows[0].event_id, rows[0].event_type) == (event["eventId"], "ProductCreated")
    assert (rows[0].occurred_at, rows[0].subject) == (event["occurredAt"], "7")


def test_a_second_store_passes_over_the_rows_the_first_holds(backend):
    ids = fill(backend, 5)
    first, second = backend.outbox.session(), backend.outbox.session()

    assert [r.id for r in first.claim(3)] == ids[:3]
    assert [r.id for r in second.claim(10)] == ids[3:]
    second.release()
    first.release()  # let go unpublished: claimable again, in order
    assert [r.id for r in second.claim(10)] == ids


def test_marked_rows_are_never_claimed_again_but_stay_in_the_outbox(backend):
    ids = fill(backend, 4)
    store = backend.outbox.session()

    store.mark_published([r.id for r in store.claim(2)])

    assert backend.outbox.unpublished() == ids[2:]
    assert [r.id for r in backend.outbox.session().claim(10)] == ids[2:]
    assert backend.outbox.written.written_after(0)[0] == 4  # the event log keeps them


def test_an_empty_claim_holds_nothing(backend):
    store = backend.outbox.session()
    assert store.claim(10) == []
    [row_id] = fill(backend, 1)
    assert [r.id for r in store.claim(10)] == [row_id]  # no batch was left open


def test_has_pending_sees_rows_others_hold_until_they_are_marked(backend):
    store, other = backend.outbox.session(), backend.outbox.session()
    assert not store.has_pending()
    fill(backend, 2)
    rows = other.claim(10)
    assert store.has_pending()
    other.mark_published([r.id for r in rows])
    assert not store.has_pending()


def test_written_events_count_rows_after_an_id_and_the_oldest_time(backend):
    ids = fill(backend, 5)
    written = backend.outbox.written

    assert written.written_after(0) == (5, T0)
    assert written.written_after(ids[2]) == (2, T0 + timedelta(seconds=3))
    assert written.written_after(ids[-1]) == (0, None)
    assert written.count_between(ids[0], ids[3]) == 3
    assert written.written_between(ids[1], ids[3]) == [
        (ids[2], T0 + timedelta(seconds=2)),
        (ids[3], T0 + timedelta(seconds=3)),
    ]
