"""Connection pools, and running work on them with the retries a dead connection allows.

A FaaS instance serves many invocations from one process: a pool is opened by the first one
and kept. The pools are a part of the process's runtime (`POOLS`), closed by its reset (at
interpreter exit).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from psycopg_pool import ConnectionPool

from shopcore.platform import runtime
from shopcore.platform.config import settings

T = TypeVar("T")


class Pools:
    """One pool per (URL, autocommit): functions sharing a process share what they can."""

    def __init__(self) -> None:
        self._pools: dict[tuple[str, bool], ConnectionPool] = {}
        self._lock = threading.Lock()

    def get(self, url: str, autocommit: bool) -> ConnectionPool:
        key = (url, autocommit)
        pool = self._pools.get(key)
        if pool is None:
            with self._lock:
                pool = self._pools.get(key)
                if pool is None:
                    pool = ConnectionPool(
                        url,
                        min_size=1,
                        max_size=settings().pool_max_size,
                        kwargs={"autocommit": autocommit},
                        timeout=5.0,
                        open=True,
                    )
                    self._pools[key] = pool
        return pool

    def close(self) -> None:
        with self._lock:
            for pool in self._pools.values():
                pool.close()
            self._pools.clear()


POOLS = runtime.Part("database pools", Pools, Pools.close)


def _pool(url: str, autocommit: bool) -> ConnectionPool:
    return runtime.current().get(POOLS).get(url, autocommit)


def command_pool() -> ConnectionPool:
    """The write database, as the command functions' role. Autocommit: each command is one
    atomic statement, so BEGIN/COMMIT would only add round trips."""
    return _pool(settings().command_database_url, autocommit=True)


def projector_pool() -> ConnectionPool:
    """The read database, as the projector's role."""
    return _pool(settings().projector_database_url, autocommit=False)


def analytics_pool() -> ConnectionPool:
    """The read database for single-statement reads: autocommit, no BEGIN/COMMIT trips."""
    return _pool(settings().analytics_database_url, autocommit=True)


def analytics_outbox_pool() -> ConnectionPool:
    """The write database's outbox, read only, for sync-status."""
    return _pool(settings().analytics_outbox_database_url, autocommit=True)


class UnitOfWork:
    """One write transaction. Calling `commit` marks the point after which it is not retried."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self.committing = False

    def commit(self) -> None:
        self.committing = True
        self.conn.commit()


def run_in_transaction(pool: ConnectionPool, work: Callable[[UnitOfWork], T]) -> T:
    """Run `work(uow)` in one transaction; commit on return, roll back on exception.

    Pooled connections may have died while idle (database restart, pg_terminate_backend). A
    failure before COMMIT was sent leaves nothing written, so the pool's dead connections are
    swept and the work runs once more. A failure during COMMIT is not retried: its outcome is
    unknown and repeating it could write twice.
    """
    for attempt in (1, 2):
        uow: UnitOfWork | None = None
        try:
            with pool.connection() as conn:
                uow = UnitOfWork(conn)
                result = work(uow)
                if not uow.committing:
                    uow.commit()
                return result
        except psycopg.OperationalError:
            if attempt == 2 or (uow is not None and uow.committing):
                raise
        pool.check()
    raise AssertionError("unreachable")


# The server ended the session before running anything we sent (admin shutdown after
# pg_terminate_backend, a restart): repeating the statement cannot apply it twice.
_SESSION_ENDED_FIRST = ("57P01", "57P02", "57P03")


def run_statement(pool: ConnectionPool, work: Callable[[psycopg.Connection], T]) -> T:
    """Run `work(conn)`, which executes one atomic statement on an autocommit connection.

    If the pooled connection turns out to have been ended by the server before the statement
    ran, the pool's dead connections are swept and the statement runs once more. Any other
    connection failure is not retried: the statement may have committed.
    """
    for attempt in (1, 2):
        try:
            with pool.connection() as conn:
                return work(conn)
        except psycopg.OperationalError as exc:
            if attempt == 2 or exc.sqlstate not in _SESSION_ENDED_FIRST:
                raise
        pool.check()
    raise AssertionError("unreachable")


def one(row: tuple[Any, ...] | None) -> tuple[Any, ...]:
    """The row a statement that always returns one returned (an aggregate, RETURNING)."""
    if row is None:
        raise RuntimeError("the statement returned no row")
    return row
