"""Fault injection against a local system: kill its processes (a command API worker among
them, answers lost mid-request), cut its broker connections, terminate or refuse its database
sessions, restart its broker. Loopback only.

Each fault hits only what the system under test owns: its processes, its vhost, its
databases. The machine's broker is shared, so the broker restart takes the node to restart:
a private node (infra/harness/private_broker.py), never the shared one by default."""

from __future__ import annotations

import os
import signal

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from infra.harness.sandbox import rabbitmqctl


def kill(pid: int, sig: signal.Signals = signal.SIGKILL) -> None:
    os.kill(pid, sig)


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc: Linux)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                # pid (comm) state ppid ...: comm may hold spaces and parentheses
                fields = stat.read().rpartition(")")[2].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == pid:
            found.append(int(entry))
    return sorted(found)


def kill_a_worker(server_pid: int) -> int:
    """SIGKILL one worker process of the HTTP server `server_pid` (infra/local/edge: the
    parent keeps the listening socket and respawns the worker): the requests that worker was
    serving get no answer, whether or not their writes committed. Returns the worker's pid."""
    workers = children(server_pid)
    if not workers:
        raise LookupError(f"process {server_pid} has no worker")
    kill(workers[0])
    return workers[0]


def close_broker_connections(vhost: str, node: str | None = None) -> None:
    """Every AMQP connection to `vhost` is closed by the broker, as in a network cut (on
    `node`; None: the CLI's default node). Other vhosts' connections are untouched."""
    rabbitmqctl(node, "close_all_connections", "-p", vhost, "fault injection")


def restart_broker(node: str) -> None:
    """Stop and start the RabbitMQ application on `node` (its VM stays up): every connection
    to it drops, and durable queues come back with their messages. Every program on the node
    is hit, so `node` must be one the caller owns, e.g. a private_rabbitmq()'s."""
    if not node:
        raise ValueError("restart_broker needs the node to restart (a private one)")
    for action in ("stop_app", "start_app", "await_startup"):
        rabbitmqctl(node, action, timeout=120)


def _admin(url: str) -> tuple[str, str]:
    name = str(conninfo_to_dict(url)["dbname"])
    return make_conninfo(url, dbname="postgres"), name


def terminate_sessions(url: str) -> int:
    """pg_terminate_backend every session on the database of `url` (but this one)."""
    admin, name = _admin(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchall()
    return len(rows)


def refuse_connections(url: str, refuse: bool = True) -> None:
    """A database outage: new sessions are refused and existing ones are terminated."""
    admin, name = _admin(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
                sql.Identifier(name), sql.Literal(not refuse)
            )
        )
    if refuse:
        terminate_sessions(url)
