"""Fault injection against a local system: kill its processes, cut its broker connections,
terminate or refuse its database sessions, restart the broker. Loopback only."""

from __future__ import annotations

import os
import signal
import subprocess

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo


def kill(pid: int, sig: signal.Signals = signal.SIGKILL) -> None:
    os.kill(pid, sig)


def close_broker_connections(vhost: str) -> None:
    """Every AMQP connection to `vhost` is closed by the broker, as in a network cut."""
    subprocess.run(
        ["rabbitmqctl", "-q", "close_all_connections", "-p", vhost, "fault injection"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip


def restart_broker() -> None:
    """Stop and start the RabbitMQ application (the node stays up): every connection drops,
    and durable queues come back with their messages."""
    for action in ("stop_app", "start_app"):
        subprocess.run(["rabbitmqctl", "-q", action], check=True, capture_output=True, timeout=120)
    subprocess.run(
        ["rabbitmqctl", "-q", "await_startup"], check=True, capture_output=True, timeout=120
    )


def _admin(url: str) -> tuple[str, str]:
    name = conninfo_to_dict(url)["dbname"]
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
