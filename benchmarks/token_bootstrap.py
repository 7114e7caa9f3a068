"""What a query process's first consistency check costs on a long history: on its first use,
`ProjectionWatch._start()` (shopcore/read/consistency.py) asks for the newest projected id `n`
and checks the token `n` from the watermark 0, i.e. `PostgresSettlement.read_side(0, n, [n])`
(a count over the UNION of processed_events and parked_events in the read database) and
`write_side(0, n)` (a count of outbox rows and the xmin check in the write database). Every
query worker and every Lambda cold start pays it once.

    python -m benchmarks.token_bootstrap [--sizes 100000,1000000,5000000] [--cold 5]
        [--warm 7] [--out FILE]

A sandbox of its own (write and read databases, the project's migrations; no broker) is
filled straight by SQL (generate_series) to each size in turn, growing: outbox rows (small
valid payloads with an eventId, published) and their processed_events rows; one id in 100,000
is parked instead of projected (parked_events), so both sides count n. After each fill:
VACUUM ANALYZE, then with the settings pointed at the sandbox:

- cold: `runtime.current().reset()` (new pools, so new backends: empty catalog and plan
  caches), then the pools opened (one `SELECT 1` each, timed apart), then newest_projected(),
  read_side(0, n, [n]) and write_side(0, n), each timed; and, after another reset, a whole
  `ProjectionWatch(...).watermark()` (what `_start` does, the listening thread included).
  Postgres' shared buffers and the OS page cache are *not* emptied (that needs a server
  restart or root): "cold" is a cold process against a warm server.
- warm: the same two calls again on the open pools;
- near: with a watermark close to n: read_side(n - 1000, n, [n]) and write_side(n - 1000, n).

And once per size, EXPLAIN (ANALYZE, BUFFERS) of both statements from 0 (plans in the JSON).
Medians over the repetitions; the load average at each step. The sandbox is dropped at the
end, whatever happens.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from benchmarks import stats
from infra.harness import sandbox
from infra.ops import migrate
from shopcore.platform import db, runtime
from shopcore.read import consistency

PARKED_EVERY = 100_000
CHUNK = 1_000_000
NEAR = 1_000
URL_VARIABLES = (
    "DATABASE_URL",
    "READ_DATABASE_URL",
    "ANALYTICS_DATABASE_URL",
    "ANALYTICS_OUTBOX_DATABASE_URL",
)

FILL_OUTBOX = """
INSERT INTO outbox (id, topic, payload, created_at, published_at)
SELECT i, 'order-events',
       jsonb_build_object('eventId', md5(i::text)::uuid, 'eventType', 'OrderCreated',
                          'orderId', i, 'customerId', mod(i, 1000), 'total', '9.99'),
       t, t
FROM generate_series(%(low)s + 1, %(high)s) AS i,
     LATERAL (SELECT timestamptz '2026-01-01' + i * interval '1 second' AS t) AS at
"""
FILL_PROCESSED = f"""
INSERT INTO processed_events (event_id, event_type, outbox_id, occurred_at, processed_at)
SELECT md5(i::text)::uuid, 'OrderCreated', i, t, t + interval '50 milliseconds'
FROM generate_series(%(low)s + 1, %(high)s) AS i,
     LATERAL (SELECT timestamptz '2026-01-01' + i * interval '1 second' AS t) AS at
WHERE mod(i, {PARKED_EVERY}) <> {PARKED_EVERY // 2}
"""
FILL_PARKED = f"""
INSERT INTO parked_events (outbox_id, reason)
SELECT i, 'bench: parked'
FROM generate_series(%(low)s + 1, %(high)s) AS i
WHERE mod(i, {PARKED_EVERY}) = {PARKED_EVERY // 2}
"""


@contextmanager
def databases() -> Iterator[sandbox.Stack]:
    """A write and a read database of their own, migrated (no vhost: nothing here uses the
    broker); both dropped afterwards."""
    stack = sandbox.Stack(f"bench_tokens_{uuid.uuid4().hex[:10]}")
    try:
        migrate.apply(stack.database_url, migrate.MIGRATIONS / "write")
        migrate.apply(stack.read_database_url, migrate.MIGRATIONS / "read")
        yield stack
    finally:
        with psycopg.connect(sandbox.PG_SERVER, autocommit=True) as conn:
            for name in (stack.write_db, stack.read_db):
                conn.execute(
                    psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        psycopg.sql.Identifier(name)
                    )
                )


def fill(stack: sandbox.Stack, low: int, high: int) -> dict[str, float]:
    """Outbox ids (low, high] on both sides, in chunks; then VACUUM ANALYZE. Seconds each."""
    started = time.monotonic()
    for url, statements in (
        (stack.database_url, [FILL_OUTBOX]),
        (stack.read_database_url, [FILL_PROCESSED, FILL_PARKED]),
    ):
        with psycopg.connect(url, autocommit=True) as conn:
            for start in range(low, high, CHUNK):
                bounds = {"low": start, "high": min(high, start + CHUNK)}
                with conn.transaction():
                    for statement in statements:
                        conn.execute(statement, bounds)
            if url == stack.database_url:
                conn.execute("SELECT setval('outbox_id_seq', %s)", (high,))
    filled = time.monotonic()
    for url in (stack.database_url, stack.read_database_url):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
    return {
        "fillSeconds": round(filled - started, 1),
        "vacuumSeconds": round(time.monotonic() - filled, 1),
    }


def sizes_on_disk(stack: sandbox.Stack) -> dict[str, int]:
    """Bytes of each side's tables and indexes that the counts read."""
    found = {}
    for url, relations in (
        (stack.database_url, ["outbox", "outbox_pkey"]),
        (
            stack.read_database_url,
            ["processed_events", "processed_events_outbox_id_idx", "parked_events_pkey"],
        ),
    ):
        with psycopg.connect(url) as conn:
            for relation in relations:
                row = conn.execute("SELECT pg_relation_size(%s::regclass)", (relation,)).fetchone()
                assert row is not None
                found[relation] = int(row[0])
    return found


def plan_nodes(node: dict[str, Any], depth: int = 0) -> list[str]:
    """A plan's nodes, indented: type, strategy, relation, index, heap fetches."""
    name = node["Node Type"] + (f" on {node['Relation Name']}" if "Relation Name" in node else "")
    if "Strategy" in node and node["Strategy"] != "Plain":
        name += f" ({node['Strategy']})"
    if "Index Name" in node:
        name += f" using {node['Index Name']}"
    if "Heap Fetches" in node:
        name += f" (heap fetches {node['Heap Fetches']})"
    lines = ["  " * depth + name]
    for child in node.get("Plans", []):
        lines += plan_nodes(child, depth + 1)
    return lines


def explain(stack: sandbox.Stack, n: int) -> dict[str, Any]:
    """EXPLAIN (ANALYZE, BUFFERS) of both statements from 0: the plan's nodes, its time and
    its buffers (shared hit / read, temporary blocks written)."""
    found = {}
    for side, url, statement, params in (
        ("read", stack.read_database_url, consistency.SETTLED, {"low": 0, "high": n, "ids": [n]}),
        ("write", stack.database_url, consistency.COMMITTED, {"low": 0, "high": n}),
    ):
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute(
                "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, params
            ).fetchone()
        assert row is not None
        plan = row[0][0]
        nodes = plan_nodes(plan["Plan"])
        found[side] = {
            "executionMs": round(plan["Execution Time"], 2),
            "planningMs": round(plan["Planning Time"], 2),
            "sharedHit": plan["Plan"].get("Shared Hit Blocks"),
            "sharedRead": plan["Plan"].get("Shared Read Blocks"),
            "tempWritten": plan["Plan"].get("Temp Written Blocks"),
            "nodes": nodes,
        }
    return found


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = call()
    return round((time.perf_counter() - started) * 1000, 2), result


def opened() -> None:
    """Both pools open, each with a backend that has run one statement."""
    for pool in (db.analytics_pool(), db.analytics_outbox_pool()):
        with pool.connection() as conn:
            conn.execute("SELECT 1")


def measure(stack: sandbox.Stack, n: int, cold: int, warm: int, say: Any) -> dict[str, Any]:
    settlement = consistency.PostgresSettlement()
    runs: dict[str, list[float]] = {
        key: []
        for key in (
            "coldPoolsOpen",
            "coldNewestProjected",
            "coldRead",
            "coldWrite",
            "coldWatchStart",
            "warmRead",
            "warmWrite",
            "nearRead",
            "nearWrite",
        )
    }
    answers: dict[str, Any] = {}
    for _ in range(cold):
        runtime.current().reset()
        ms, _ = timed(opened)
        runs["coldPoolsOpen"].append(ms)
        ms, newest = timed(settlement.newest_projected)
        runs["coldNewestProjected"].append(ms)
        ms, answers["read"] = timed(lambda: settlement.read_side(0, n, [n]))
        runs["coldRead"].append(ms)
        ms, answers["write"] = timed(lambda: settlement.write_side(0, n))
        runs["coldWrite"].append(ms)
        answers["newest"] = newest
        runtime.current().reset()
        watch = consistency.ProjectionWatch(stack.read_database_url, settlement)
        try:
            ms, answers["watermark"] = timed(watch.watermark)
        finally:
            watch.close()
        runs["coldWatchStart"].append(ms)
    for _ in range(warm):
        ms, _ = timed(lambda: settlement.read_side(0, n, [n]))
        runs["warmRead"].append(ms)
        ms, _ = timed(lambda: settlement.write_side(0, n))
        runs["warmWrite"].append(ms)
    for _ in range(warm):
        ms, answers["nearRead"] = timed(lambda: settlement.read_side(n - NEAR, n, [n]))
        runs["nearRead"].append(ms)
        ms, answers["nearWrite"] = timed(lambda: settlement.write_side(n - NEAR, n))
        runs["nearWrite"].append(ms)
    runtime.current().reset()
    count, projected = answers["read"]
    checks = {
        "newestProjected": answers["newest"],
        "readSide": [count, sorted(projected)],
        "writeSide": list(answers["write"]),
        "watermark": answers["watermark"],
        "nearReadSide": [answers["nearRead"][0], sorted(answers["nearRead"][1])],
        "nearWriteSide": list(answers["nearWrite"]),
    }
    medians = {key: stats.median(values) for key, values in runs.items()}
    say(
        f"n={n:,}: cold pools {medians['coldPoolsOpen']:.1f} ms, newest "
        f"{medians['coldNewestProjected']:.1f}, read {medians['coldRead']:.1f}, write "
        f"{medians['coldWrite']:.1f}, whole watch start {medians['coldWatchStart']:.1f}; warm "
        f"read {medians['warmRead']:.1f}, write {medians['warmWrite']:.1f}; near read "
        f"{medians['nearRead']:.2f}, write {medians['nearWrite']:.2f} ms; checks {checks}; "
        f"load {os.getloadavg()[0]:.2f}"
    )
    return {"runsMs": runs, "mediansMs": medians, "checks": checks}


def run(sizes: list[int], cold: int, warm: int, say: Any = print) -> list[dict[str, Any]]:
    results = []
    saved = {name: os.environ.get(name) for name in URL_VARIABLES}
    with databases() as stack:
        say(f"sandbox {stack.name}")
        os.environ["DATABASE_URL"] = os.environ["ANALYTICS_OUTBOX_DATABASE_URL"] = (
            stack.database_url
        )
        os.environ["READ_DATABASE_URL"] = os.environ["ANALYTICS_DATABASE_URL"] = (
            stack.read_database_url
        )
        try:
            runtime.current().reset()
            low = 0
            for n in sorted(sizes):
                load_before = os.getloadavg()
                filled = fill(stack, low, n)
                low = n
                say(f"n={n:,}: filled {filled}, load {load_before[0]:.2f}")
                plans = explain(stack, n)
                result = {
                    "events": n,
                    **filled,
                    "bytes": sizes_on_disk(stack),
                    "explain": plans,
                    "loadAverageBefore": [round(x, 2) for x in os.getloadavg()],
                    **measure(stack, n, cold, warm, say),
                    "loadAverageAfter": [round(x, 2) for x in os.getloadavg()],
                }
                say(f"  plans: read {plans['read']}; write {plans['write']}")
                results.append(result)
        finally:
            runtime.current().reset()
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    return results


def table(results: list[dict[str, Any]]) -> list[str]:
    def cell(values: list[float]) -> str:
        median = stats.median(values)
        return f"{median:,.1f} ({min(values):,.1f}-{max(values):,.1f})"

    lines = [
        "| events | cold: read_side(0, n) | cold: write_side(0, n) | cold: whole watch start "
        "| warm: read_side(0, n) | warm: write_side(0, n) | near: read_side(n-1000, n) "
        "| near: write_side(n-1000, n) | load (1 min) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        ms = r["runsMs"]
        lines.append(
            f"| {r['events']:,} | {cell(ms['coldRead'])} | {cell(ms['coldWrite'])} "
            f"| {cell(ms['coldWatchStart'])} | {cell(ms['warmRead'])} | {cell(ms['warmWrite'])} "
            f"| {cell(ms['nearRead'])} | {cell(ms['nearWrite'])} "
            f"| {r['loadAverageBefore'][0]:.1f}-{r['loadAverageAfter'][0]:.1f} |"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.token_bootstrap")
    parser.add_argument("--sizes", default="100000,1000000,5000000")
    parser.add_argument("--cold", type=int, default=5)
    parser.add_argument("--warm", type=int, default=7)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    out = args.out or (
        Path("bench-results") / f"token-bootstrap-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    document: dict[str, Any] = {
        "command": " ".join(["python -m benchmarks.token_bootstrap", *sys.argv[1:]]),
        "commit": subprocess.run(
            ["git", "describe", "--always", "--dirty"], capture_output=True, text=True
        ).stdout.strip(),
        "started": datetime.now(UTC).isoformat(),
        "loadAverage": [round(x, 2) for x in os.getloadavg()],
    }
    started = time.monotonic()
    document["sizes"] = run([int(n) for n in args.sizes.split(",")], args.cold, args.warm)
    document["minutes"] = round((time.monotonic() - started) / 60, 1)
    document["loadAverageAtEnd"] = [round(x, 2) for x in os.getloadavg()]
    out.write_text(json.dumps(document, indent=2) + "\n")
    print("\n".join(table(document["sizes"])))
    print(f"JSON: {out}")


if __name__ == "__main__":
    main()
