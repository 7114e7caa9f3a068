"""The outbox relay's invocation: drain the outbox to RabbitMQ within a time budget.

Its database connections and broker channel are cached across warm invocations (parts of the
process's runtime) and checked at the start of each, so a restarted Postgres or RabbitMQ costs
a reconnect, not an outage.
"""

from __future__ import annotations

import threading

import psycopg
from psycopg import pq

from shopcore.pipeline import broker, housekeeping
from shopcore.pipeline.outbox import DrainResult, PostgresOutbox, drain
from shopcore.pipeline.publisher import PublishFailed, WindowedPublisher
from shopcore.platform import logs, runtime
from shopcore.platform.config import settings

# Failures after which the next invocation starts on a fresh broker connection.
_START_OVER: tuple[type[BaseException], ...] = (*broker.CONNECTION_ERRORS, PublishFailed)


class RelayConnections:
    """Each thread's two database connections (the drain keeps two batches in flight): a host
    may run several invocations at once, each needs its own."""

    def __init__(self) -> None:
        self._local = threading.local()

    def get(self) -> tuple[psycopg.Connection, psycopg.Connection]:
        """This thread's two connections, checked (reopened if the server dropped them)."""
        cached: tuple[psycopg.Connection, ...] = getattr(self._local, "connections", ())
        try:
            for connection in cached:
                if connection.info.transaction_status != pq.TransactionStatus.IDLE:
                    connection.execute("ROLLBACK")  # an invocation cut short left a batch open
                connection.execute("SELECT 1")
            if len(cached) == 2:
                return cached[0], cached[1]
        except psycopg.OperationalError:
            pass
        self.close()
        url = settings().relay_database_url
        fresh = (psycopg.connect(url, autocommit=True), psycopg.connect(url, autocommit=True))
        self._local.connections = fresh
        return fresh

    def close(self) -> None:
        """Close this thread's connections."""
        for connection in getattr(self._local, "connections", ()):
            connection.close()
        self._local.connections = ()


DATABASES = runtime.Part("relay: database connections", RelayConnections, RelayConnections.close)
PUBLISHERS = runtime.Part(
    "relay: broker connection and publisher",
    lambda: broker.ConnectionCache(WindowedPublisher),
    lambda publishers: publishers.close(),
)
HOUSEKEEPING = runtime.Part("relay: housekeeping schedule", housekeeping.Schedule)
# Set by a host that is shutting down: the current batch completes, then the drain ends.
stop_requested = threading.Event()


def run(budget_seconds: float | None = None, watch: bool = False) -> DrainResult:
    """Publish pending outbox rows until none are left (or, with `watch`, until the budget)."""
    cfg = settings()
    publishers = runtime.current().get(PUBLISHERS)
    try:
        first, second = runtime.current().get(DATABASES).get()
        return drain(
            (PostgresOutbox(first), PostgresOutbox(second)),
            publishers.get(),
            batch_size=cfg.relay_batch_size,
            budget_seconds=cfg.relay_budget_seconds if budget_seconds is None else budget_seconds,
            watch=watch,
            stop=stop_requested,
        )
    except _START_OVER:
        publishers.close()  # next invocation starts on a fresh connection
        raise


def invoke(trigger: str, budget_seconds: float | None = None) -> DrainResult:
    """One relay invocation, whatever the host: drain (and, with RELAY_WATCH, keep watching
    until the budget), logging one line about it. Once a minute per process, the
    housekeeping (expired Idempotency-Keys) runs beside it."""
    with logs.invocation("outbox_relay", trigger=trigger) as record:
        cleaning = None
        if runtime.current().get(HOUSEKEEPING).due():
            budget = settings().relay_budget_seconds if budget_seconds is None else budget_seconds
            cleaning = housekeeping.start(
                settings().relay_database_url,
                lambda removed: record.update(expiredKeysRemoved=removed),
                budget_seconds=max(housekeeping.BUDGET_SECONDS, budget * 0.9),
            )
        try:
            result = run(budget_seconds=budget_seconds, watch=settings().relay_watch)
        finally:
            if cleaning is not None:
                cleaning.join()
        record.update(published=result.published, batches=result.batches)
    return result


def close() -> None:
    """Close this thread's cached connections (a host that is shutting down)."""
    runtime.current().reset(PUBLISHERS, DATABASES)
