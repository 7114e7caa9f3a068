"""Run the whole system locally: `shop run` (or `python -m infra.local`).

Checks Postgres and RabbitMQ, applies migrations, declares the broker topology, then runs:
  - the command API on COMMAND_SERVICE_PORT (create_product, create_order) and the query API
    on QUERY_SERVICE_PORT (analytics): the edge server (infra/local/edge) in front of one
    in-process WSGI dispatcher per port, COMMAND_/QUERY_WORKERS x _THREADS chosen deliberately;
  - the relay's schedule trigger and the projector's queue trigger (PROJECTOR_CONSUMERS
    processes of it).
A process that dies is restarted, as a platform would. SIGTERM or Ctrl-C: every process gets
SIGTERM, finishes what it has in hand, and exits; nothing is lost.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from infra.local import http_server
from infra.ops import migrate, preflight
from shopcore.pipeline import broker
from shopcore.platform import runtime
from shopcore.platform.config import SETTINGS, settings

GRACE_SECONDS = 30


@dataclass
class Service:
    name: str
    argv: list[str]
    env: dict[str, str]
    niceness: int = 0
    process: subprocess.Popen | None = None

    def start(self) -> None:
        niceness = self.niceness
        self.process = subprocess.Popen(
            self.argv,
            env={**os.environ, **self.env},
            preexec_fn=(lambda: os.nice(niceness)) if niceness else None,
        )
        print(f"[local] started {self.name} (pid {self.process.pid})", flush=True)


def _gateway(name: str, port: int) -> Service:
    """One port's HTTP server. It runs at API_NICENESS (default 5): here every function shares
    the same cores, which a platform would not do, and under a saturating load the relay and
    projector would otherwise get a thread's share against the APIs' many, so events would
    queue and analytics go stale: at 5 freshness under load is better for a few per cent of
    orders/s (BENCHMARKS.md#api-niceness)."""
    workers, threads = http_server.sizing(name)
    argv = http_server.argv(
        f"infra.local.gateway:{name}_port",
        host="0.0.0.0",
        port=port,
        workers=workers,
        threads=threads,
    )
    # one pooled connection per serving thread: no thread waits for a connection
    return Service(
        f"{name} API :{port}",
        argv,
        {"DB_POOL_MAX_SIZE": str(threads)},
        niceness=int(os.environ.get("API_NICENESS", "5")),
    )


def services() -> list[Service]:
    cfg = settings()
    return [
        _gateway("command", cfg.command_port),
        _gateway("query", cfg.query_port),
        Service(
            "relay schedule trigger", [sys.executable, "-m", "infra.local.schedule_trigger"], {}
        ),
        *_projector_consumers(),
    ]


def _projector_consumers() -> list[Service]:
    """PROJECTOR_CONSUMERS (default 2) queue-trigger processes, as a platform scales a
    queue-triggered function out under a backlog. Each is single-threaded Python (the GIL), so
    a backlog drains with one core per consumer; concurrent projectors are safe by design
    (idempotent, commutative upserts in key order: shopcore/read/projections.py). Consumer k has
    priority count - k: the broker feeds the second only while the first's prefetch is full,
    so a light stream still goes to one consumer in whole batches. The first is "projector
    queue trigger", the others "projector queue trigger #2", ..."""
    count = max(1, int(os.environ.get("PROJECTOR_CONSUMERS", "2")))
    argv = [sys.executable, "-m", "infra.local.queue_trigger", "--priority"]
    return [
        Service(
            "projector queue trigger" + (f" #{k}" if k > 1 else ""), [*argv, str(count - k)], {}
        )
        for k in range(1, count + 1)
    ]


# The database role each part connects as (infra/migrations/*/0002_roles.sql), unless
# USE_FUNCTION_ROLES=false: (variable, role, the CONTRACT URL it derives from)
FUNCTION_ROLES = (
    ("COMMAND_DATABASE_URL", "shop_command", "database_url"),
    ("RELAY_DATABASE_URL", "shop_relay", "database_url"),
    ("PROJECTOR_DATABASE_URL", "shop_projector", "read_database_url"),
    ("ANALYTICS_DATABASE_URL", "shop_analytics", "read_database_url"),
    ("ANALYTICS_OUTBOX_DATABASE_URL", "shop_analytics", "database_url"),
)


def function_roles_wanted() -> bool:
    """USE_FUNCTION_ROLES: true (the default) or false, the explicit opt-out."""
    value = os.environ.get("USE_FUNCTION_ROLES", "true").strip().lower()
    if value not in ("true", "false"):
        raise SystemExit(f"error: USE_FUNCTION_ROLES must be true or false, not {value!r}")
    return value == "true"


def use_function_roles() -> set[str]:
    """Point each part at its own role, unless its URL is set explicitly; return the variables
    set here. The URL is the CONTRACT URL with the role as its user and no password: this
    suits a server with trust or peer auth; elsewhere give the roles passwords and set the
    URLs (README, "Configuration")."""
    cfg = settings()
    derived = set()
    for variable, role, base in FUNCTION_ROLES:
        if not os.environ.get(variable):
            os.environ[variable] = preflight.url_as(getattr(cfg, base), role)
            derived.add(variable)
    runtime.current().reset(SETTINGS)
    return derived


def require_function_urls(derived: set[str]) -> None:
    """Every part can connect with its URL, before anything starts (the contract URLs were
    proven by the migrations)."""
    cfg = settings()
    preflight.require_function_urls(
        (variable, url, variable in derived)
        for variable, _role, base in FUNCTION_ROLES
        if (url := getattr(cfg, variable.lower())) != getattr(cfg, base)
    )


def prepare() -> None:
    preflight.require_all()
    migrate.migrate_all()
    connection = broker.connect()
    broker.declare_topology(connection.channel())
    connection.close()


def supervise(running: list[Service]) -> None:
    stopping = False

    def shutdown(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    for service in running:
        service.start()
    cfg = settings()
    print(
        f"[local] command API http://127.0.0.1:{cfg.command_port}  "
        f"query API http://127.0.0.1:{cfg.query_port}  (Ctrl-C stops)",
        flush=True,
    )
    while not stopping:
        time.sleep(0.2)
        for service in running:
            if not stopping and service.process and service.process.poll() is not None:
                print(
                    f"[local] {service.name} exited ({service.process.returncode}); restarting",
                    flush=True,
                )
                time.sleep(1)
                service.start()
    print("[local] shutting down", flush=True)
    for service in running:
        if service.process and service.process.poll() is None:
            service.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    for service in running:
        if service.process is None:
            continue
        try:
            service.process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"[local] {service.name} did not stop in time; killing", flush=True)
            service.process.kill()
    print("[local] stopped", flush=True)


def main(argv: Sequence[str] = (), prog: str = "python -m infra.local") -> None:
    """`shop run`. No options: the environment configures it (README, "Configuration")."""
    argparse.ArgumentParser(
        prog=prog,
        description=__doc__,
        epilog="Configured by the environment: .env.example lists every variable.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    ).parse_args(argv)
    wanted = function_roles_wanted()
    prepare()
    require_function_urls(use_function_roles() if wanted else set())
    if wanted:
        print("[local] each function connects as its own database role", flush=True)
    else:
        print("[local] USE_FUNCTION_ROLES=false: functions connect as the CONTRACT URLs' user")
    supervise(services())


if __name__ == "__main__":
    main(sys.argv[1:])
