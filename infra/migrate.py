"""Apply the versioned SQL migrations to both databases, creating them if missing.

    python -m infra.migrate            # both databases, from DATABASE_URL / READ_DATABASE_URL

Idempotent: each database records applied versions in `schema_migrations`; an advisory lock
makes concurrent runs wait for each other instead of racing.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from infra import preflight
from shopcore.config import settings

MIGRATIONS = Path(__file__).parent / "migrations"
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
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def apply(url: str, folder: Path) -> list[str]:
    """Apply the .sql files of `folder` not yet applied, in name order; return their names."""
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
            for path in sorted(folder.glob("*.sql")):
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


def main() -> None:
    preflight.require_postgres()
    migrate_all()


if __name__ == "__main__":
    sys.exit(main())
