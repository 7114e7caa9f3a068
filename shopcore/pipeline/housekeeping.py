"""The relay's scheduled housekeeping: what the write database no longer needs leaves in small
batches, so no long DELETE holds locks or floods the WAL while commands are being written. It
runs beside the drain, on a thread and a connection of its own, so events do not wait for it.

Today that is expired Idempotency-Keys (CONTRACT.md, "Safe retries"); commands already treat
an expired key as absent, so removing it late changes no answer. Batches skip rows another
instance (or a command taking an expired key over) holds: several relays may run this at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import psycopg

log = logging.getLogger("shopcore.pipeline.housekeeping")

REMOVE_EXPIRED_KEYS = """
DELETE FROM idempotency_keys
WHERE (scope, key) IN (
    SELECT scope, key FROM idempotency_keys
    WHERE expires_at <= now()
    ORDER BY expires_at
    LIMIT %s
    FOR UPDATE SKIP LOCKED
)
"""
BATCH_SIZE = 500
# How often one relay process runs it; it goes on while expired keys are left, within the
# invocation's budget (a relay watching the outbox runs for all of it anyway).
INTERVAL_SECONDS = 60.0
BUDGET_SECONDS = 1.0


def remove_expired_keys(
    conn: psycopg.Connection, budget_seconds: float = BUDGET_SECONDS, batch_size: int = BATCH_SIZE
) -> int:
    """Delete expired keys, one autocommit batch at a time, until none is left or the budget
    is spent; returns how many were removed."""
    removed, deadline = 0, time.monotonic() + budget_seconds
    while True:
        count = conn.execute(REMOVE_EXPIRED_KEYS, (batch_size,)).rowcount
        removed += count
        if count < batch_size or time.monotonic() >= deadline:
            return removed


class Schedule:
    """When this process last ran the housekeeping: the relay runs it at most once per
    INTERVAL_SECONDS, at the start of an invocation."""

    def __init__(self, interval_seconds: float = INTERVAL_SECONDS) -> None:
        self.interval = interval_seconds
        self.last = float("-inf")

    def due(self) -> bool:
        now = time.monotonic()
        if now - self.last < self.interval:
            return False
        self.last = now
        return True


def start(url: str, report: Callable[[int], None], budget_seconds: float) -> threading.Thread:
    """Remove expired keys on a thread of its own for up to `budget_seconds` (join it before
    the invocation returns: a platform freezes a function's threads between invocations);
    `report(removed)` after."""

    def work() -> None:
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                report(remove_expired_keys(conn, budget_seconds))
        except psycopg.Error as exc:  # the next schedule tries again; the drain goes on
            log.warning("housekeeping failed: %s", exc)

    thread = threading.Thread(target=work, name="housekeeping", daemon=True)
    thread.start()
    return thread
