"""Does NOTIFY in the order transaction cap order throughput? (issue 2's measurement)

    python -m benchmarks.outbox_notify [--seconds 10] [--clients 16]

Runs pgbench with an order-shaped transaction (lock product, decrement stock, insert order,
item and outbox row) against a scratch copy of the write schema, once as the system commits
orders and once with `pg_notify` added, and prints transactions per second for each.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from infra.ops import migrate
from shopcore.platform.config import settings

ORDER = (Path(__file__).parent / "order_transaction.sql").read_text()
NOTIFY = "SELECT pg_notify('outbox', '');\nCOMMIT;"


def with_notify(script: str) -> str:
    """The same transaction with a NOTIFY just before its COMMIT."""
    if script.count("COMMIT;") != 1:
        raise ValueError("expected exactly one COMMIT; in the pgbench script")
    return script.replace("COMMIT;", NOTIFY)


def pgbench(url: str, script: str, seconds: int, clients: int) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script)
    params = conninfo_to_dict(url)
    out = subprocess.run(
        [
            "pgbench", "-n", "-f", f.name, "-T", str(seconds), "-c", str(clients), "-j", "2",
            "-h", str(params.get("host", "127.0.0.1")), "-p", str(params.get("port", 5432)),
            str(params["dbname"]),
        ],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    Path(f.name).unlink()
    tps = re.search(r"tps = ([\d.]+)", out.stdout)
    if tps is None:
        raise RuntimeError(f"pgbench printed no tps:\n{out.stdout}")
    return float(tps.group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    name = f"bench_notify_{uuid.uuid4().hex[:8]}"
    url = make_conninfo(settings().database_url, dbname=name)
    migrate.apply(url, migrate.MIGRATIONS / "write")
    try:
        with psycopg.connect(url) as conn:
            conn.execute(
                "INSERT INTO products (name, category, price, stock) "
                "SELECT 'p' || i, 'c', 10, 1000000000 FROM generate_series(1, 1000) i"
            )
        for round_ in range(1, args.rounds + 1):
            for label, script in (("no NOTIFY", ORDER), ("NOTIFY", with_notify(ORDER))):
                tps = pgbench(url, script, args.seconds, args.clients)
                print(f"round {round_}  {label:10s} {tps:8.0f} orders/s", flush=True)
    finally:
        with psycopg.connect(make_conninfo(url, dbname="postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


if __name__ == "__main__":
    main()
