"""Settings from the environment, in one place. Defaults work on a developer machine.

They are read once per process, on first use; after changing the environment,
`runtime.current().reset(SETTINGS)` makes the next use read it again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from shopcore.platform import runtime


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


@dataclass(frozen=True)
class Settings:
    database_url: str
    read_database_url: str
    # Each part of the system may connect as its own database role (least privilege); each
    # URL defaults to the CONTRACT variable of the database it uses.
    command_database_url: str  # create_product, create_order: the write database
    relay_database_url: str  # outbox_relay: the write database's outbox
    projector_database_url: str  # projector: the read database
    analytics_database_url: str  # analytics: the read database, read only
    analytics_outbox_database_url: str  # analytics' sync-status: the write outbox, read only
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
    # after draining, keep watching the outbox until the budget (low latency between schedules)
    relay_watch: bool
    # API keys the command API accepts; empty: no key needed
    command_api_keys: tuple[str, ...]
    # origins whose pages may call the APIs from a browser (CORS); empty: none
    cors_allowed_origins: tuple[str, ...]
    # how long an Idempotency-Key is remembered after its first success
    idempotency_ttl_seconds: int
    # the platform's limit for one request, where it sets one in the environment (Cloud Run,
    # functions-framework's gunicorn; docker-compose mirrors it): waits end before it
    request_timeout_seconds: float | None


def _positive_float(name: str) -> float | None:
    """An optional number of seconds: unset, empty or 0 means none."""
    value = float(os.environ.get(name) or 0)
    return value if value > 0 else None


def _list(name: str) -> tuple[str, ...]:
    """A comma-separated variable, blanks dropped."""
    return tuple(item.strip() for item in os.environ.get(name, "").split(",") if item.strip())


def _url(name: str, default: str) -> str:
    """An optional URL: unset or empty means `default`."""
    return os.environ.get(name) or default


def from_environment() -> Settings:
    write = os.environ.get("DATABASE_URL", "postgresql://localhost:5432/write_db")
    read = os.environ.get("READ_DATABASE_URL", "postgresql://localhost:5432/read_db")
    return Settings(
        database_url=write,
        read_database_url=read,
        command_database_url=_url("COMMAND_DATABASE_URL", write),
        relay_database_url=_url("RELAY_DATABASE_URL", write),
        projector_database_url=_url("PROJECTOR_DATABASE_URL", read),
        analytics_database_url=_url("ANALYTICS_DATABASE_URL", read),
        analytics_outbox_database_url=_url("ANALYTICS_OUTBOX_DATABASE_URL", write),
        broker_url=os.environ.get("BROKER_URL", "amqp://guest:guest@localhost:5672/"),
        command_port=_int("COMMAND_SERVICE_PORT", 8080),
        query_port=_int("QUERY_SERVICE_PORT", 8081),
        pool_max_size=_int("DB_POOL_MAX_SIZE", 8),
        max_body_bytes=_int("MAX_BODY_BYTES", 64 * 1024),
        max_order_items=_int("MAX_ORDER_ITEMS", 100),
        relay_batch_size=_int("RELAY_BATCH_SIZE", 1000),
        relay_budget_seconds=_float("RELAY_BUDGET_SECONDS", 10.0),
        relay_watch=os.environ.get("RELAY_WATCH", "true").lower() == "true",
        command_api_keys=_list("COMMAND_API_KEYS"),
        cors_allowed_origins=tuple(o.rstrip("/") for o in _list("CORS_ALLOWED_ORIGINS")),
        idempotency_ttl_seconds=_int("IDEMPOTENCY_TTL_SECONDS", 86400),
        request_timeout_seconds=_positive_float("CLOUD_RUN_TIMEOUT_SECONDS"),
    )


SETTINGS = runtime.Part("settings", from_environment)


def settings() -> Settings:
    """This process's settings."""
    return runtime.current().get(SETTINGS)
