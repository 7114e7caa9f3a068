"""A sandbox: two databases and a RabbitMQ vhost of its own, migrated and declared.

Tests, the soak and the benchmarks each run the system in one, so runs never see each
other's data: every name carries a random id, and the sandbox is dropped afterwards.
SANDBOX_POSTGRES_URL and SANDBOX_RABBITMQ_URL name the servers (default: this machine's).
A sandbox can also live on another RabbitMQ node, e.g. a private one a test may restart
(infra/harness/private_broker.py): pass its AMQP URL and node name to `create`.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from dataclasses import dataclass
from urllib.parse import quote

import psycopg
from psycopg import sql

from infra.ops import migrate
from shopcore.pipeline import broker

PG_SERVER = os.environ.get("SANDBOX_POSTGRES_URL", "postgresql://127.0.0.1:5432/postgres")
AMQP_SERVER = os.environ.get("SANDBOX_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672")


@dataclass(frozen=True)
class Stack:
    name: str
    amqp_server: str = AMQP_SERVER  # amqp://user:pass@host:port, without a vhost
    rabbit_node: str | None = None  # for rabbitmqctl -n; None: the CLI's default node

    @property
    def write_db(self) -> str:
        return f"{self.name}_write"

    @property
    def read_db(self) -> str:
        return f"{self.name}_read"

    @property
    def database_url(self) -> str:
        return psycopg.conninfo.make_conninfo(PG_SERVER, dbname=self.write_db)

    @property
    def read_database_url(self) -> str:
        return psycopg.conninfo.make_conninfo(PG_SERVER, dbname=self.read_db)

    @property
    def broker_url(self) -> str:
        return f"{self.amqp_server}/{quote(self.name, safe='')}"

    def env(self) -> dict[str, str]:
        return {
            "DATABASE_URL": self.database_url,
            "READ_DATABASE_URL": self.read_database_url,
            "BROKER_URL": self.broker_url,
        }


def rabbitmqctl(node: str | None, *args: str, timeout: float = 60) -> str:
    """rabbitmqctl on `node` (None: the CLI's default node, this machine's broker); its
    output. Raises CalledProcessError if it fails."""
    target = ["-n", node] if node else []
    return subprocess.run(
        ["rabbitmqctl", "-q", *target, *args],
        check=True, capture_output=True, text=True, timeout=timeout,
    ).stdout  # fmt: skip


def create(
    prefix: str = "sandbox", amqp_server: str = AMQP_SERVER, node: str | None = None
) -> Stack:
    """A new sandbox; its vhost on the broker at `amqp_server` (rabbitmqctl node `node`)."""
    stack = Stack(f"{prefix}_{uuid.uuid4().hex[:10]}", amqp_server.rstrip("/"), node)
    migrate.apply(stack.database_url, migrate.MIGRATIONS / "write")
    migrate.apply(stack.read_database_url, migrate.MIGRATIONS / "read")
    rabbitmqctl(node, "add_vhost", stack.name)
    rabbitmqctl(node, "set_permissions", "-p", stack.name, "guest", ".*", ".*", ".*")
    connection = broker.connect(stack.broker_url)
    broker.declare_topology(connection.channel())
    connection.close()
    return stack


def drop(stack: Stack) -> None:
    with psycopg.connect(PG_SERVER, autocommit=True) as conn:
        for name in (stack.write_db, stack.read_db):
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    rabbitmqctl(stack.rabbit_node, "delete_vhost", stack.name)
