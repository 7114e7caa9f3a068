"""What the event's subtransaction costs a write in the database alone (issue 11, `707ebab`):
store_product and place_order of migration 0005 insert their outbox row inside a plpgsql
`BEGIN ... EXCEPTION WHEN OTHERS THEN RAISE; END;` block, so the row's xmin is a subtransaction's
xid assigned after the outbox id's nextval (the top of 0005; shopcore/read/consistency.py). This
runs create_order's two statements (benchmarks/key_statement.py: the read that reserves the
order's id, then place_order, no Idempotency-Key) and create_product's (nextval, store_product)
with the real functions and with flat copies of them, in interleaved pgbench pairs, on a scratch
copy of the write schema with 1,000 products (created and dropped here).

    python -m benchmarks.event_subtransaction [--seconds 10] [--pairs 6] [--clients 1,8]
        [--workloads orders,products] [--async-commit] [--out FILE]

`--async-commit` sets synchronous_commit off in the scratch database (and only there), so a
commit does not wait for its WAL flush and the writes' CPU shows through the fsyncs.

The flat copies (place_order_flat, store_product_flat) are pg_get_functiondef of the real ones
with the block replaced by its INSERT alone; before timing anything the script checks, in one
transaction each, that the real function's outbox row has an xmin of its own and the flat one's
shares the order's (product's). Per run: rate and pgbench's average latency, the CPU of the
sandbox's Postgres backends per write (each backend's CPU as last sampled, every 0.1 s), xids
and pg_stat_slru 'Subtrans' blocks per write (both the whole server's: others' work counts
too), the wait events of the sandbox's backends as sampled, the load average and the machine's
busy cores.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from benchmarks import cpu, stats
from benchmarks.key_statement import EVENT, NO_KEY, pgbench, script
from infra.harness.sandbox import PG_SERVER
from infra.ops import migrate

PRODUCT_EVENT = (
    '{"eventId": "0b8f7c2e-5d3a-4e1b-9c6d-2f4a8e1b7c90", "eventType": "ProductCreated", '
    '"occurredAt": "2026-11-29T14:00:00.000Z", "productId": 1, "name": "bench product", '
    '"category": "bench-cat", "price": "9.99", "stock": 10}'
)
# create_product's two statements: the product's id, then store_product without a key
PRODUCT_SCRIPT = f"""\
SELECT nextval('products_id_seq') AS pid \\gset
SELECT * FROM store_product(:pid, 'bench ' || :pid::text, 'bench-cat', 9.99, 10, now(),
    'product-events', '{PRODUCT_EVENT}'::jsonb, 'c1.', {NO_KEY});
"""
FUNCTIONS = {"orders": "place_order", "products": "store_product"}

# The block as 0005 writes it in append_event (pg_get_functiondef keeps a plpgsql body
# verbatim)
BLOCK = re.compile(
    r"BEGIN[ \t]*--[^\n]*\n(\s*INSERT INTO outbox .*?;)\s*EXCEPTION WHEN OTHERS THEN\s*RAISE;"
    r"\s*END;",
    re.DOTALL,
)


def workload_script(workload: str, flat: bool) -> str:
    text = script(False) if workload == "orders" else PRODUCT_SCRIPT
    function = FUNCTIONS[workload]
    return text.replace(f"{function}(", f"{function}_flat(") if flat else text


def create_flat(conn: psycopg.Connection, function: str) -> None:
    """`function`_flat: `function` appending its event through append_event_flat, which is
    append_event without the subtransaction around its outbox INSERT."""
    exists = conn.execute("SELECT to_regproc('public.append_event_flat')").fetchone()
    if exists is None or exists[0] is None:
        append, blocks = BLOCK.subn(r"\1", _definition(conn, "append_event"))
        if blocks != 1 or "EXCEPTION WHEN" in append:
            raise RuntimeError(f"append_event: found {blocks} event blocks")
        conn.execute(_renamed(append, "append_event", "append_event_flat"))
    flat, calls = re.subn(r"\bappend_event\(", "append_event_flat(", _definition(conn, function))
    if calls != 1:
        raise RuntimeError(f"{function}: found {calls} calls of append_event")
    conn.execute(_renamed(flat, function, f"{function}_flat"))


def _definition(conn: psycopg.Connection, function: str) -> str:
    row = conn.execute("SELECT pg_get_functiondef(%s::regproc)", (f"public.{function}",)).fetchone()
    assert row is not None
    return str(row[0])


def _renamed(definition: str, old: str, new: str) -> str:
    renamed, names = re.subn(rf"\bpublic\.{old}\(", f"public.{new}(", definition, count=1)
    if names != 1:
        raise RuntimeError(f"{old}: its name was not found in its definition")
    return renamed


def own_xmin(conn: psycopg.Connection, function: str) -> bool:
    """Whether one call of `function` gives its outbox row an xmin other than its row's."""
    with conn.transaction(force_rollback=True):
        if function.startswith("place_order"):
            table = "orders"
            call = (
                "SELECT outbox_id FROM {}(%s, 1, ARRAY[1]::bigint[], ARRAY[1]::integer[], "
                "ARRAY[9.99]::numeric[], 9.99, now(), 'order-events', %s::jsonb, 'c1.', {})"
            )
            event = EVENT
        else:
            table = "products"
            call = (
                "SELECT outbox_id FROM {}(%s, 'xmin check', 'c', 9.99, 1, now(), "
                "'product-events', %s::jsonb, 'c1.', {})"
            )
            event = PRODUCT_EVENT
        new_id = conn.execute(f"SELECT nextval('{table}_id_seq')").fetchone()
        assert new_id is not None
        outbox_id = conn.execute(
            sql.SQL(call).format(sql.Identifier(function), sql.SQL(NO_KEY)),
            (new_id[0], event),
        ).fetchone()
        assert outbox_id is not None
        written = (new_id[0], outbox_id[0])
        assert written is not None
        row = conn.execute(
            sql.SQL(
                "SELECT (SELECT xmin::text FROM {} WHERE id = %s)"
                " <> (SELECT xmin::text FROM outbox WHERE id = %s)"
            ).format(sql.Identifier(table)),
            written,
        ).fetchone()
    assert row is not None and row[0] is not None
    return bool(row[0])


def server_counters(url: str) -> dict[str, int]:
    """The next xid and pg_stat_slru's 'Subtrans' blocks: the whole server's."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint,"
            " blks_zeroed, blks_hit, blks_read, blks_written"
            " FROM pg_stat_slru WHERE name = 'Subtrans'"
        ).fetchone()
    assert row is not None
    return dict(zip(("xid", "zeroed", "hit", "read", "written"), map(int, row), strict=True))


class BackendSampler:
    """Every `interval` s: the sandbox's client backends' wait events and CPU (the last value
    seen per pid: a backend's last < `interval` s and its exit are missed)."""

    def __init__(self, url: str, database: str, interval: float = 0.1) -> None:
        self.url, self.database, self.interval = url, database, interval
        self.waits: Counter[str] = Counter()
        self.samples = 0
        self.cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        processes: dict[int, psutil.Process] = {}
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.wait(self.interval):
                rows = conn.execute(
                    "SELECT pid, state, wait_event_type, wait_event FROM pg_stat_activity"
                    " WHERE datname = %s AND backend_type = 'client backend'"
                    " AND pid <> pg_backend_pid()",
                    (self.database,),
                ).fetchall()
                self.samples += 1
                for pid, state, kind, event in rows:
                    if state == "active":
                        self.waits[f"{kind}:{event}" if kind else "on CPU"] += 1
                    try:
                        process = processes.setdefault(pid, psutil.Process(pid))
                        times = process.cpu_times()
                        self.cpu[pid] = times.user + times.system
                    except (psutil.NoSuchProcess, psutil.AccessDenied):
                        pass

    def __enter__(self) -> BackendSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


@contextmanager
def scratch_database(async_commit: bool = False) -> Iterator[str]:
    """A scratch database with the write schema, 1,000 products and the flat functions;
    `async_commit`: its sessions run with synchronous_commit off (no wait for the WAL flush)."""
    name = f"bench_subxact_{uuid.uuid4().hex[:8]}"
    url = make_conninfo(PG_SERVER, dbname=name)
    migrate.apply(url, migrate.MIGRATIONS / "write")
    try:
        with psycopg.connect(url) as conn:
            if async_commit:
                conn.execute(
                    sql.SQL("ALTER DATABASE {} SET synchronous_commit = off").format(
                        sql.Identifier(name)
                    )
                )
            conn.execute(
                "INSERT INTO products (name, category, price, stock) "
                "SELECT 'p' || i, 'c', 9.99, 1000000000 FROM generate_series(1, 1000) i"
            )
            for function in FUNCTIONS.values():
                create_flat(conn, function)
        yield url
    finally:
        with psycopg.connect(make_conninfo(url, dbname="postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def timed(url: str, text: str, seconds: int, clients: int) -> dict[str, Any]:
    before, probe = server_counters(url), cpu.CpuProbe(None, [])
    machine = probe.snapshot()
    with BackendSampler(url, str(psycopg.conninfo.conninfo_to_dict(url)["dbname"])) as sampler:
        result: dict[str, Any] = pgbench(url, text, seconds, clients)
    after = server_counters(url)
    writes = result["tps"] * seconds
    result["postgresCpuUsPerWrite"] = round(sum(sampler.cpu.values()) / writes * 1e6)
    result["serverXidsPerWrite"] = round((after["xid"] - before["xid"]) / writes, 2)
    result["serverSubtransBlocks"] = {k: after[k] - before[k] for k in after if k != "xid"}
    result["waitSamples"] = dict(sampler.waits.most_common())
    result["samples"] = sampler.samples
    result["machineBusyCores"] = cpu.usage(machine, probe.snapshot())["cores"]["machine busy"]
    result["loadAverage"] = [round(x, 2) for x in os.getloadavg()]
    return result


def run(
    seconds: int,
    pairs: int,
    clients: list[int],
    workloads: list[str],
    async_commit: bool = False,
    say: Any = print,
) -> dict[str, Any]:
    found: dict[str, Any] = {
        "seconds": seconds,
        "pairs": pairs,
        "clients": clients,
        "synchronousCommit": "off" if async_commit else "server default",
        "runs": [],
    }
    with scratch_database(async_commit) as url:
        with psycopg.connect(url) as conn:
            found["ownXmin"] = {
                f: own_xmin(conn, f) for name in FUNCTIONS.values() for f in (name, f"{name}_flat")
            }
        say(f"outbox row with an xmin of its own: {found['ownXmin']}")
        if found["ownXmin"] != {f: not f.endswith("_flat") for f in found["ownXmin"]}:
            raise RuntimeError("the flat functions are not flat, or the real ones not nested")
        combinations = [(w, n) for w in workloads for n in clients]
        for pair in range(1, pairs + 1):
            for index, (workload, n) in enumerate(combinations):
                # each combination alternates its order from pair to pair (AB, BA, ...)
                first_sub = (pair + index) % 2 == 1
                for side in ("subxact", "flat") if first_sub else ("flat", "subxact"):
                    text = workload_script(workload, side == "flat")
                    result = timed(url, text, seconds, n)
                    found["runs"].append(
                        {"pair": pair, "workload": workload, "clients": n, "side": side,
                         **result}
                    )  # fmt: skip
                    say(
                        f"pair {pair} {workload:8s} c{n:<2d} {side:7s} "
                        f"{result['tps']:8,.0f}/s, latency {result['latencyMs']:.2f} ms, "
                        f"Postgres {result['postgresCpuUsPerWrite']} us/write, "
                        f"xids {result['serverXidsPerWrite']}/write, "
                        f"load {result['loadAverage'][0]}, "
                        f"busy {result['machineBusyCores']} cores, "
                        f"failed {result['failed']}"
                    )
    return found


def summarize(found: dict[str, Any]) -> list[str]:
    """Per workload and client count: each pair's flat -> subxact and the ratio subxact/flat."""
    lines = []
    for workload in dict.fromkeys(r["workload"] for r in found["runs"]):
        for n in found["clients"]:
            ratios: list[float] = []
            cpu_ratios: list[float] = []
            for pair in range(1, found["pairs"] + 1):
                sides = {
                    r["side"]: r
                    for r in found["runs"]
                    if (r["pair"], r["workload"], r["clients"]) == (pair, workload, n)
                }
                if len(sides) < 2:
                    continue
                flat, sub = sides["flat"], sides["subxact"]
                ratios.append(sub["tps"] / flat["tps"])
                cpu_ratios.append(sub["postgresCpuUsPerWrite"] / flat["postgresCpuUsPerWrite"])
                lines.append(
                    f"{workload} c{n} pair {pair}: {flat['tps']:,.0f} -> {sub['tps']:,.0f}/s "
                    f"({ratios[-1]:.2f}), latency {flat['latencyMs']:.2f} -> "
                    f"{sub['latencyMs']:.2f} ms, Postgres {flat['postgresCpuUsPerWrite']} -> "
                    f"{sub['postgresCpuUsPerWrite']} us/write ({cpu_ratios[-1]:.2f})"
                )
            if ratios:
                lines.append(
                    f"{workload} c{n}: rate subxact/flat median {stats.median(ratios):.3f} "
                    f"({min(ratios):.2f}-{max(ratios):.2f}), Postgres CPU per write median "
                    f"{stats.median(cpu_ratios):.3f} ({min(cpu_ratios):.2f}-{max(cpu_ratios):.2f})"
                )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.event_subtransaction")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--clients", default="1,8")
    parser.add_argument("--workloads", default="orders,products")
    parser.add_argument(
        "--async-commit",
        action="store_true",
        help="synchronous_commit off in the scratch database: commits do not wait for fsync",
    )
    parser.add_argument("--out", type=Path)
    parser.add_argument("--summarize", type=Path, help="print the ratios of a JSON document")
    args = parser.parse_args(argv)
    if args.summarize:
        print("\n".join(summarize(json.loads(args.summarize.read_text())["subtransaction"])))
        return
    out = args.out or (
        Path("bench-results") / f"event-subtransaction-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    document: dict[str, Any] = {
        "command": " ".join(["python -m benchmarks.event_subtransaction", *sys.argv[1:]]),
        "commit": subprocess.run(
            ["git", "describe", "--always", "--dirty"], capture_output=True, text=True
        ).stdout.strip(),
        "started": datetime.now(UTC).isoformat(),
        "loadAverage": os.getloadavg(),
    }
    started = time.monotonic()
    document["subtransaction"] = run(
        args.seconds,
        args.pairs,
        [int(n) for n in args.clients.split(",")],
        args.workloads.split(","),
        args.async_commit,
    )
    document["minutes"] = round((time.monotonic() - started) / 60, 1)
    document["loadAverageAtEnd"] = os.getloadavg()
    out.write_text(json.dumps(document, indent=1, default=str))
    print("\n".join(summarize(document["subtransaction"])))
    print(f"JSON: {out}")


if __name__ == "__main__":
    main()
