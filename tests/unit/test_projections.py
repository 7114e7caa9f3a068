"""summarize: the read-model arithmetic of a set of events, independent of delivery order."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shopcore.events import Event, OrderCreated, OrderLine, ProductCreated
from shopcore.read.projections import Changes, Sales, Spend, hour_of, summarize

T0 = datetime(2024, 5, 1, 10, 15, tzinfo=UTC)


def order(
    customer_id: int,
    *lines: tuple[int, int, str, str],
    at: datetime = T0,
    order_id: int = 1,
) -> OrderCreated:
    """lines: (productId, quantity, price, category)."""
    items = tuple(OrderLine(p, q, Decimal(price), f"product {p}", c) for p, q, price, c in lines)
    return OrderCreated(
        uuid.uuid4(), at, order_id, customer_id, sum((i.revenue for i in items), Decimal(0)), items
    )


def product(product_id: int, category: str, at: datetime = T0) -> ProductCreated:
    return ProductCreated(uuid.uuid4(), at, product_id, "name", category, Decimal("1.00"), 5)


def plain(changes: Changes) -> dict[str, Any]:
    """Changes as plain dicts of plain dicts, comparable with ==."""
    return {
        "catalog": dict(changes.catalog),
        "products": {k: asdict(v) for k, v in changes.products.items()},
        "categories": {k: asdict(v) for k, v in changes.categories.items()},
        "customers": {k: asdict(v) for k, v in changes.customers.items()},
        "hours": {k: asdict(v) for k, v in changes.hours.items()},
    }


# --- products ------------------------------------------------------------------------------


def test_product_quantity_revenue_and_order_count():
    changes = summarize(
        [
            order(1, (10, 2, "9.99", "Tech"), (11, 1, "5.00", "Office")),
            order(2, (10, 3, "10.00", "Tech")),
        ]
    )

    assert changes.products[10] == Sales(quantity=5, revenue=Decimal("49.98"), orders=2)
    assert changes.products[11] == Sales(quantity=1, revenue=Decimal("5.00"), orders=1)


def test_two_lines_of_one_product_count_as_one_order():
    changes = summarize([order(1, (10, 1, "9.99", "Tech"), (10, 2, "8.00", "Tech"))])

    assert changes.products[10] == Sales(quantity=3, revenue=Decimal("25.99"), orders=1)


def test_zero_price_lines_count_quantity_and_orders():
    changes = summarize([order(1, (10, 4, "0.00", "Free"))])

    assert changes.products[10] == Sales(quantity=4, revenue=Decimal("0.00"), orders=1)


# --- categories ----------------------------------------------------------------------------


def test_category_counts_an_order_once_however_many_lines_it_has_there():
    changes = summarize(
        [
            order(1, (10, 1, "100.00", "Tech"), (11, 2, "50.00", "Tech"), (12, 1, "3.00", "Food")),
            order(2, (11, 1, "50.00", "Tech")),
        ]
    )

    assert changes.categories["Tech"] == Sales(quantity=0, revenue=Decimal("250.00"), orders=2)
    assert changes.categories["Food"] == Sales(quantity=0, revenue=Decimal("3.00"), orders=1)


def test_category_follows_the_line_not_the_product():
    # The event carries the category at order time; a recategorised product splits by order.
    changes = summarize([order(1, (10, 1, "1.00", "Old")), order(2, (10, 1, "2.00", "New"))])

    assert changes.categories["Old"].revenue == Decimal("1.00")
    assert changes.categories["New"].revenue == Decimal("2.00")
    assert changes.products[10].orders == 2


# --- customers -----------------------------------------------------------------------------


def test_customer_spent_orders_and_last_order():
    early, late = T0, T0 + timedelta(days=3)
    changes = summarize(
        [
            order(7, (10, 2, "10.00", "Tech"), at=early),
            order(7, (11, 1, "0.99", "Food"), at=late),
            order(8, (10, 1, "10.00", "Tech"), at=early),
        ]
    )

    assert changes.customers[7] == Spend(spent=Decimal("20.99"), orders=2, last_order=late)
    assert changes.customers[8] == Spend(spent=Decimal("10.00"), orders=1, last_order=early)


@pytest.mark.parametrize("order_of_arrival", [(0, 1, 2), (2, 1, 0), (1, 2, 0), (2, 0, 1)])
def test_last_order_is_the_latest_whatever_the_arrival_order(order_of_arrival):
    moments = [T0, T0 + timedelta(hours=5), T0 - timedelta(days=1)]
    orders = [order(7, (10, 1, "1.00", "Tech"), at=m) for m in moments]

    changes = summarize([orders[i] for i in order_of_arrival])

    assert changes.customers[7].last_order == T0 + timedelta(hours=5)


def test_customer_spent_is_the_order_total():
    event = order(7, (10, 1, "10.00", "Tech"))
    # The total is what the order recorded, even if it differs from the sum of its lines.
    event = OrderCreated(event.event_id, event.occurred_at, 1, 7, Decimal("9.50"), event.items)

    assert summarize([event]).customers[7].spent == Decimal("9.50")


# --- hours ---------------------------------------------------------------------------------


def test_hourly_buckets():
    changes = summarize(
        [
            order(1, (10, 1, "10.00", "Tech"), at=T0.replace(minute=0)),
            order(2, (10, 2, "10.00", "Tech"), at=T0.replace(minute=59, second=59)),
            order(3, (10, 1, "1.50", "Tech"), at=T0 + timedelta(hours=1)),
        ]
    )

    assert changes.hours == {
        datetime(2024, 5, 1, 10, tzinfo=UTC): Sales(revenue=Decimal("30.00"), orders=2),
        datetime(2024, 5, 1, 11, tzinfo=UTC): Sales(revenue=Decimal("1.50"), orders=1),
    }


def test_hour_of_truncates_to_the_hour():
    moment = datetime(2024, 5, 1, 10, 59, 59, 999000, tzinfo=UTC)

    assert hour_of(moment) == datetime(2024, 5, 1, 10, tzinfo=UTC)


def test_hour_of_buckets_by_the_utc_hour_for_half_hour_offsets():
    india = timezone(timedelta(hours=5, minutes=30))
    moment = datetime(2024, 5, 1, 10, 45, tzinfo=india)  # 05:15 UTC

    assert hour_of(moment) == datetime(2024, 5, 1, 5, tzinfo=UTC)


# --- ProductCreated --------------------------------------------------------------------------


def test_product_created_adds_zero_rows_for_its_product_and_category():
    event = product(10, "Tech")

    changes = summarize([event])

    assert changes.catalog == {10: event}
    assert dict(changes.products) == {10: Sales()}
    assert dict(changes.categories) == {"Tech": Sales()}
    assert changes.products[10].revenue == 0
    assert not changes.customers
    assert not changes.hours


def test_product_created_does_not_disturb_sales():
    sale = order(1, (10, 2, "3.00", "Tech"))

    with_product = summarize([sale, product(10, "Tech")])

    assert with_product.products[10] == Sales(quantity=2, revenue=Decimal("6.00"), orders=1)
    assert with_product.categories["Tech"] == Sales(revenue=Decimal("6.00"), orders=1)


def test_first_product_created_wins_in_the_catalog():
    first, second = product(10, "Tech"), product(10, "Other")

    assert summarize([first, second]).catalog[10] is first


def test_no_events_change_nothing():
    assert plain(summarize([])) == {
        "catalog": {},
        "products": {},
        "categories": {},
        "customers": {},
        "hours": {},
    }


# --- properties ----------------------------------------------------------------------------

prices = st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False)
lines = st.builds(
    OrderLine,
    product_id=st.integers(1, 6),
    quantity=st.integers(1, 1000),
    price=prices,
    name=st.just("product"),
    category=st.sampled_from(["Tech", "Food", "Office"]),
)
moments = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2024, 1, 3), timezones=st.just(UTC)
)


@st.composite
def orders(draw: st.DrawFn) -> OrderCreated:
    items = tuple(draw(st.lists(lines, min_size=1, max_size=5)))
    return OrderCreated(
        draw(st.uuids()),
        draw(moments),
        draw(st.integers(1, 10**6)),
        draw(st.integers(1, 4)),
        sum((i.revenue for i in items), Decimal("0.00")),
        items,
    )


order_lists = st.lists(orders(), max_size=12, unique_by=lambda e: e.event_id)


def add(left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
    """The element-wise sum of two plain summaries: counts and money add, last_order is max."""

    def merge(a: dict, b: dict, combine) -> dict:
        return {k: combine(a[k], b[k]) if k in a and k in b else a.get(k, b.get(k)) for k in a | b}

    def sales(x: dict, y: dict) -> dict:
        return {key: x[key] + y[key] for key in ("quantity", "revenue", "orders")}

    def spend(x: dict, y: dict) -> dict:
        return {
            "spent": x["spent"] + y["spent"],
            "orders": x["orders"] + y["orders"],
            "last_order": max(x["last_order"], y["last_order"]),
        }

    return {
        "catalog": {**right["catalog"], **left["catalog"]},
        "products": merge(left["products"], right["products"], sales),
        "categories": merge(left["categories"], right["categories"], sales),
        "customers": merge(left["customers"], right["customers"], spend),
        "hours": merge(left["hours"], right["hours"], sales),
    }


@settings(max_examples=150, deadline=None)
@given(events=order_lists, data=st.data())
def test_summary_does_not_depend_on_delivery_order(events: list[Event], data: st.DataObject):
    shuffled = data.draw(st.permutations(events))

    assert plain(summarize(shuffled)) == plain(summarize(events))


@settings(max_examples=150, deadline=None)
@given(a=order_lists, b=order_lists)
def test_summary_of_two_batches_is_the_sum_of_their_summaries(a: list[Event], b: list[Event]):
    ids_a = {e.event_id for e in a}
    b = [e for e in b if e.event_id not in ids_a]

    assert plain(summarize(a + b)) == add(plain(summarize(a)), plain(summarize(b)))


@settings(max_examples=100, deadline=None)
@given(events=order_lists)
def test_totals_agree_across_read_models(events: list[Event]):
    changes = summarize(events)
    revenue = sum((e.total for e in events), Decimal(0))

    assert sum((s.revenue for s in changes.products.values()), Decimal(0)) == revenue
    assert sum((s.revenue for s in changes.categories.values()), Decimal(0)) == revenue
    assert sum((s.spent for s in changes.customers.values()), Decimal(0)) == revenue
    assert sum((s.revenue for s in changes.hours.values()), Decimal(0)) == revenue
    assert sum(s.orders for s in changes.customers.values()) == len(events)
    assert sum(s.orders for s in changes.hours.values()) == len(events)
    assert sum(s.quantity for s in changes.products.values()) == sum(
        line.quantity for e in events for line in e.items
    )
