"""What safe retries and read-your-writes cost (issue 11): Idempotency-Keys, consistency
tokens, the expired-key cleanup.

    python -m benchmarks.safe_retries [--pairs 2]
        [--only statement,keys,tokens,housekeeping,waiters,shutdown]
                                      [--out bench-results/safe-retries.json]

Each part runs on the whole local system (`python -m infra.local`) in a sandbox of its own,
with 1,000 products (stock 10^9) made through the API first; the waiters part starts a second
system whose query port has one worker (QUERY_WORKERS=1). Loads are wrk at c32 with 2
threads, as in the suite; every A/B is interleaved in pairs (A B, then B A, ...) and each run
starts with the pipeline caught up. It prints one line per run and writes everything to JSON.

- keys: orders/s and p50/p99 of `total` orders (lua/orders.lua) without an Idempotency-Key
  and with a new key on every request; then replays (each thread cycles through 500 keys it
  used once before, so every request is a replay) against new keys. Server CPU per order from
  /proc (benchmarks/cpu.py).
- tokens: a background ingest (wrk, orders, c32, `seconds`) while `clients` sequential clients
  each place an order for a customer of their own, then GET that customer's lifetime value,
  with the order's X-Consistency-Token (default wait, 5 s) or without one; the GET's latency,
  and whether its answer includes the client's orders (without a token it may not).
- housekeeping: 200,000 keys inserted directly into `idempotency_keys`; orders with new keys
  (wrk, `total`) while shopcore.pipeline.housekeeping.remove_expired_keys runs in a loop beside
  them (keys expired) or not (keys not expired, the same table); orders/s over the run and over
  the cleanup's own window, and the cleanup's rows/s; the cleanup alone at idle once.
- statement: the key's cost in the database alone, pgbench (benchmarks/key_statement.py).
- waiters: benchmarks/waiting_readers.py.
- shutdown: 50 waiting readers (connected, then hung up), and the system stopped meanwhile.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import requests

from benchmarks import cpu, http_load, key_statement, slow_clients, stats, waiting_readers
from infra.harness import sandbox
from infra.harness.local_system import LocalSystem
from infra.ops import reconcile
from shopcore.pipeline import housekeeping
from shopcore.platform import db

PRODUCTS = 1_000
POOL = 1_000
CUSTOMERS = 1_000
CONNECTIONS = 32
REPLAY_SLOTS = 500  # keys per wrk thread in the replay runs
TOKEN_CUSTOMERS = 800_000_000_000  # the token clients' customers, far from the ingest's
WAITING_CUSTOMERS = 810_000_000_000
EXPIRED_KEYS = 200_000
KEY_PREFIX = "bench-housekeeping-"

PROJECTED_ALL = """
SELECT (SELECT coalesce(max(outbox_id), 0) FROM processed_events) >= %s
   AND (SELECT count(*) FROM processed_events) >= %s
"""
INSERT_KEYS = """
INSERT INTO idempotency_keys
    (scope, key, route, fingerprint, status, answer, created_at, expires_at)
SELECT '', %(prefix)s || n, 'POST /api/orders', sha256(n::text::bytea), 201,
       jsonb_build_object('orderId', n, 'consistencyToken', 'c1.1'),
       now() - interval '2 days', now() + %(offset)s::interval + n * interval '1 millisecond'
FROM generate_series(1, %(count)s) AS n
"""

Say = Callable[[str], None]


def say(text: str) -> None:
    print(f"{datetime.now(UTC):%H:%M:%S} {text}", flush=True)


@contextlib.contextmanager
def running_system(log: Path, **env: str) -> Iterator[LocalSystem]:
    stack = sandbox.create("bench")
    try:
        system = LocalSystem(stack, log, **env)
        system.start(timeout=90)
        try:
            yield system
        finally:
            system.stop()
    finally:
        sandbox.drop(stack)


def make_products(system: LocalSystem) -> list[int]:
    http_load.run(
        system.command_url + "/", "products", total=PRODUCTS, connections=CONNECTIONS,
        success=201, env={"BENCH_CATEGORIES": "20"},
    )  # fmt: skip
    with psycopg.connect(system.stack.database_url) as conn:
        rows = conn.execute("SELECT id FROM products ORDER BY id LIMIT %s", (POOL,))
        return [r[0] for r in rows]


def settle(system: LocalSystem, timeout: float = 120.0) -> float:
    """Wait until every outbox event is projected; seconds waited."""
    start = time.monotonic()
    with (
        psycopg.connect(system.stack.database_url, autocommit=True) as write,
        psycopg.connect(system.stack.read_database_url, autocommit=True) as read,
    ):
        newest, written = db.one(
            write.execute("SELECT coalesce(max(id), 0), count(*) FROM outbox").fetchone()
        )
        while not db.one(read.execute(PROJECTED_ALL, (newest, written)).fetchone())[0]:
            if time.monotonic() - start > timeout:
                raise RuntimeError(f"pipeline not caught up after {timeout:.0f} s")
            time.sleep(0.05)
    return round(time.monotonic() - start, 2)


def count_orders(system: LocalSystem) -> int:
    with psycopg.connect(system.stack.database_url) as conn:
        return int(db.one(conn.execute("SELECT count(*) FROM orders").fetchone())[0])


def interleaved(pairs: int, a: str, b: str) -> list[tuple[int, str]]:
    """(pair, variant) in the order A B, B A, A B, ..."""
    order: list[tuple[int, str]] = []
    for pair in range(1, pairs + 1):
        first, second = (a, b) if pair % 2 else (b, a)
        order += [(pair, first), (pair, second)]
    return order


class Orders:
    """Bounded wrk order loads on one system, with the system's CPU per run."""

    def __init__(self, system: LocalSystem, pool: list[int]) -> None:
        self.system = system
        self.pool = pool
        self.probe = cpu.CpuProbe(system, [system.stack.write_db, system.stack.read_db])

    def run(self, total: int, seed: int, keying: str = "", prefix: str = "",
            customer_base: int = 0) -> dict[str, Any]:  # fmt: skip
        settled = settle(self.system)
        before = self.probe.snapshot()
        result = http_load.run(
            self.system.command_url + "/", "orders", total=total, connections=CONNECTIONS,
            success=201, seed=seed,
            env={
                "BENCH_PRODUCTS": ",".join(map(str, self.pool)),
                "BENCH_CUSTOMERS": str(CUSTOMERS),
                "BENCH_CUSTOMER_BASE": str(customer_base),
                "BENCH_IDEMPOTENCY": keying,
                "BENCH_KEY_PREFIX": prefix or f"bench-{uuid.uuid4().hex[:12]}",
                "BENCH_KEY_SLOTS": str(REPLAY_SLOTS),
            },
        )  # fmt: skip
        usage = cpu.usage(before, self.probe.snapshot(), wrk=result["wrkCpuSeconds"])
        cores = usage.get("cores", {})
        requests_ = result["requests"] or 1
        seconds = usage.get("seconds", 0)
        return {
            "settledSeconds": settled,
            **{k: result[k] for k in ("requests", "seconds", "perSecond", "p50Ms", "p90Ms",
                                      "p99Ms", "maxMs", "statuses", "failed", "complete")},
            "cpuUsPerOrder": {
                name: round(cores.get(key, 0) * seconds / requests_ * 1e6)
                for name, key in (("commandApi", "command API"),
                                  ("postgres", "postgres (sandbox databases)"))
            },
            "cores": cores,
            "lastResponse": result["monotonicLastResponse"],
        }  # fmt: skip


def keys_part(system: LocalSystem, pool: list[int], pairs: int, total: int) -> dict[str, Any]:
    orders = Orders(system, pool)
    found: dict[str, Any] = {"total": total, "runs": []}
    for pair, variant in interleaved(pairs, "none", "unique"):
        result = orders.run(total, seed=pair, keying="" if variant == "none" else "unique")
        found["runs"].append({"pair": pair, "variant": variant, **result})
        say(f"keys pair {pair} {variant:7s} {_line(result)}")
    # replays: every thread first uses its REPLAY_SLOTS keys once (the orders are placed),
    # then a run of the same keys replays every request
    prefix = f"bench-replay-{uuid.uuid4().hex[:12]}"
    base = 700_000_000_000
    first = orders.run(2 * REPLAY_SLOTS, seed=99, keying="replay", prefix=prefix,
                       customer_base=base)  # fmt: skip
    found["replayFirstUse"] = first
    for pair, variant in interleaved(pairs, "replay", "unique"):
        placed = count_orders(system)
        if variant == "replay":
            result = orders.run(total, seed=pair, keying="replay", prefix=prefix,
                                customer_base=base)  # fmt: skip
        else:
            result = orders.run(total, seed=pair, keying="unique")
        result["ordersWritten"] = count_orders(system) - placed
        found["runs"].append({"pair": f"r{pair}", "variant": variant, **result})
        say(f"replay pair {pair} {variant:7s} {_line(result)} "
            f"orders written {result['ordersWritten']}")  # fmt: skip
    return found


def _line(result: dict[str, Any]) -> str:
    return (
        f"{result['perSecond']:8,.0f}/s p50 {result['p50Ms']:6.1f} p99 {result['p99Ms']:6.1f} ms"
        f" non-201 {result['failed']} cpu/order {result['cpuUsPerOrder']} "
        f"unattributed {result['cores'].get('unattributed')}"
    )


# --- tokens -------------------------------------------------------------------------------


class TokenClient(threading.Thread):
    """Orders for one customer of its own, each followed by a GET of its lifetime value."""

    def __init__(self, system: LocalSystem, product: int, customer: int, token: bool) -> None:
        super().__init__(daemon=True)
        self.system, self.product, self.customer, self.token = system, product, customer, token
        self.stop = threading.Event()
        self.gets: list[float] = []  # ms
        self.outcomes: Counter[str] = Counter()

    def run(self) -> None:
        session = requests.Session()
        order: dict[str, Any] = {
            "customerId": self.customer,
            "items": [{"productId": self.product, "quantity": 1, "price": 1}],
        }
        url = f"{self.system.query_url}/api/analytics/customers/{self.customer}/lifetime-value"
        placed = 0
        while not self.stop.is_set():
            try:
                answer = session.post(
                    f"{self.system.command_url}/api/orders", json=order, timeout=30
                )
                if answer.status_code != 201:
                    self.outcomes[f"POST {answer.status_code}"] += 1
                    continue
                placed += 1
                headers = {"X-Consistency-Token": answer.headers["X-Consistency-Token"]}
                start = time.perf_counter()
                seen = session.get(url, headers=headers if self.token else {}, timeout=30)
                self.gets.append((time.perf_counter() - start) * 1000)
            except requests.RequestException as exc:
                self.outcomes[type(exc).__name__] += 1
                continue
            if seen.status_code == 200:
                count = seen.json()["orderCount"]
                self.outcomes["200, includes the order" if count >= placed else "200, stale"] += 1
            else:
                self.outcomes[str(seen.status_code)] += 1


def tokens_part(system: LocalSystem, pool: list[int], pairs: int, seconds: int,
                clients: int) -> dict[str, Any]:  # fmt: skip
    found: dict[str, Any] = {"seconds": seconds, "clients": clients, "runs": []}
    probe = cpu.CpuProbe(system, [system.stack.write_db, system.stack.read_db])
    for index, (pair, variant) in enumerate(interleaved(pairs, "token", "none")):
        settle(system)
        base = TOKEN_CUSTOMERS + index * 1_000
        workers = [
            TokenClient(system, pool[k * 7 % len(pool)], base + k, variant == "token")
            for k in range(clients)
        ]
        before = probe.snapshot()
        for worker in workers:
            worker.start()
        try:
            ingest = http_load.run(
                system.command_url + "/", "orders", seconds=seconds, connections=CONNECTIONS,
                seed=pair, env={"BENCH_PRODUCTS": ",".join(map(str, pool)),
                                "BENCH_CUSTOMERS": str(CUSTOMERS)},
            )  # fmt: skip
        finally:
            for worker in workers:
                worker.stop.set()
            for worker in workers:
                worker.join(40)
        usage = cpu.usage(before, probe.snapshot(), wrk=ingest["wrkCpuSeconds"])
        gets = [ms for w in workers for ms in w.gets]
        outcomes: Counter[str] = Counter()
        for worker in workers:
            outcomes.update(worker.outcomes)
        run = {
            "pair": pair,
            "variant": variant,
            "ingest": {k: ingest[k] for k in ("perSecond", "p50Ms", "p99Ms", "failed")},
            "getMs": _spread(gets),
            "getsPerSecond": round(len(gets) / seconds, 1),
            "outcomes": dict(outcomes),
            "cores": usage.get("cores", {}),
        }
        found["runs"].append(run)
        say(f"tokens pair {pair} {variant:5s} GET {run['getMs']} outcomes {run['outcomes']} "
            f"ingest {ingest['perSecond']:,.0f}/s p99 {ingest['p99Ms']} ms "
            f"unattributed {run['cores'].get('unattributed')}")  # fmt: skip
    return found


def _spread(values: list[float]) -> dict[str, Any]:
    def pct(p: float) -> float | None:
        value = stats.percentile(values, p)
        return None if value is None else round(value, 1)

    return {"n": len(values), "p50": pct(50), "p90": pct(90), "p99": pct(99), "max": pct(100)}


# --- housekeeping -------------------------------------------------------------------------


def put_keys(system: LocalSystem, expired: bool) -> float:
    """Replace the benchmark's keys with EXPIRED_KEYS new ones, expired or for a day; vacuum
    the table so every run starts from the same state. Seconds it took."""
    start = time.monotonic()
    with psycopg.connect(system.stack.database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM idempotency_keys WHERE key LIKE %s", (KEY_PREFIX + "%",))
        conn.execute(
            INSERT_KEYS,
            {"prefix": KEY_PREFIX, "count": EXPIRED_KEYS,
             "offset": "-2 days" if expired else "1 day"},
        )  # fmt: skip
        conn.execute("VACUUM ANALYZE idempotency_keys")
    return round(time.monotonic() - start, 2)


class Cleanup(threading.Thread):
    """remove_expired_keys in a loop (its 1 s budget per call, as the relay calls it) until
    nothing is left; (start, end, removed) of each call."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.calls: list[tuple[float, float, int]] = []

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while True:
                start = time.monotonic()
                removed = housekeeping.remove_expired_keys(conn)
                self.calls.append((start, time.monotonic(), removed))
                if removed == 0:
                    return

    def summary(self) -> dict[str, Any]:
        working = [c for c in self.calls if c[2] > 0]
        if not working:
            return {"removed": 0}
        removed = sum(c[2] for c in working)
        seconds = working[-1][1] - working[0][0]
        return {
            "removed": removed,
            "seconds": round(seconds, 3),
            "rowsPerSecond": round(removed / seconds) if seconds else None,
            "perCall": [[round(c[1] - c[0], 3), c[2]] for c in working],
            "start": working[0][0],
            "end": working[-1][1],
        }


class OrderCounter(threading.Thread):
    """orders_id_seq every 0.1 s: orders placed over any window of a run."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.stop = threading.Event()
        self.samples: list[tuple[float, int]] = []

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.is_set():
                value = db.one(conn.execute("SELECT last_value FROM orders_id_seq").fetchone())
                self.samples.append((time.monotonic(), int(value[0])))
                time.sleep(0.1)

    def rate(self, start: float, end: float) -> float | None:
        inside = [s for s in self.samples if start <= s[0] <= end]
        if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
            return None
        return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])


def housekeeping_part(system: LocalSystem, pool: list[int], pairs: int,
                      total: int) -> dict[str, Any]:  # fmt: skip
    found: dict[str, Any] = {"keys": EXPIRED_KEYS, "total": total, "runs": []}
    put_keys(system, expired=True)
    idle = Cleanup(system.stack.database_url)
    idle.start()
    idle.join(300)
    found["idleCleanup"] = {k: v for k, v in idle.summary().items() if k not in ("start", "end")}
    say(f"cleanup at idle: {found['idleCleanup']['removed']:,} keys, "
        f"{found['idleCleanup']['rowsPerSecond']:,} rows/s")  # fmt: skip
    orders = Orders(system, pool)
    counts: dict[tuple[int, str], tuple[float, float, OrderCounter]] = {}
    windows: dict[int, tuple[float, float]] = {}
    for pair, variant in interleaved(pairs, "idle", "cleanup"):
        inserted = put_keys(system, expired=variant == "cleanup")
        counter = OrderCounter(system.stack.database_url)
        counter.start()
        cleanup = Cleanup(system.stack.database_url)
        settle(system)
        started = time.monotonic()
        if variant == "cleanup":
            cleanup.start()
        result = orders.run(total, seed=pair, keying="unique")
        ended = result.pop("lastResponse") or time.monotonic()
        if variant == "cleanup":
            cleanup.join(300)
        counter.stop.set()
        counter.join(5)
        counts[pair, variant] = (started, ended, counter)
        result["insertSeconds"] = inserted
        if variant == "cleanup":
            summary = cleanup.summary()
            result["cleanup"] = {k: v for k, v in summary.items() if k not in ("start", "end")}
            if summary["removed"]:
                # the cleanup's window while the orders ran, from the start of the run
                windows[pair] = (summary["start"] - started, min(summary["end"], ended) - started)
        found["runs"].append({"pair": pair, "variant": variant, **result})
        say(f"housekeeping pair {pair} {variant:7s} {_line(result)} cleanup "
            f"{result.get('cleanup', {}).get('removed', 0):,} rows "
            f"{result.get('cleanup', {}).get('rowsPerSecond')}/s")  # fmt: skip
    # orders/s inside each pair's cleanup window, for both runs of the pair (same offsets)
    for run in found["runs"]:
        window = windows.get(run["pair"])
        if window is None:
            continue
        started, _ended, counter = counts[run["pair"], run["variant"]]
        rate = counter.rate(started + window[0], started + window[1])
        run["window"] = [round(w, 3) for w in window]
        run["ordersPerSecondInWindow"] = round(rate, 1) if rate else None
        say(f"housekeeping pair {run['pair']} {run['variant']:7s} in the cleanup's window "
            f"{run['window']} s: {run['ordersPerSecondInWindow']} orders/s")  # fmt: skip
    with psycopg.connect(system.stack.database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM idempotency_keys WHERE key LIKE %s", (KEY_PREFIX + "%",))
    return found


# --- the summary ----------------------------------------------------------------------------

KEY_TABLE = """
SELECT n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del, n_live_tup, n_dead_tup,
       autovacuum_count, pg_total_relation_size(relid)
FROM pg_stat_user_tables WHERE relname = 'idempotency_keys'
"""


def key_table(system: LocalSystem) -> dict[str, int]:
    """What the write database's statistics say about idempotency_keys."""
    names = ("inserted", "updated", "hotUpdated", "deleted", "live", "dead", "autovacuums",
             "bytes")  # fmt: skip
    with psycopg.connect(system.stack.database_url, autocommit=True) as conn:
        row = db.one(conn.execute(KEY_TABLE).fetchone())
    return dict(zip(names, map(int, row), strict=True))


def _pairs(runs: list[dict[str, Any]], a: str, b: str) -> list[tuple[dict[str, Any], ...]]:
    by_pair: dict[Any, dict[str, dict[str, Any]]] = {}
    for run in runs:
        by_pair.setdefault(run["pair"], {})[run["variant"]] = run
    return [(v[a], v[b]) for v in by_pair.values() if a in v and b in v]


def _ratio(x: float | None, y: float | None) -> float | None:
    return round(x / y, 3) if x is not None and y else None


def summarize(document: dict[str, Any]) -> list[str]:
    """Per-pair ratios (B / A, within each pair) and their medians, as lines of text."""
    lines: list[str] = []

    def compare(title: str, runs: list[dict[str, Any]], a: str, b: str,
                figures: dict[str, Callable[[dict[str, Any]], float | None]]) -> None:  # fmt: skip
        pairs = _pairs(runs, a, b)
        if not pairs:
            return
        lines.append(f"{title}: {b} / {a}, per pair (median)")
        for name, get in figures.items():
            ratios = [_ratio(get(y), get(x)) for x, y in pairs]
            values = ", ".join(f"{get(x)} -> {get(y)}" for x, y in pairs)
            middle = stats.median(ratios)
            median = None if middle is None else round(middle, 3)
            lines.append(f"  {name:24s} {ratios} ({median}); {values}")

    orders: dict[str, Callable[[dict[str, Any]], float | None]] = {
        "orders/s": lambda r: r["perSecond"],
        "p50 ms": lambda r: r["p50Ms"],
        "p99 ms": lambda r: r["p99Ms"],
        "command API us/order": lambda r: r["cpuUsPerOrder"]["commandApi"],
        "postgres us/order": lambda r: r["cpuUsPerOrder"]["postgres"],
    }
    if "statement" in document:
        compare("Idempotency-Key, the statement alone (pgbench)", document["statement"]["runs"],
                "none", "unique", {"orders/s": lambda r: r["tps"],
                                   "latency ms": lambda r: r["latencyMs"]})  # fmt: skip
    if "keys" in document:
        runs = document["keys"]["runs"]
        compare("Idempotency-Key", [r for r in runs if isinstance(r["pair"], int)],
                "none", "unique", orders)  # fmt: skip
        compare("replays", [r for r in runs if not isinstance(r["pair"], int)],
                "unique", "replay", orders)  # fmt: skip
    if "tokens" in document:
        compare("token-waiting GETs", document["tokens"]["runs"], "none", "token", {
            "GET p50 ms": lambda r: r["getMs"]["p50"],
            "GET p90 ms": lambda r: r["getMs"]["p90"],
            "GET p99 ms": lambda r: r["getMs"]["p99"],
            "ingest orders/s": lambda r: r["ingest"]["perSecond"],
        })  # fmt: skip
    if "housekeeping" in document:
        compare("expired-key cleanup", document["housekeeping"]["runs"], "idle", "cleanup", {
            **orders,
            "orders/s in its window": lambda r: r.get("ordersPerSecondInWindow"),
        })  # fmt: skip
    return lines


# --- the whole run ------------------------------------------------------------------------


def system_parts(document: dict[str, Any], parts: set[str], args: argparse.Namespace,
                 log: Path, save: Callable[[], None]) -> None:  # fmt: skip
    """keys, tokens and housekeeping, on one system; then the oracle."""
    with running_system(log) as system:
        pool = make_products(system)
        say(f"system up, {len(pool)} products")
        if "keys" in parts:
            document["keys"] = keys_part(system, pool, args.pairs, args.orders)
            document["keys"]["keyTable"] = key_table(system)
            save()
        if "tokens" in parts:
            document["tokens"] = tokens_part(system, pool, args.pairs, args.seconds, args.clients)
            save()
        if "housekeeping" in parts:
            document["housekeeping"] = housekeeping_part(system, pool, args.pairs, args.orders)
            save()
        settle(system)
        differences = reconcile.differences(
            system.stack.database_url, system.stack.read_database_url
        )
        document["exact"] = not differences
        say(f"read models exact: {not differences} {differences[:3]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.safe_retries")
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--orders", type=int, default=4_000, help="orders per bounded run")
    parser.add_argument("--seconds", type=int, default=10, help="each tokens run")
    parser.add_argument("--clients", type=int, default=4, help="token clients")
    parser.add_argument("--waiters", default="100,250,1000,2000")
    parser.add_argument("--expiring", type=int, default=1000)
    parser.add_argument("--abandoned", type=int, default=300)
    parser.add_argument("--only", default="statement,keys,tokens,housekeeping,waiters,shutdown")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--summarize", type=Path, help="print the ratios of a JSON document")
    args = parser.parse_args(argv)
    if args.summarize:
        print("\n".join(summarize(json.loads(args.summarize.read_text()))))
        return 0
    parts = set(args.only.split(","))
    out = args.out or Path("bench-results") / f"safe-retries-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    slow_clients.raise_open_files()
    document: dict[str, Any] = {
        "command": " ".join(["python -m benchmarks.safe_retries", *(argv or sys.argv[1:])]),
        "commit": subprocess.run(
            ["git", "describe", "--always", "--dirty"], capture_output=True, text=True
        ).stdout.strip(),
        "started": datetime.now(UTC).isoformat(),
        "loadAverage": os.getloadavg(),
    }

    def save() -> None:
        out.write_text(json.dumps(document, indent=1, default=str))

    if "statement" in parts:
        document["statement"] = key_statement.run(
            args.seconds, 16, args.pairs, pieces=True, say=say
        )
        save()
    if parts & {"keys", "tokens", "housekeeping"}:
        system_parts(document, parts, args, out.with_suffix(".system.log"), save)
    if "waiters" in parts:
        with running_system(out.with_suffix(".waiters.log"), QUERY_WORKERS="1") as system:
            pool = make_products(system)[:10]
            document["waiters"] = waiting_readers.run(
                system, pool, [int(n) for n in args.waiters.split(",") if n],
                customer_base=WAITING_CUSTOMERS, expiring=args.expiring,
                abandoned=args.abandoned, say=say,
            )  # fmt: skip
    if "shutdown" in parts:
        document["shutdown"] = []
        for hang_up in (False, True):
            with running_system(out.with_suffix(".shutdown.log"), QUERY_WORKERS="1") as system:
                found = waiting_readers.stopped_while_waiting(system, 50, hang_up)
            document["shutdown"].append(found)
            say(f"stopped with readers waiting: {found}")
    document["ended"] = datetime.now(UTC).isoformat()
    save()
    print("\n".join(summarize(document)))
    say(f"written {out}")
    return 0 if document.get("exact", True) else 1


if __name__ == "__main__":
    sys.exit(main())
