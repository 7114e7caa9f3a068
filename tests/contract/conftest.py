"""One suite, every backend: each test here runs against the in-memory fakes and against the
real Postgres and RabbitMQ adapters (pyeventsourcing's way of keeping fakes honest).

The `backend` fixture is parametrized: `memory` needs nothing running; `postgres` (marked
`services`) uses a sandbox of its own for the whole run (tables emptied and queues purged
before each test), with adapters built on its URLs, so it touches no process state.
`pytest tests/contract -m "not services"` runs the fake half with no service reachable.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import pika
import psycopg
import pytest
from psycopg_pool import ConnectionPool

from shopcore.pipeline import broker, outbox
from shopcore.pipeline.outbox import OutboxStore, Publisher
from shopcore.pipeline.publisher import WindowedPublisher
from shopcore.read.projections import PostgresReadModelStore, ReadModelStore
from shopcore.read.queries import (
    PostgresProjectedEvents,
    PostgresWrittenEvents,
    ProjectedEvents,
    WrittenEvents,
)
from tests.support import stack as stacks
from tests.support.fakes import InMemoryBroker, InMemoryOutbox, InMemoryReadModels, Tables

READ_TABLES = (
    "processed_events, product_catalog, product_sales_view, category_metrics_view, "
    "customer_ltv_view, hourly_sales_view"
)


class OutboxSide(Protocol):
    """The write side's outbox as a test drives and inspects it."""

    written: WrittenEvents

    def append(self, event: dict[str, Any], topic: str | None = None) -> int: ...
    def session(self) -> OutboxStore: ...
    def unpublished(self) -> list[int]: ...


class BrokerSide(Protocol):
    def publisher(self) -> Publisher: ...
    def take(self, queue: str) -> list[tuple[pika.BasicProperties, bytes]]: ...


class ReadSide(Protocol):
    """The read database as the projector writes it, sync-status reads it, a test checks it."""

    store: ReadModelStore
    projected: ProjectedEvents

    def rows(self, table: str) -> set[tuple[Any, ...]]: ...
    def clear(self) -> None: ...


@dataclass
class Backend:
    name: str
    outbox: OutboxSide
    broker: BrokerSide
    read: ReadSide


# --- in memory ----------------------------------------------------------------------------------


class MemoryOutbox(InMemoryOutbox):
    @property
    def written(self) -> WrittenEvents:
        return self


class MemoryRead:
    def __init__(self) -> None:
        self.models = InMemoryReadModels()
        self.store: ReadModelStore = self.models
        self.projected: ProjectedEvents = self.models

    def rows(self, table: str) -> set[tuple[Any, ...]]:
        """The rows of `table`, as the Postgres variant selects them."""
        t = self.models.tables
        if table == "processed_events":
            return {(k, p.event_type, p.outbox_id) for k, p in t.processed.items()}
        keyed: dict[str, dict[Any, tuple[Any, ...]]] = {
            "product_catalog": t.catalog,
            "product_sales_view": t.product_sales,
            "category_metrics_view": t.category_metrics,
            "customer_ltv_view": t.customer_ltv,
            "hourly_sales_view": t.hourly_sales,
        }
        return {(key, *values) for key, values in keyed[table].items()}

    def clear(self) -> None:
        self.models.tables = Tables()


def memory_backend() -> Backend:
    return Backend("memory", MemoryOutbox(), InMemoryBroker(), MemoryRead())


# --- Postgres and RabbitMQ ----------------------------------------------------------------------

SELECT = {
    "processed_events": "SELECT event_id, event_type, outbox_id FROM processed_events",
    "product_catalog": "SELECT product_id, name, category, price, created_at FROM product_catalog",
    "product_sales_view": "SELECT product_id, total_quantity_sold, total_revenue, order_count"
    " FROM product_sales_view",
    "category_metrics_view": "SELECT category_name, total_revenue, total_orders"
    " FROM category_metrics_view",
    "customer_ltv_view": "SELECT customer_id, total_spent, order_count, last_order_date"
    " FROM customer_ltv_view",
    "hourly_sales_view": "SELECT hour_timestamp, total_orders, total_revenue"
    " FROM hourly_sales_view",
}


class PostgresOutboxSide:
    def __init__(self, url: str) -> None:
        self.url = url
        self.pool = ConnectionPool(
            url, min_size=1, max_size=2, kwargs={"autocommit": True}, open=True
        )
        self.written: WrittenEvents = PostgresWrittenEvents(self.pool)
        self._sessions: list[psycopg.Connection] = []

    def append(self, event: dict[str, Any], topic: str | None = None) -> int:
        with psycopg.connect(self.url, autocommit=True) as conn:
            outbox.append(conn, event)
            [(row_id,)] = conn.execute("SELECT currval('outbox_id_seq')").fetchall()
            if topic is not None:
                conn.execute("UPDATE outbox SET topic = %s WHERE id = %s", (topic, row_id))
        return int(row_id)

    def session(self) -> OutboxStore:
        conn = psycopg.connect(self.url, autocommit=True)
        self._sessions.append(conn)
        return outbox.PostgresOutbox(conn)

    def unpublished(self) -> list[int]:
        with psycopg.connect(self.url) as conn:
            sql = "SELECT id FROM outbox WHERE published_at IS NULL ORDER BY id"
            return [r[0] for r in conn.execute(sql)]

    def close(self) -> None:
        for conn in self._sessions:
            conn.close()
        self.pool.close()


class RabbitSide:
    def __init__(self, url: str) -> None:
        self.url = url
        self._connections: list[pika.BlockingConnection] = []
        self.reader = self._connect()
        channel = self.reader.channel()
        for queue in broker.QUEUES:
            channel.queue_purge(queue)

    def _connect(self) -> pika.BlockingConnection:
        connection = broker.connect(self.url)
        self._connections.append(connection)
        return connection

    def publisher(self) -> Publisher:
        return WindowedPublisher(self._connect())

    def take(self, queue: str) -> list[tuple[pika.BasicProperties, bytes]]:
        channel = self.reader.channel()
        taken = []
        while True:
            method, properties, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return taken
            taken.append((properties, body))

    def close(self) -> None:
        for connection in self._connections:
            if connection.is_open:
                connection.close()


class PostgresReadSide:
    def __init__(self, url: str) -> None:
        self.url = url
        self.pool = ConnectionPool(url, min_size=1, max_size=2, open=True)
        self.reads = ConnectionPool(
            url, min_size=1, max_size=2, kwargs={"autocommit": True}, open=True
        )
        self.store: ReadModelStore = PostgresReadModelStore(self.pool)
        self.projected: ProjectedEvents = PostgresProjectedEvents(self.reads)

    def rows(self, table: str) -> set[tuple[Any, ...]]:
        with self.reads.connection() as conn:
            return {tuple(r) for r in conn.execute(SELECT[table])}

    def clear(self) -> None:
        with self.reads.connection() as conn:
            conn.execute(f"TRUNCATE {READ_TABLES}")

    def close(self) -> None:
        self.pool.close()
        self.reads.close()


@pytest.fixture(scope="session")
def contract_stack() -> Iterator[stacks.Stack]:
    """A sandbox of the contract suite's own: it empties tables without disturbing the run's."""
    stack = stacks.create("shopcontract")
    yield stack
    stacks.drop(stack)


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.services)])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "memory":
        yield memory_backend()
        return
    stack: stacks.Stack = request.getfixturevalue("contract_stack")
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        conn.execute("TRUNCATE outbox RESTART IDENTITY")
    with psycopg.connect(stack.read_database_url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {READ_TABLES}")
    sides = (
        PostgresOutboxSide(stack.database_url),
        RabbitSide(stack.broker_url),
        PostgresReadSide(stack.read_database_url),
    )
    try:
        yield Backend("postgres", *sides)
    finally:
        for side in sides:
            side.close()
