"""Relay drain rate and projector catch-up rate from a backlog, and how catch-up grows with it.

For each backlog size, with the pipeline idle:
1. pause the relay's schedule trigger and every projector queue trigger (SIGSTOP: the
   supervisor restarts only processes that exit, a stopped one stays stopped);
2. write the backlog straight into the write database in one transaction: orders of 1-3
   items over the product pool, for new customers, with their order_items and an outbox row
   carrying a valid OrderCreated (the CONTRACT's event: eventId, occurredAt, orderId,
   customerId, total, items with productId, quantity, price, name, category);
3. resume the relay alone (SIGCONT) and time until every backlog row has `published_at`;
4. resume the projector and time until every backlog event is in `processed_events`.
The projector's broker connection may have been dropped while it was stopped (missed
heartbeats): its reconnect is part of the catch-up time, as it would be after any pause.
Stock is not decremented for the backlog (no stock figure is checked); everything the read
models hold is, by infra.ops.reconcile, at the end.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg

from benchmarks import stats
from infra.harness.local_system import LocalSystem
from shopcore.platform import db

RELAY = "relay schedule trigger"
PROJECTOR = "projector queue trigger"

BACKLOG_ORDERS = """
CREATE TEMP TABLE backlog_orders ON COMMIT DROP AS
SELECT nextval(pg_get_serial_sequence('orders', 'id')) AS order_id,
       %(customer_base)s::bigint + n AS customer_id,
       n,
       date_trunc('milliseconds', now()) AS at
FROM generate_series(1, %(count)s) AS n
"""
BACKLOG_ITEMS = """
CREATE TEMP TABLE backlog_items ON COMMIT DROP AS
SELECT o.order_id,
       k AS position,
       (%(pool)s::bigint[])[1 + (o.n * 7 + k * 13) %% cardinality(%(pool)s::bigint[])]
           AS product_id,
       1 + (o.n + k) %% 3 AS quantity,
       (ARRAY[1, 2.50, 9.99])[1 + (o.n + 2 * k) %% 3]::numeric(14, 2) AS price
FROM backlog_orders AS o, generate_series(1, 1 + o.n %% 3) AS k
"""
INSERT_ORDERS = """
INSERT INTO orders (id, customer_id, total, status, created_at)
SELECT o.order_id, o.customer_id, sum(i.quantity * i.price), 'created', o.at
FROM backlog_orders AS o JOIN backlog_items AS i USING (order_id)
GROUP BY o.order_id, o.customer_id, o.at
"""
INSERT_ITEMS = """
INSERT INTO order_items (order_id, product_id, quantity, price)
SELECT order_id, product_id, quantity, price FROM backlog_items ORDER BY order_id, position
"""
INSERT_EVENTS = """
WITH written AS (
    INSERT INTO outbox (topic, payload, created_at)
    SELECT 'order-events',
           jsonb_build_object(
               'eventId', gen_random_uuid(),
               'eventType', 'OrderCreated',
               'occurredAt', to_char(o.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
               'orderId', o.order_id,
               'customerId', o.customer_id,
               'total', sum(i.quantity * i.price),
               'items', jsonb_agg(
                   jsonb_build_object(
                       'productId', i.product_id, 'quantity', i.quantity, 'price', i.price,
                       'name', p.name, 'category', p.category
                   ) ORDER BY i.position
               )
           ),
           o.at
    FROM backlog_orders AS o
    JOIN backlog_items AS i USING (order_id)
    JOIN products AS p ON p.id = i.product_id
    GROUP BY o.order_id, o.customer_id, o.at
    ORDER BY o.order_id
    RETURNING id
)
SELECT min(id), max(id), count(*) FROM written
"""
UNPUBLISHED = (
    "SELECT EXISTS (SELECT 1 FROM outbox WHERE published_at IS NULL AND id BETWEEN %s AND %s)"
)
PROJECTED_UP_TO = "SELECT coalesce(max(outbox_id), 0) FROM processed_events"
PROJECTED_COUNT = "SELECT count(*) FROM processed_events WHERE outbox_id BETWEEN %s AND %s"


def insert(write_url: str, count: int, pool: list[int], customer_base: int) -> dict[str, Any]:
    started = time.perf_counter()
    params = {"count": count, "pool": pool, "customer_base": customer_base}
    with psycopg.connect(write_url) as conn:
        conn.execute(BACKLOG_ORDERS, params)
        conn.execute(BACKLOG_ITEMS, params)
        conn.execute(INSERT_ORDERS)
        conn.execute(INSERT_ITEMS)
        first, last, written = db.one(conn.execute(INSERT_EVENTS).fetchone())
    if written != count:
        raise RuntimeError(f"backlog: wrote {written} events, wanted {count}")
    return {"firstOutboxId": first, "lastOutboxId": last, "insertSeconds": _since(started)}


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 3)


@contextlib.contextmanager
def paused(system: LocalSystem, *services: str) -> Iterator[Callable[[str], None]]:
    """SIGSTOP every instance of `services`; yields resume(service); everything is resumed on
    the way out."""
    stopped = {service: system.instances(service) for service in services}
    for pids in stopped.values():
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)

    def resume(service: str) -> None:
        for pid in stopped.pop(service, []):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    try:
        yield resume
    finally:
        for service in list(stopped):
            resume(service)


def _wait(check: Callable[[], bool], timeout: float, poll: float, what: str) -> None:
    deadline = time.perf_counter() + timeout
    while not check():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{what} not done in {timeout:.0f} s")
        time.sleep(poll)


def _no_phase(_name: str) -> contextlib.AbstractContextManager:
    return contextlib.nullcontext()


def one(
    system: LocalSystem,
    count: int,
    pool: list[int],
    customer_base: int,
    timeout: float,
    phase: Callable[[str], contextlib.AbstractContextManager] = _no_phase,
) -> dict[str, Any]:
    """One backlog of `count` events; `phase(name)` wraps the relay drain and the catch-up
    (the caller records CPU and the timeline with it)."""
    stack = system.stack
    with (
        psycopg.connect(stack.database_url, autocommit=True) as write,
        psycopg.connect(stack.read_database_url, autocommit=True) as read,
        paused(system, RELAY, PROJECTOR) as resume,
    ):
        result: dict[str, Any] = {"events": count}
        result.update(insert(stack.database_url, count, pool, customer_base))
        first, last = result["firstOutboxId"], result["lastOutboxId"]

        with phase(f"relay drain {count}"):
            started = time.perf_counter()
            resume(RELAY)
            _wait(
                lambda: not db.one(write.execute(UNPUBLISHED, (first, last)).fetchone())[0],
                timeout, 0.02, f"relay drain of {count}",
            )  # fmt: skip
            result["relaySeconds"] = _since(started)
        result["relayEventsPerSecond"] = round(count / result["relaySeconds"], 1)

        def caught_up() -> bool:
            if db.one(read.execute(PROJECTED_UP_TO).fetchone())[0] < last:
                return False
            return db.one(read.execute(PROJECTED_COUNT, (first, last)).fetchone())[0] == count

        with phase(f"projector catch-up {count}"):
            started = time.perf_counter()
            resume(PROJECTOR)
            _wait(caught_up, timeout, 0.02, f"projector catch-up of {count}")
            result["projectorSeconds"] = _since(started)
        result["projectorEventsPerSecond"] = round(count / result["projectorSeconds"], 1)
    return result


def linearity(sizes: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    """Fit seconds = intercept + slope * events (reported), and the verdict: linear when the
    time per event at the largest backlog is at most 1.25x that at the smallest, i.e.
    t(100k) <= 1.25 x 10 x t(10k). A fixed start-up cost makes small backlogs slower per
    event, never faster, so only growth beyond linear fails it. (R² of three noisy points is
    not used for the verdict: a slow first point drags it down without meaning superlinear.)"""
    if len(sizes) < 2:
        return None
    xs = [s["events"] for s in sizes]
    ys = [s[key] for s in sizes]
    fit = stats.line_fit(xs, ys)
    if fit is None:
        return None
    growth = (ys[-1] / xs[-1]) / (ys[0] / xs[0])
    return {
        "interceptSeconds": round(fit["intercept"], 3),
        "secondsPerThousandEvents": round(fit["slope"] * 1000, 4),
        "r2": round(fit["r2"], 4),
        "perEventTimeGrowth": round(growth, 3),
        "linear": growth <= 1.25,
    }
