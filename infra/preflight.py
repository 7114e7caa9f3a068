"""Before starting anything: can we reach Postgres and RabbitMQ? Say which one is missing,
at which URL, and how to start it, instead of a stack trace."""

from __future__ import annotations

import sys

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from shopcore import broker
from shopcore.config import settings

START_POSTGRES = (
    "start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
    " (or `docker compose up -d postgres`)"
)
START_RABBITMQ = "start it with: rabbitmq-server -detached (or `docker compose up -d rabbitmq`)"


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else url


def postgres_problem(url: str) -> str | None:
    # The server, not the database: a missing database is created by the migrations.
    params = conninfo_to_dict(url)
    server = make_conninfo(url, dbname="postgres") if params.get("dbname") else url
    try:
        with psycopg.connect(server, connect_timeout=3):
            return None
    except psycopg.OperationalError as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[-1].strip()
        return f"Postgres is not reachable at {redact(url)} ({reason}); {START_POSTGRES}"


def rabbitmq_problem(url: str) -> str | None:
    try:
        broker.connect(url).close()
        return None
    except broker.CONNECTION_ERRORS as exc:
        reason = str(exc) or type(exc).__name__
        return f"RabbitMQ is not reachable at {redact(url)} ({reason}); {START_RABBITMQ}"


def _fail(problems: list[str]) -> None:
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    raise SystemExit(1)


def require_postgres() -> None:
    cfg = settings()
    problems = [
        p
        for p in {postgres_problem(cfg.database_url), postgres_problem(cfg.read_database_url)}
        if p
    ]
    if problems:
        _fail(sorted(problems))


def require_all() -> None:
    cfg = settings()
    problems = [
        p
        for p in (
            postgres_problem(cfg.database_url),
            postgres_problem(cfg.read_database_url)
            if cfg.read_database_url != cfg.database_url
            else None,
            rabbitmq_problem(cfg.broker_url),
        )
        if p
    ]
    if problems:
        _fail(list(dict.fromkeys(problems)))
