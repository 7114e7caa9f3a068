"""The outbox relay's invocation: drain the outbox to RabbitMQ within a time budget.

Its database connection and broker channel are cached across warm invocations and checked at
the start of each, so a restarted Postgres or RabbitMQ costs a reconnect, not an outage.
"""

from __future__ import annotations

import threading

import psycopg

from shopcore import broker
from shopcore.config import settings
from shopcore.outbox import DrainResult, drain

_connection: psycopg.Connection | None = None
_channels = broker.ChannelCache()
# Set by a host that is shutting down: the current batch completes, then the drain ends.
stop_requested = threading.Event()


def _database() -> psycopg.Connection:
    global _connection
    if _connection is not None and not _connection.closed:
        try:
            _connection.execute("SELECT 1")
            return _connection
        except psycopg.OperationalError:
            _connection.close()
    _connection = psycopg.connect(settings().database_url, autocommit=True)
    return _connection


def run(budget_seconds: float | None = None, watch: bool = False) -> DrainResult:
    """Publish pending outbox rows until none are left (or, with `watch`, until the budget)."""
    cfg = settings()
    try:
        return drain(
            _database(),
            broker.ConfirmedPublisher(_channels.channel()),
            batch_size=cfg.relay_batch_size,
            budget_seconds=cfg.relay_budget_seconds if budget_seconds is None else budget_seconds,
            watch=watch,
            stop=stop_requested,
        )
    except broker.CONNECTION_ERRORS:
        _channels.close()  # next invocation starts on a fresh connection
        raise


def close() -> None:
    global _connection
    _channels.close()
    if _connection is not None:
        _connection.close()
        _connection = None
