"""Convergence: from the last 201 of a burst until every total in the read models is exact.

Polls cheaply (the newest projected outbox id, then the count of projected events against the
outbox) until every event is projected, then checks exactness with the oracle,
infra.ops.reconcile.differences. All events projected is the moment the totals became exact only
if the oracle then finds nothing: if it finds differences, it is polled until the timeout, and
differences left then are a FAILURE (reported with a sample), never a number.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg

from infra.harness.sandbox import Stack
from infra.ops import reconcile
from shopcore.platform import db

WRITTEN = "SELECT coalesce(max(id), 0), count(*) FROM outbox"
PROJECTED_UP_TO = "SELECT coalesce(max(outbox_id), 0) FROM processed_events"
PROJECTED = "SELECT count(*) FROM processed_events"


def wait_exact(stack: Stack, since: float, timeout: float, poll: float = 0.01) -> dict[str, Any]:
    """`since`: time.monotonic() of the last 201. Returns seconds from then until exact, or
    a failure with the differences left after `timeout` seconds."""
    deadline = since + timeout
    with (
        psycopg.connect(stack.database_url, autocommit=True) as write,
        psycopg.connect(stack.read_database_url, autocommit=True) as read,
    ):
        newest, written = db.one(write.execute(WRITTEN).fetchone())
        while True:
            now = time.monotonic()
            if (
                db.one(read.execute(PROJECTED_UP_TO).fetchone())[0] >= newest
                and db.one(read.execute(PROJECTED).fetchone())[0] >= written
            ):
                break
            if now > deadline:
                break
            time.sleep(poll)
    exact_at: float | None = time.monotonic()
    differences = reconcile.differences(stack.database_url, stack.read_database_url)
    while differences and time.monotonic() < deadline:
        time.sleep(0.5)
        differences = reconcile.differences(stack.database_url, stack.read_database_url)
        exact_at = time.monotonic()  # an upper bound: exact somewhere since the last check
    if differences:
        exact_at = None
    return {
        "events": written,
        "exact": not differences,
        "seconds": round(exact_at - since, 4) if exact_at is not None else None,
        "timeoutSeconds": timeout,
        "differences": len(differences),
        "differenceSample": differences[:10],
    }
