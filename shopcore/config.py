"""Settings from the environment, in one place. Defaults work on a developer machine."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


@dataclass(frozen=True)
class Settings:
    database_url: str
    read_database_url: str
    broker_url: str
    command_port: int
    query_port: int
    # connection pool per process: sized for the threads that serve requests in it
    pool_max_size: int
    # the largest request body a command accepts, and the most items an order may have
    max_body_bytes: int
    max_order_items: int
    # the relay: events per claimed batch, and how long one invocation may keep draining
    relay_batch_size: int
    relay_budget_seconds: float
    # API keys the command API accepts; empty: no key needed
    command_api_keys: tuple[str, ...]


@cache
def settings() -> Settings:
    return Settings(
        database_url=os.environ.get("DATABASE_URL", "postgresql://localhost:5432/write_db"),
        read_database_url=os.environ.get(
            "READ_DATABASE_URL", "postgresql://localhost:5432/read_db"
        ),
        broker_url=os.environ.get("BROKER_URL", "amqp://guest:guest@localhost:5672/"),
        command_port=_int("COMMAND_SERVICE_PORT", 8080),
        query_port=_int("QUERY_SERVICE_PORT", 8081),
        pool_max_size=_int("DB_POOL_MAX_SIZE", 8),
        max_body_bytes=_int("MAX_BODY_BYTES", 64 * 1024),
        max_order_items=_int("MAX_ORDER_ITEMS", 100),
        relay_batch_size=_int("RELAY_BATCH_SIZE", 500),
        relay_budget_seconds=_float("RELAY_BUDGET_SECONDS", 10.0),
        command_api_keys=tuple(
            k.strip() for k in os.environ.get("COMMAND_API_KEYS", "").split(",") if k.strip()
        ),
    )
