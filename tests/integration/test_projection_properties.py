"""Property tests for apply_events on the real read database: delivery does not matter.

For a generated set of ProductCreated and OrderCreated events, any permutation, with any events
redelivered (1-3 copies), split into any batches, each applied in its own transaction, leaves
exactly the read-model rows that applying the set once, in one batch, leaves. Two projectors
applying halves of such a delivery concurrently end the same way.

The reference (the set applied once) is computed in a transaction that is rolled back, so the
delivery under test then runs on the very same keys and event ids. The database is shared by
the whole run: every example owns its product and customer ids, categories and hours (hours
far in the future), compares only those rows, and never truncates anything.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shopcore import events
from shopcore.events import Event
from shopcore.platform import jsonio
from shopcore.platform.config import settings as shop_settings
from shopcore.read.projections import PostgresReadModels, apply_events

# The `services` fixture (autouse) only points this process at the run's stack: sharing it
# between examples is intended.
PROPERTY = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
CONCURRENT = settings(PROPERTY, max_examples=10)

HOURS = 4  # an example's events occur within HOURS hours of its own
FIRST_HOUR = datetime(2300, 1, 1, tzinfo=UTC)  # no other test uses hours this far ahead
KEY_BASE = 7 * 10**15  # nor product or customer ids this large
_examples = itertools.count()

Delivery = list[tuple[Event, int | None]]  # (event, outbox id), as the projector passes them


# --- the generated world -----------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    product: int  # index into the example's products
    quantity: int
    cents: int


@dataclass(frozen=True)
class Order:
    customer: int  # index into the example's customers
    millisecond: int  # since the example's first hour
    lines: tuple[Line, ...]


@dataclass(frozen=True)
class World:
    """Events over small pools, independent of the keys an example gets."""

    category_of: tuple[int, ...]  # product index -> category index
    customers: int
    announced: tuple[tuple[int, int, int, int], ...]  # (product, cents, stock, millisecond)
    orders: tuple[Order, ...]


MILLISECONDS = st.integers(0, HOURS * 3600 * 1000 - 1)


@st.composite
def worlds(draw: st.DrawFn, max_orders: int = 6) -> World:
    categories = draw(st.integers(1, 3))
    category_of = tuple(
        draw(st.lists(st.integers(0, categories - 1), min_size=1, max_size=4))
    )  # some categories may end up unused; that is fine
    products = range(len(category_of))
    customers = draw(st.integers(1, 3))
    # a product is announced at most once: its id comes from the write side's sequence
    announced = tuple(
        (p, draw(st.integers(0, 10**6)), draw(st.integers(0, 100)), draw(MILLISECONDS))
        for p in draw(st.lists(st.sampled_from(products), unique=True))
    )
    line = st.builds(Line, st.sampled_from(products), st.integers(1, 5), st.integers(0, 10**6))
    order = st.builds(
        Order,
        st.integers(0, customers - 1),
        MILLISECONDS,
        st.lists(line, min_size=1, max_size=3).map(tuple),  # a product may appear twice
    )
    orders = tuple(draw(st.lists(order, min_size=0 if announced else 1, max_size=max_orders)))
    return World(category_of, customers, announced, orders)


@dataclass(frozen=True)
class Keys:
    """The read-model keys one example owns."""

    products: list[int]
    categories: list[str]
    customers: list[int]
    first_hour: datetime
    event_ids: list[uuid.UUID]

    @property
    def end_hour(self) -> datetime:
        return self.first_hour + timedelta(hours=HOURS)


def cents(amount: int) -> Decimal:
    return Decimal(amount).scaleb(-2)


def instantiate(world: World) -> tuple[Delivery, Keys]:
    """The world's events with keys of their own, parsed from JSON as the projector gets them."""
    n = next(_examples)
    tag = uuid.uuid4().hex[:8]
    first = KEY_BASE + n * 100
    products = [first + i for i in range(len(world.category_of))]
    customers = [first + 50 + i for i in range(world.customers)]
    categories = [f"prop-{tag}-{i}" for i in range(max(world.category_of) + 1)]
    first_hour = FIRST_HOUR + timedelta(hours=n * HOURS)

    def at(millisecond: int) -> datetime:
        return first_hour + timedelta(milliseconds=millisecond)

    bodies = [
        events.product_created(
            products[p], f"product {p}", categories[world.category_of[p]], cents(c), s, at(ms)
        )
        for p, c, s, ms in world.announced
    ]
    for number, order in enumerate(world.orders, start=1):
        items = [
            {
                "productId": products[line.product],
                "quantity": line.quantity,
                "price": cents(line.cents),
                "name": f"product {line.product}",
                "category": categories[world.category_of[line.product]],
            }
            for line in order.lines
        ]
        total = sum((i["quantity"] * i["price"] for i in items), Decimal("0.00"))
        bodies.append(
            events.order_created(
                first + number, customers[order.customer], total, items, at(order.millisecond)
            )
        )
    parsed = [events.parse(jsonio.dumps(body)) for body in bodies]
    # every event keeps its outbox id on redelivery; some come without one
    delivery = [(e, None if i % 4 == 3 else first + i) for i, e in enumerate(parsed)]
    return delivery, Keys(products, categories, customers, first_hour, [e.event_id for e in parsed])


# --- applying and reading ----------------------------------------------------------------------


def connect() -> psycopg.Connection:
    # a lock wait that long is a hang: fail instead of stalling the run
    return psycopg.connect(shop_settings().read_database_url, options="-c lock_timeout=20s")


def read_models(conn: psycopg.Connection, keys: Keys) -> dict[str, list[tuple[Any, ...]]]:
    queries = {
        "product_sales_view": (
            "SELECT product_id, total_quantity_sold, total_revenue, order_count"
            " FROM product_sales_view WHERE product_id = ANY(%s) ORDER BY 1",
            (keys.products,),
        ),
        "category_metrics_view": (
            "SELECT category_name, total_revenue, total_orders"
            " FROM category_metrics_view WHERE category_name = ANY(%s) ORDER BY 1",
            (keys.categories,),
        ),
        "customer_ltv_view": (
            "SELECT customer_id, total_spent, order_count, last_order_date"
            " FROM customer_ltv_view WHERE customer_id = ANY(%s) ORDER BY 1",
            (keys.customers,),
        ),
        "hourly_sales_view": (
            "SELECT hour_timestamp, total_orders, total_revenue FROM hourly_sales_view"
            " WHERE hour_timestamp >= %s AND hour_timestamp < %s ORDER BY 1",
            (keys.first_hour, keys.end_hour),
        ),
        "product_catalog": (
            "SELECT product_id, name, category, price, created_at"
            " FROM product_catalog WHERE product_id = ANY(%s) ORDER BY 1",
            (keys.products,),
        ),
        "processed_events": (
            "SELECT event_id, event_type, outbox_id, occurred_at"
            " FROM processed_events WHERE event_id = ANY(%s) ORDER BY 1",
            (keys.event_ids,),
        ),
    }
    return {name: conn.execute(sql, params).fetchall() for name, (sql, params) in queries.items()}


def applied_once(delivery: Delivery, keys: Keys) -> dict[str, list[tuple[Any, ...]]]:
    """The rows after applying `delivery` once, in one batch; rolled back afterwards."""
    with connect() as conn:
        assert apply_events(PostgresReadModels(conn), delivery) == len(delivery)
        rows = read_models(conn, keys)
        conn.rollback()
    assert len(rows["processed_events"]) == len(delivery)
    return rows


def committed_rows(keys: Keys) -> dict[str, list[tuple[Any, ...]]]:
    with connect() as conn:
        return read_models(conn, keys)


def apply_in_batches(conn: psycopg.Connection, batches: list[Delivery]) -> int:
    new = 0
    for batch in batches:
        new += apply_events(PostgresReadModels(conn), batch)
        conn.commit()
    return new


def redelivered(data: st.DataObject, delivery: Delivery) -> Delivery:
    """Every event 1-3 times, in any order."""
    copies = data.draw(st.lists(st.integers(1, 3), min_size=len(delivery), max_size=len(delivery)))
    repeated = [pair for pair, count in zip(delivery, copies, strict=True) for _ in range(count)]
    return data.draw(st.permutations(repeated))


def split(data: st.DataObject, delivery: Delivery) -> list[Delivery]:
    """`delivery` cut into consecutive non-empty batches of any sizes."""
    if len(delivery) <= 1:
        return [delivery] if delivery else []
    cuts = sorted(data.draw(st.sets(st.integers(1, len(delivery) - 1))))
    bounds = [0, *cuts, len(delivery)]
    return [delivery[a:b] for a, b in itertools.pairwise(bounds)]


def same_rows(actual: dict[str, list], expected: dict[str, list]) -> None:
    for table in expected:
        assert actual[table] == expected[table], table


# --- properties --------------------------------------------------------------------------------


@PROPERTY
@given(worlds(), st.data())
def test_any_order_duplication_and_batching_gives_the_rows_of_one_clean_batch(world, data):
    delivery, keys = instantiate(world)
    expected = applied_once(delivery, keys)

    batches = split(data, redelivered(data, delivery))
    with connect() as conn:
        new = apply_in_batches(conn, batches)

    assert new == len(delivery)  # each event counted exactly once, whatever the redeliveries
    same_rows(committed_rows(keys), expected)


@CONCURRENT
@given(worlds(max_orders=12), st.data())
def test_two_concurrent_projectors_give_the_rows_of_sequential_application(world, data):
    delivery, keys = instantiate(world)
    expected = applied_once(delivery, keys)

    shuffled = redelivered(data, delivery)
    middle = len(shuffled) // 2
    halves = [split(data, shuffled[:middle]), split(data, shuffled[middle:])]
    start = threading.Barrier(2, timeout=30)
    new: list[int] = []
    failures: list[BaseException] = []

    def projector(batches: list[Delivery]) -> None:
        try:
            with connect() as conn:
                conn.execute("SELECT 1")  # connected and warm before the race starts
                conn.commit()
                start.wait()
                new.append(apply_in_batches(conn, batches))
        except BaseException as exc:
            failures.append(exc)
            start.abort()

    threads = [threading.Thread(target=projector, args=(half,)) for half in halves]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a projector hung"
    assert not failures, failures

    assert sum(new) == len(delivery)  # each event claimed by exactly one projector
    same_rows(committed_rows(keys), expected)
