"""Before starting anything: can we reach Postgres and RabbitMQ? Say which one is missing,
at which URL, and how to start it, instead of a stack trace. Then, before the functions start:
can each one connect with its own database URL (its least-privilege role)?"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from urllib.parse import quote

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from shopcore.pipeline import broker
from shopcore.platform.config import settings

START_POSTGRES = (
    "start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
    " (or `docker compose up -d postgres`)"
)
START_RABBITMQ = "start it with: rabbitmq-server -detached (or `docker compose up -d rabbitmq`)"


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    if "://" not in url:
        try:
            params = conninfo_to_dict(url)
        except psycopg.ProgrammingError:
            return url
        return make_conninfo(url, password="***") if params.get("password") else url
    if "@" not in url:
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


def url_as(url: str, user: str, password: str | None = None) -> str:
    """`url` logging in as `user` with `password` (none: without one); a postgresql:// URL
    stays one, a key=value string stays one."""
    params = {**conninfo_to_dict(url), "user": user}
    params.pop("password", None)
    if password is not None:
        params["password"] = password
    scheme, sep, rest = url.partition("://")
    if sep:
        cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
        hosts, tail = rest[:cut], rest[cut:]
        login = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
        candidate = f"{scheme}://{login}@{hosts.rpartition('@')[2]}{tail}"
        if conninfo_to_dict(candidate) == params:  # no user/password in the query string
            return candidate
    return make_conninfo("", **params)


def function_url_problem(variable: str, url: str, derived: bool) -> str | None:
    """Can a function connect with `url`, the value of `variable`? If not: which role, which
    URL, and how to fix it. `derived`: the local run made it from the contract URL
    (USE_FUNCTION_ROLES), rather than it being set explicitly."""
    try:
        with psycopg.connect(url, connect_timeout=3):
            return None
    except psycopg.OperationalError as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[-1].strip()
    role = str(conninfo_to_dict(url).get("user") or "ROLE")
    with_password = url_as(url, role, "PASSWORD")
    with_password = with_password.replace(":PASSWORD@", ":<password>@")
    with_password = with_password.replace("password=PASSWORD", "password=<password>")
    if " " in with_password:  # key=value: as you would write it in a shell or .env
        with_password = f"'{with_password}'"
    problem = f"{variable}: cannot connect as role {role} at {redact(url)} ({reason})"
    password = (
        f"give the role a password (ALTER ROLE {role} PASSWORD '...') and set "
        f"{variable}={with_password}"
    )
    if derived:
        why = (
            "the local run connects each function as its own database role "
            "(USE_FUNCTION_ROLES=true, the default)"
        )
        fixes = [
            password,
            "or opt out with USE_FUNCTION_ROLES=false: every function then connects as the user "
            "of DATABASE_URL / READ_DATABASE_URL",
        ]
        if re.search(r'role ".*" does not exist', reason):
            fixes.insert(0, "create the roles: `shop migrate` on this server")
    else:
        why = f"{variable} is set explicitly"
        fixes = [
            f"correct it; if the role needs a password, {password}",
            "or unset it: the local run then connects as the function's own role",
        ]
    return f"{problem}\n  {why}. Either:" + "".join(f"\n  - {fix}" for fix in fixes)


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


def require_function_urls(checks: Iterable[tuple[str, str, bool]]) -> None:
    """Each (variable, url, derived) must connect; else exit 1 naming every one that cannot."""
    problems = [
        p
        for variable, url, derived in checks
        if (p := function_url_problem(variable, url, derived))
    ]
    if problems:
        _fail(problems)


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
