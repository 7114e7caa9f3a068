"""The machine's ceilings, measured in the same run as the system:

- pgbench with the order-shaped transaction (benchmarks/order_transaction.sql: lock a product,
  decrement its stock, insert order, item and outbox row) on a scratch copy of the write
  schema with 1,000 products;
- RabbitMQ: publishing with windowed confirms and consuming with prefetch and multiple acks
  (benchmarks/amqp.py);
- a hello-world under the system's HTTP stack (infra/local/http_server.py: the edge server) with
  the query port's workers and threads, once as a raw WSGI app (the server's own ceiling) and
  once as a functions-framework function (what the framework leaves of it).
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import psycopg
import requests
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from benchmarks import amqp, http_load, processes
from infra.functions import REPO
from infra.harness.local_system import free_port
from infra.local import http_server
from infra.ops import migrate

ORDER_TRANSACTION = Path(__file__).with_name("order_transaction.sql")
POOL_PRODUCTS = 1000  # order_transaction.sql picks random(1, 1000)


def pgbench(server_url: str, name: str, clients: int, seconds: int) -> dict[str, Any]:
    """tps of the order-shaped transaction on a scratch database `name`, dropped afterwards."""
    url = make_conninfo(server_url, dbname=name)
    migrate.apply(url, migrate.MIGRATIONS / "write")
    try:
        with psycopg.connect(url) as conn:
            conn.execute(
                "INSERT INTO products (name, category, price, stock) "
                "SELECT 'p' || i, 'c' || (i %% 20), 10, 1000000000 "
                "FROM generate_series(1, %s) i",
                (POOL_PRODUCTS,),
            )
            conn.execute("ANALYZE")
        params = conninfo_to_dict(url)
        argv = [
            "pgbench", "-n", "-f", str(ORDER_TRANSACTION), "-T", str(seconds),
            "-c", str(clients), "-j", "2",
            "-h", str(params.get("host", "127.0.0.1")), "-p", str(params.get("port", 5432)),
            name,
        ]  # fmt: skip
        if params.get("user"):
            argv[1:1] = ["-U", str(params["user"])]
        with _BackendSampler(server_url, name) as backends:
            out, cpu, wall = _run_measured(argv)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    tps = re.search(r"tps = ([\d.]+)", out)
    if not tps:
        raise RuntimeError(f"pgbench printed no tps:\n{out[-2000:]}")
    latency = re.search(r"latency average = ([\d.]+) ms", out)
    processed = re.search(r"actually processed: (\d+)", out)
    failed = re.search(r"number of failed transactions: (\d+)", out)
    return {
        "script": ORDER_TRANSACTION.name,
        "clients": clients,
        "seconds": seconds,
        "tps": round(float(tps.group(1)), 1),
        "latencyAvgMs": float(latency.group(1)) if latency else None,
        "transactions": int(processed.group(1)) if processed else None,
        "failed": int(failed.group(1)) if failed else 0,
        "pgbenchCpuSeconds": round(cpu, 3),
        "pgbenchCores": round(cpu / wall, 3),
        "postgresCpuSeconds": round(backends.seconds, 3),
    }


def _run_measured(argv: list[str]) -> tuple[str, float, float]:
    """Run to completion; (stdout + stderr, CPU seconds of the process, wall seconds)."""
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, text=True)
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed (exit {proc.returncode}):\n{text[-2000:]}")
    return text, usage.ru_utime + usage.ru_stime, time.monotonic() - started


def rabbitmq(broker_url: str, messages: int, window: int = 1000) -> dict[str, Any]:
    """Publish `messages` with confirms, then consume them, on a scratch quorum queue."""
    amqp.prepare(broker_url)
    try:
        published = amqp.publish(broker_url, messages, window=window)
        consumed = amqp.consume(broker_url, messages)
    finally:
        amqp.delete(broker_url)
    return {"publish": published, "consume": consumed}


def hello(
    kind: str, workers: int, threads: int, seconds: float, connections: int
) -> dict[str, Any]:
    """wrk for `seconds` against a hello world ("wsgi" or "function") under the HTTP server the
    system's ports use (infra/local/http_server.py builds its command line)."""
    target = {"wsgi": "benchmarks.hello:wsgi_app", "function": "benchmarks.hello:function_app"}[
        kind
    ]
    port = free_port()
    argv = http_server.argv(target, host="127.0.0.1", port=port, workers=workers, threads=threads)
    server = subprocess.Popen(argv, cwd=REPO, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_healthy(url, server)
        before = _tree_cpu(server.pid)
        result = http_load.run(url, "hello", seconds=seconds, connections=connections)
        result["serverCpuSeconds"] = round(_tree_cpu(server.pid) - before, 3)
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    result.update(kind=kind, server=server_name(argv), workers=workers, threadsPerWorker=threads)
    return result


def server_name(argv: list[str]) -> str:
    """The server a command line runs: the module after `-m` (infra.local.edge; granian or
    gunicorn in older commits), else the program's name."""
    return argv[2] if len(argv) > 2 and argv[1] == "-m" else Path(argv[0]).name


def _tree_cpu(pid: int) -> float:
    total = 0.0
    for process in processes.tree(pid):
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


class _BackendSampler:
    """CPU of the Postgres backends serving database `name`, sampled every half second while
    pgbench runs (its backends are gone before a phase's end snapshot could see them)."""

    def __init__(self, server_url: str, name: str) -> None:
        self.server_url, self.name = server_url, name
        self.latest: dict[int, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        known: dict[int, psutil.Process] = {}
        while not self.stop.wait(0.5):
            try:
                pids = processes.postgres_backends(self.server_url, [self.name])
            except psycopg.Error:
                continue
            for pid in pids:
                try:
                    process = known.setdefault(pid, psutil.Process(pid))
                    times = process.cpu_times()
                except psutil.Error:
                    continue
                self.latest[pid] = times.user + times.system

    def __enter__(self) -> _BackendSampler:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join(5)

    @property
    def seconds(self) -> float:
        return sum(self.latest.values())


def _wait_healthy(url: str, server: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"hello-world server exited ({server.returncode})")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                for _ in range(8):  # a few more fresh connections: every worker answers
                    requests.get(url, timeout=1)
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"hello-world server not answering at {url}")
