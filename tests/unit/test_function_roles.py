"""The database role each function connects as in the local run (infra/local/__main__.py):
its own by default, an explicit URL winning, USE_FUNCTION_ROLES=false the opt-out; the URLs
derived for the roles; the role passwords the compose migration sets. Nothing runs: the
checks that connect are in tests/integration/test_least_privilege.py."""

from __future__ import annotations

import os

import pytest
from psycopg.conninfo import conninfo_to_dict

import infra.local.__main__ as local
from infra.ops import preflight
from infra.ops.migrate import role_passwords
from shopcore.platform import runtime
from shopcore.platform.config import SETTINGS, settings

ROLE_URLS = [variable for variable, _role, _base in local.FUNCTION_ROLES]


@pytest.fixture
def contract_urls(monkeypatch: pytest.MonkeyPatch):
    """A server that wants passwords: the CONTRACT URLs carry the superuser's; no function URL
    is set, nor USE_FUNCTION_ROLES. use_function_roles writes os.environ: undone afterwards."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://admin:s3cret@db.example:6543/write_db")
    monkeypatch.setenv("READ_DATABASE_URL", "postgresql://admin:s3cret@db.example:6543/read_db")
    for variable in [*ROLE_URLS, "USE_FUNCTION_ROLES"]:
        monkeypatch.setenv(variable, "")  # recorded, so whatever main sets is undone
        monkeypatch.delenv(variable)
    runtime.current().reset(SETTINGS)
    yield monkeypatch
    monkeypatch.undo()
    runtime.current().reset(SETTINGS)


def run_main(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, bool]]:
    """local.main with nothing started: the function URL checks it asks for."""
    checked: list[tuple[str, str, bool]] = []
    monkeypatch.setattr(local, "prepare", lambda: None)
    monkeypatch.setattr(local, "supervise", lambda running: None)
    monkeypatch.setattr(local.preflight, "require_function_urls", lambda c: checked.extend(c))
    local.main()
    return checked


def test_by_default_each_function_connects_as_its_role_without_the_superusers_password(
    contract_urls: pytest.MonkeyPatch,
) -> None:
    checked = run_main(contract_urls)
    cfg = settings()
    assert cfg.command_database_url == "postgresql://shop_command@db.example:6543/write_db"
    assert cfg.relay_database_url == "postgresql://shop_relay@db.example:6543/write_db"
    assert cfg.projector_database_url == "postgresql://shop_projector@db.example:6543/read_db"
    assert cfg.analytics_database_url == "postgresql://shop_analytics@db.example:6543/read_db"
    assert (
        cfg.analytics_outbox_database_url == "postgresql://shop_analytics@db.example:6543/write_db"
    )
    # every one is checked before anything starts, as derived (the remedy names the opt-out)
    assert checked == [(v, os.environ[v], True) for v in ROLE_URLS]


def test_an_explicit_function_url_wins_and_is_checked_as_explicit(
    contract_urls: pytest.MonkeyPatch,
) -> None:
    explicit = "postgresql://shop_command:pw@db.example:6543/write_db"
    contract_urls.setenv("COMMAND_DATABASE_URL", explicit)
    checked = run_main(contract_urls)
    assert settings().command_database_url == explicit
    assert ("COMMAND_DATABASE_URL", explicit, False) in checked
    assert settings().relay_database_url == "postgresql://shop_relay@db.example:6543/write_db"


def test_use_function_roles_false_is_the_opt_out(contract_urls: pytest.MonkeyPatch) -> None:
    contract_urls.setenv("USE_FUNCTION_ROLES", "false")
    assert run_main(contract_urls) == []  # nothing but the CONTRACT URLs, proven by migrating
    cfg = settings()
    assert cfg.command_database_url == cfg.relay_database_url == cfg.database_url
    assert cfg.projector_database_url == cfg.analytics_database_url == cfg.read_database_url


def test_use_function_roles_must_be_true_or_false(contract_urls: pytest.MonkeyPatch) -> None:
    contract_urls.setenv("USE_FUNCTION_ROLES", "ye")
    with pytest.raises(SystemExit, match="USE_FUNCTION_ROLES must be true or false"):
        run_main(contract_urls)


@pytest.mark.parametrize(("url", "user", "password", "expected"), [
    ("postgresql://localhost:5432/write_db", "shop_relay", None,
     "postgresql://shop_relay@localhost:5432/write_db"),
    ("postgresql://a:b@h1:1,h2:2/db?sslmode=require", "shop_command", None,
     "postgresql://shop_command@h1:1,h2:2/db?sslmode=require"),
    ("postgres://a@h/db", "shop_command", "p@ss/w:rd",
     "postgres://shop_command:p%40ss%2Fw%3Ard@h/db"),
    ("host=h dbname=db user=a password=b", "shop_projector", None,
     "user=shop_projector host=h dbname=db"),
    # a user in the query string would win over the one in front: key=value instead
    ("postgresql:///db?host=/tmp&user=a", "shop_analytics", None,
     "user=shop_analytics dbname=db host=/tmp"),
])  # fmt: skip
def test_url_as_swaps_the_login_and_keeps_the_rest(url, user, password, expected) -> None:
    made = preflight.url_as(url, user, password)
    assert conninfo_to_dict(made) == conninfo_to_dict(expected)
    assert ("://" in made) == ("://" in expected)


def test_redact_hides_the_password_of_a_key_value_conninfo_too() -> None:
    assert "s3cret" not in preflight.redact("host=h user=u password=s3cret dbname=d")
    assert preflight.redact("postgresql://u:s3cret@h/d") == "postgresql://u:***@h/d"


def test_role_passwords_come_from_urls_logging_in_as_their_functions_role() -> None:
    env = {
        "COMMAND_DATABASE_URL": "postgresql://shop_command:c1@h/write_db",
        "RELAY_DATABASE_URL": "postgresql://shop_relay@h/write_db",  # no password: left alone
        "PROJECTOR_DATABASE_URL": "postgresql://postgres:x@h/read_db",  # not its role: ignored
        "ANALYTICS_DATABASE_URL": "user=shop_analytics password=a1 host=h dbname=read_db",
        "ANALYTICS_OUTBOX_DATABASE_URL": "postgresql://shop_analytics:a1@h/write_db",
    }
    assert role_passwords(env) == {"shop_command": "c1", "shop_analytics": "a1"}
    env["ANALYTICS_OUTBOX_DATABASE_URL"] = "postgresql://shop_analytics:other@h/write_db"
    with pytest.raises(SystemExit, match="shop_analytics disagree"):
        role_passwords(env)
