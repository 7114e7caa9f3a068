"""Isolated backing services for a test: its own two databases and its own RabbitMQ vhost.

Runs never see each other's data: every name carries a random run id, and the stack is
dropped afterwards.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import quote

import psycopg
from psycopg import sql

from infra import migrate
from shopcore import broker, config, consumer, db, relay

PG_SERVER = os.environ.get("TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/postgres")
AMQP_SERVER = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672")


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


def create(prefix: str = "shoptest") -> Stack:
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


def activate(stack: Stack) -> None:
    """Point this process's shopcore at `stack` (env, settings, pools, cached connections)."""
    os.environ.update(stack.env())
    reset_process_state()


def reset_process_state() -> None:
    db.close_pools()
    relay.close()
    consumer._channels.close()
    config.settings.cache_clear()


@contextmanager
def isolated() -> Iterator[Stack]:
    """A fresh stack, active for the block; the previous settings come back afterwards."""
    saved = {k: os.environ.get(k) for k in ("DATABASE_URL", "READ_DATABASE_URL", "BROKER_URL")}
    stack = create()
    try:
        activate(stack)
        yield stack
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset_process_state()
        drop(stack)
