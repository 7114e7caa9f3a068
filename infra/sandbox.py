"""A sandbox: two databases and a RabbitMQ vhost of its own, migrated and declared.

Tests, the soak and the benchmarks each run the system in one, so runs never see each
other's data: every name carries a random id, and the sandbox is dropped afterwards.
SANDBOX_POSTGRES_URL and SANDBOX_RABBITMQ_URL name the servers (default: this machine's).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from dataclasses import dataclass
from urllib.parse import quote

import psycopg
from psycopg import sql

from infra import migrate
from shopcore import broker

PG_SERVER = os.environ.get("SANDBOX_POSTGRES_URL", "postgresql://127.0.0.1:5432/postgres")
AMQP_SERVER = os.environ.get("SANDBOX_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672")


@dataclass(frozen=True)
class Stack:
    name: str

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
        return f"{AMQP_SERVER}/{quote(self.name, safe='')}"

    def env(self) -> dict[str, str]:
        return {
            "DATABASE_URL": self.database_url,
            "READ_DATABASE_URL": self.read_database_url,
            "BROKER_URL": self.broker_url,
        }


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


def create(prefix: str = "sandbox") -> Stack:
    stack = Stack(f"{prefix}_{uuid.uuid4().hex[:10]}")
    migrate.apply(stack.database_url, migrate.MIGRATIONS / "write")
    migrate.apply(stack.read_database_url, migrate.MIGRATIONS / "read")
    _rabbitmqctl("add_vhost", stack.name)
    _rabbitmqctl("set_permissions", "-p", stack.name, "guest", ".*", ".*", ".*")
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
    _rabbitmqctl("delete_vhost", stack.name)
