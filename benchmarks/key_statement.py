"""What an Idempotency-Key adds to an order in the database alone (issue 11): pgbench runs the
two statements create_order sends (the read that reserves the order's id, then place_order of
migration 0005) on a scratch copy of the write schema with 1,000 products, with the key's eight
arguments NULL (no key) or a new key each time, in interleaved pairs.

    python -m benchmarks.key_statement [--seconds 10] [--clients 16] [--pairs 3] [--pieces]

`--pieces` also times the claim's parts alone, one autocommit statement per transaction: a bare
INSERT into idempotency_keys, the same INSERT ... ON CONFLICT DO UPDATE ... WHERE the claim
runs, and claim_idempotency_key itself (plpgsql, lock_timeout set and reset around it).

The whole-system A/B (benchmarks/safe_retries.py) includes the command API's Python and the
pipeline; this isolates the statement: the claim (INSERT ... ON CONFLICT into idempotency_keys,
two indexes), the answer's consistency token written into the claimed row (by append_event;
store_token when this was first measured), and the WAL they add.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from infra.harness.sandbox import PG_SERVER
from infra.ops import migrate

EVENT = (
    '{"eventId": "6f1c0e57-4a86-4a57-9e53-0c6f2a3b8d11", "eventType": "OrderCreated", '
    '"occurredAt": "2026-11-29T14:00:00.000Z", "orderId": 1, "customerId": 1, "total": "9.99", '
    '"items": [{"productId": 1, "quantity": 1, "price": "9.99", "name": "bench product 0-1", '
    '"category": "bench-cat-01"}]}'
)
SCRIPT = """\\set p random(1, 1000)
\\set c random(1, 100000)
\\set k random(1, 1000000000000)
SELECT nextval('orders_id_seq') AS oid, (SELECT name FROM products WHERE id = :p) AS pname \\gset
SELECT * FROM place_order(:oid, :c, ARRAY[:p]::bigint[], ARRAY[1]::integer[],
    ARRAY[9.99]::numeric[], 9.99, now(), 'order-events', '{event}'::jsonb, 'c1.', {key});
"""
NO_KEY = ", ".join(["NULL"] * 8)
NEW_KEY = (
    "'', 'pgbench-' || :client_id || '-' || :k, 'POST /api/orders', "
    "decode(repeat('ab', 32), 'hex'), 201::smallint, '{\"orderId\": 1}'::jsonb, "
    "interval '1 day', interval '10 seconds'"
)


_NEW = "\\set k random(1, 1000000000000)\n"
_ROW = (
    "(scope, key, route, fingerprint, status, answer, created_at, expires_at) VALUES "
    "('', '{p}-' || :client_id || '-' || :k, 'POST /api/orders', decode(repeat('ab', 32), "
    "'hex'), 201, '{{\"orderId\": 1}}', now(), now() + interval '1 day')"
)
PIECES = {
    "SELECT 1": "SELECT 1;\n",
    "INSERT": _NEW + "INSERT INTO idempotency_keys " + _ROW.format(p="i") + ";\n",
    "INSERT ... ON CONFLICT": _NEW
    + "INSERT INTO idempotency_keys AS k "
    + _ROW.format(p="c")
    + " ON CONFLICT (scope, key) DO UPDATE SET route = EXCLUDED.route"
    " WHERE k.expires_at <= now();\n",
    "claim_idempotency_key()": _NEW
    + "SELECT * FROM claim_idempotency_key('', 'f-' || :client_id || '-' || :k, "
    "'POST /api/orders', decode(repeat('ab', 32), 'hex'), 201::smallint, "
    "'{\"orderId\": 1}'::jsonb, interval '1 day', interval '10 seconds');\n",
}


def script(key: bool) -> str:
    return SCRIPT.replace("{event}", EVENT).replace("{key}", NEW_KEY if key else NO_KEY)


def pgbench(url: str, text: str, seconds: int, clients: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(text)
    params = conninfo_to_dict(url)
    out = subprocess.run(
        [
            "pgbench", "-n", "-M", "prepared", "-f", f.name, "-T", str(seconds),
            "-c", str(clients), "-j", "2",
            "-h", str(params.get("host", "127.0.0.1")), "-p", str(params.get("port", 5432)),
            *(["-U", str(params["user"])] if params.get("user") else []), str(params["dbname"]),
        ],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    Path(f.name).unlink()
    tps = re.search(r"tps = ([\d.]+)", out.stdout)
    latency = re.search(r"latency average = ([\d.]+) ms", out.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", out.stdout)
    if tps is None or latency is None:
        raise RuntimeError(f"pgbench printed no tps:\n{out.stdout}\n{out.stderr}")
    return {
        "tps": float(tps.group(1)),
        "latencyMs": float(latency.group(1)),
        "failed": int(failed.group(1)) if failed else 0,
    }


def wal_bytes(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()
        return int(row[0]) if row else 0


def run(
    seconds: int, clients: int, pairs: int, pieces: bool = False, say: Any = print
) -> dict[str, Any]:
    name = f"bench_keysql_{uuid.uuid4().hex[:8]}"
    url = make_conninfo(PG_SERVER, dbname=name)
    migrate.apply(url, migrate.MIGRATIONS / "write")
    found: dict[str, Any] = {"seconds": seconds, "clients": clients, "runs": []}
    try:
        with psycopg.connect(url) as conn:
            conn.execute(
                "INSERT INTO products (name, category, price, stock) "
                "SELECT 'p' || i, 'c', 9.99, 1000000000 FROM generate_series(1, 1000) i"
            )
        for pair in range(1, pairs + 1):
            order = ("none", "unique") if pair % 2 else ("unique", "none")
            for variant in order:
                wal = wal_bytes(url)  # the whole server's WAL: other users' writes count too
                result = pgbench(url, script(variant == "unique"), seconds, clients)
                transactions = result["tps"] * seconds
                result["walBytesPerOrder"] = round((wal_bytes(url) - wal) / transactions)
                found["runs"].append({"pair": pair, "variant": variant, **result})
                say(
                    f"statement pair {pair} {variant:7s} {result['tps']:8,.0f} orders/s, "
                    f"latency {result['latencyMs']:.2f} ms, WAL ~{result['walBytesPerOrder']:,} "
                    f"B/order, failed {result['failed']}"
                )
        if pieces:
            found["pieces"] = []
            for round_ in range(1, pairs + 1):
                for piece, text in PIECES.items():
                    result = pgbench(url, text, seconds, clients)
                    # machine time per statement: both cores over the rate
                    result["usPerStatement"] = round(2e6 / result["tps"])
                    found["pieces"].append({"round": round_, "piece": piece, **result})
                    say(f"piece round {round_} {piece:24s} {result['tps']:8,.0f}/s "
                        f"(~{result['usPerStatement']} us of the 2 cores each)")  # fmt: skip
    finally:
        with psycopg.connect(make_conninfo(url, dbname="postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.key_statement")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--pieces", action="store_true")
    args = parser.parse_args()
    run(args.seconds, args.clients, args.pairs, args.pieces)


if __name__ == "__main__":
    main()
