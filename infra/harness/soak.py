"""A bounded soak: steady orders for a few minutes while random faults hit the system.

    shop soak [--minutes 3] [--rate 40] [--clients 4] [--fault-every 5] [--seed 1]
    # python -m infra.harness.soak

Runs the local emulation in a sandbox of its own (throwaway databases and vhost on this
machine's Postgres and RabbitMQ), sends orders at a fixed rate from clients that retry (each
order with an Idempotency-Key of its own, sent again with it until a definitive answer:
infra/harness/load.py), and every few seconds injects one fault at random: SIGKILL the relay,
the projector trigger or a command API worker (requests in flight lose their answers), close
every broker connection, terminate every Postgres session on either database. Then it stops
the load, waits for the pipeline to settle, and reports the orders intended, placed exactly
once and duplicated (infra.ops.reconcile.exactly_once), events published and projected,
dead-lettered messages and the reconciliation drift (which must be zero). It stops by itself
and only talks to 127.0.0.1. Exit status 1 on any drift or any order not placed exactly once.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import psycopg
import requests

from infra.harness import faults, sandbox
from infra.harness.load import OrderStream
from infra.harness.local_system import LocalSystem
from infra.ops import dead_letters, reconcile
from shopcore.platform import db


def _restart(system: LocalSystem, service: str) -> None:
    victim = system.pid_of(service)
    faults.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while system.pid_of(service) == victim and time.monotonic() < deadline:
        time.sleep(0.05)


def _kill_command_worker(system: LocalSystem) -> None:
    faults.kill_a_worker(system.pid_of(f"command API :{system.command_port}"))


STOCK = 10**9  # each product's: no order is refused for stock

FAULTS = {
    "kill relay": lambda s: _restart(s, "relay schedule trigger"),
    "kill projector": lambda s: _restart(s, "projector queue trigger"),
    "kill command API worker": _kill_command_worker,
    "cut broker connections": lambda s: faults.close_broker_connections(s.stack.name),
    "terminate write sessions": lambda s: faults.terminate_sessions(s.stack.database_url),
    "terminate read sessions": lambda s: faults.terminate_sessions(s.stack.read_database_url),
}


def settle(system: LocalSystem, timeout: float) -> list[str]:
    """Wait until reconciliation shows no drift (or the timeout); return the last drift."""
    deadline = time.monotonic() + timeout
    while True:
        drift = reconcile.differences(system.stack.database_url, system.stack.read_database_url)
        if not drift or time.monotonic() > deadline:
            return drift
        time.sleep(1)


def counts(system: LocalSystem) -> dict[str, int]:
    with psycopg.connect(system.stack.database_url) as write:
        published = db.one(
            write.execute("SELECT count(*) FROM outbox WHERE published_at IS NOT NULL").fetchone()
        )[0]
        orders = db.one(write.execute("SELECT count(*) FROM orders").fetchone())[0]
    with psycopg.connect(system.stack.read_database_url) as read:
        projected = db.one(read.execute("SELECT count(*) FROM processed_events").fetchone())[0]
    parked = len(dead_letters.list_dead_letters(system.stack.broker_url))
    return {
        "ordersInWriteDb": orders,
        "eventsPublished": published,
        "eventsProjected": projected,
        "deadLettered": parked,
    }


def soak(
    minutes: float, rate: float, fault_every: float, seed: int, log_dir: Path, clients: int = 4
) -> dict:
    rng = random.Random(seed)
    stack = sandbox.create("soak")
    system = LocalSystem(stack, log_dir / "soak-local.log")
    injected: Counter = Counter()
    try:
        system.start()
        product_ids = [
            requests.post(
                f"{system.command_url}/api/products",
                json={"name": f"S{i}", "category": f"K{i % 3}", "price": 4, "stock": STOCK},
                timeout=10,
            ).json()["productId"]
            for i in range(8)
        ]
        stream = OrderStream(
            system.command_url, product_ids, rate=rate, seed=seed, clients=clients
        ).start()
        end = time.monotonic() + minutes * 60
        while time.monotonic() < end:
            time.sleep(min(fault_every, max(0.0, end - time.monotonic())))
            if time.monotonic() >= end:
                break
            name = rng.choice(sorted(FAULTS))
            print(f"[soak] {time.strftime('%H:%M:%S')} {name}", flush=True)
            FAULTS[name](system)
            injected[name] += 1
        stream.stop()
        drift = settle(system, timeout=120)
        once = reconcile.exactly_once(
            stack.database_url, stream.intents, stock=dict.fromkeys(product_ids, STOCK)
        )
        summary = stream.summary()
        report = {
            "minutes": minutes,
            "rate": rate,
            "clients": clients,
            **once.report(),
            "retried": summary["retried"],
            "replayed": summary["replayed"],
            "ordersAccepted": len(stream.accepted),
            "otherAnswers": {str(k): v for k, v in stream.outcomes.items() if k != 201},
            **counts(system),
            "faultsInjected": dict(injected),
            "drift": len(drift),
            "driftSample": drift[:10],
        }
    finally:
        system.stop()
        sandbox.drop(stack)
    return report


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--rate", type=float, default=40.0, help="orders per second")
    parser.add_argument("--clients", type=int, default=4, help="concurrent retrying clients")
    parser.add_argument("--fault-every", type=float, default=5.0, help="seconds")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        report = soak(args.minutes, args.rate, args.fault_every, args.seed, Path(tmp), args.clients)
    print(json.dumps(report, indent=2))
    return 1 if report["drift"] or report["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
