"""The processes of a running LocalSystem, by the names its supervisor gives them."""

from __future__ import annotations

import re

import psutil
import psycopg

from infra.harness.local_system import LocalSystem

# what each supervised process serves (infra/local/__main__.py names them)
FUNCTIONS = {
    "command API": "create_product, create_order",
    "query API": "analytics",
    "relay schedule trigger": "outbox_relay",
    "projector queue trigger": "projector",
}


def services(system: LocalSystem) -> dict[str, int]:
    """{name: pid} of the supervised processes, the newest pid of each, ports left out of
    the name ('command API :41234' -> 'command API')."""
    found: dict[str, int] = {}
    for name, pid in re.findall(r"started (.+?) \(pid (\d+)\)", system.log()):
        found[re.sub(r"\s*:\d+$", "", name)] = int(pid)
    return found


def tree(pid: int) -> list[psutil.Process]:
    """The process and all its descendants (an HTTP server's parent and its workers)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def postgres_backends(server_url: str, databases: list[str]) -> list[int]:
    """pids of the Postgres backends connected to `databases`."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = ANY(%s)", (databases,)
        ).fetchall()
    return [r[0] for r in rows]


def rabbitmq_pids() -> list[int]:
    return [p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == "beam.smp"]
