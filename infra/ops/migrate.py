"""Apply the versioned SQL migrations to both databases, creating them if missing.

    shop migrate                       # both databases, from DATABASE_URL / READ_DATABASE_URL
    shop migrate --set-role-passwords  # then give each function's role the password in its
                                       # URL (docker-compose.yml)

(`python -m infra.ops.migrate` is the same.)

Idempotent: each database records applied versions in `schema_migrations`; an advisory lock
makes concurrent runs wait for each other instead of racing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Mapping
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from infra.functions import FUNCTIONS
from infra.ops import preflight
from shopcore.platform.config import settings

# infra/migrations: in the checkout, in the Docker image (/app/infra) and, as package data, in
# an installed wheel
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
LOCK_KEY = 7_140_203  # any constant shared by all runs of this command


def ensure_database(url: str) -> None:
    """CREATE DATABASE if it does not exist (connecting to the server's `postgres` db)."""
    params = conninfo_to_dict(url)
    name = params.get("dbname")
    if not name:
        raise SystemExit(f"no database name in {preflight.redact(url)}")
    admin = make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            # a concurrent run may create it first
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(str(name))))


def apply(url: str, folder: Path) -> list[str]:
    """Apply the .sql files of `folder` not yet applied, in name order; return their names."""
    files = sorted(folder.glob("*.sql"))
    if not files:  # never report "up to date" for a database that was not migrated
        raise SystemExit(
            f"error: no migrations in {folder}: installed without its package data "
            "(pyproject.toml, [tool.setuptools.package-data])?"
        )
    ensure_database(url)
    applied: list[str] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            for path in files:
                if path.stem in done:
                    continue
                with conn.transaction():
                    conn.execute(path.read_text())
                    conn.execute(
                        "INSERT INTO schema_migrations (version) VALUES (%s)", (path.stem,)
                    )
                applied.append(path.stem)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    return applied


def migrate_all() -> None:
    cfg = settings()
    for label, url, folder in (
        ("write", cfg.database_url, MIGRATIONS / "write"),
        ("read", cfg.read_database_url, MIGRATIONS / "read"),
    ):
        applied = apply(url, folder)
        note = ", ".join(applied) if applied else "up to date"
        print(f"{label} database {preflight.redact(url)}: {note}")


def role_passwords(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """role -> password, from each function's URL variables (infra/functions.py) that log in as
    that function's role with a password. Other users and password-less URLs are ignored."""
    passwords: dict[str, str] = {}
    for function in FUNCTIONS:
        for variable in function.database_urls:
            params = conninfo_to_dict(environ.get(variable) or "")
            password = str(params.get("password") or "")
            if params.get("user") != function.role or not password:
                continue
            if passwords.setdefault(function.role, password) != password:
                raise SystemExit(
                    f"error: the URLs for role {function.role} disagree on its password"
                )
    return passwords


def set_role_passwords(admin_url: str, passwords: Mapping[str, str]) -> None:
    """ALTER ROLE ... PASSWORD for each role (roles are cluster-wide). The password is hashed
    here, by libpq, as the server would: the statement, and any log of it, holds no plain text."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for role, password in sorted(passwords.items()):
            hashed = conn.pgconn.encrypt_password(password.encode(), role.encode()).decode()
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(hashed)
                )
            )
            print(f"role {role}: password set from its function URL")


def main(argv: list[str] | None = None, prog: str = "python -m infra.ops.migrate") -> None:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--set-role-passwords",
        action="store_true",
        help="after migrating, give each function's role (shop_command, ...) the password its "
        "URL variable (COMMAND_DATABASE_URL, ...) carries",
    )
    args = parser.parse_args(argv)
    preflight.require_postgres()
    migrate_all()
    if args.set_role_passwords:
        set_role_passwords(settings().database_url, role_passwords())


if __name__ == "__main__":
    main()
