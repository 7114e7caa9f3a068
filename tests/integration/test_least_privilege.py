"""Each part of the system has a database role that can do its job and nothing more."""

from __future__ import annotations

import uuid
from decimal import Decimal

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from infra.local.__main__ import FUNCTION_ROLES
from infra.ops import migrate, preflight
from shopcore.pipeline import housekeeping
from shopcore.platform import jsonio
from shopcore.platform.config import settings
from tests.support import stack as stacks
from tests.support.functions import http_client, relay_and_project


def as_role(role: str, which: str) -> psycopg.Connection:
    url = settings().database_url if which == "write" else settings().read_database_url
    return psycopg.connect(make_conninfo(url, user=role))


def allowed(role: str, which: str, sql: str) -> bool:
    try:
        with as_role(role, which) as conn:
            conn.execute(sql)
            conn.rollback()
        return True
    except psycopg.errors.InsufficientPrivilege:
        return False


@pytest.mark.parametrize(
    ("role", "which", "sql", "expected"),
    [
        (
            "shop_command",
            "write",
            "INSERT INTO products (name, category, price, stock) VALUES ('a','b',1,1)",
            True,
        ),
        ("shop_command", "write", "UPDATE products SET stock = stock WHERE id = 0", True),
        ("shop_command", "write", "UPDATE products SET price = 0 WHERE id = 0", False),
        ("shop_command", "write", "DELETE FROM orders", False),
        ("shop_command", "write", "UPDATE outbox SET published_at = now() WHERE id = 0", False),
        (
            "shop_relay",
            "write",
            "SELECT id FROM outbox WHERE published_at IS NULL FOR UPDATE SKIP LOCKED",
            True,
        ),
        ("shop_relay", "write", "UPDATE outbox SET published_at = now() WHERE id = 0", True),
        ("shop_relay", "write", "INSERT INTO outbox (topic, payload) VALUES ('x', '{}')", False),
        ("shop_relay", "write", "SELECT * FROM orders", False),
        ("shop_analytics", "write", "SELECT count(*) FROM outbox", True),
        ("shop_analytics", "write", "SELECT * FROM products", False),
        ("shop_analytics", "read", "SELECT * FROM product_sales_view", True),
        ("shop_analytics", "read", "INSERT INTO customer_ltv_view (customer_id) VALUES (1)", False),
        ("shop_analytics", "read", "DELETE FROM processed_events", False),
        ("shop_projector", "read", "INSERT INTO customer_ltv_view (customer_id) VALUES (1)", True),
        ("shop_projector", "read", "DELETE FROM processed_events", False),
        ("shop_projector", "read", "DROP TABLE hourly_sales_view", False),
        ("shop_projector", "read", "CREATE TABLE intruder (x int)", False),
        # idempotency keys: the commands claim them, the relay's housekeeping removes them
        (
            "shop_command",
            "write",
            "SELECT claim_idempotency_key('', 'k', 'r', '\\x00',"
            " 201::smallint, '{}', interval '1 day', interval '1s')",
            True,
        ),
        ("shop_command", "write", "DELETE FROM idempotency_keys", False),
        ("shop_relay", "write", housekeeping.REMOVE_EXPIRED_KEYS % 10, True),
        (
            "shop_relay",
            "write",
            "INSERT INTO idempotency_keys SELECT * FROM idempotency_keys",
            False,
        ),
        ("shop_analytics", "write", "SELECT count(*) FROM idempotency_keys", False),
        # parked events: the projector records them, analytics reads them
        ("shop_projector", "read", "INSERT INTO parked_events VALUES (0, now(), 'x')", True),
        ("shop_analytics", "read", "SELECT count(*) FROM parked_events", True),
        ("shop_analytics", "read", "INSERT INTO parked_events VALUES (0, now(), 'x')", False),
    ],
)
def test_role_privileges(role, which, sql, expected):
    assert allowed(role, which, sql) is expected


@pytest.mark.parametrize(
    ("role", "which"),
    [
        ("shop_command", "read"),
        ("shop_relay", "read"),
        ("shop_projector", "write"),
    ],
)
def test_roles_cannot_connect_to_the_other_database(role, which):
    with pytest.raises(psycopg.OperationalError, match="CONNECT privilege"):
        as_role(role, which).close()


def test_the_pipeline_works_with_every_part_on_its_own_role(monkeypatch, unique):
    cfg = settings()
    for variable, role, base in FUNCTION_ROLES:
        monkeypatch.setenv(variable, make_conninfo(getattr(cfg, base), user=role))
    stacks.reset_process_state()
    try:
        product = http_client("create_product").post(
            "/", json={"name": "R", "category": unique, "price": 2.5, "stock": 3}
        )
        assert product.status_code == 201, product.json
        pid = product.json["productId"]
        order = http_client("create_order").post(
            "/",
            json={"customerId": 4242, "items": [{"productId": pid, "quantity": 2, "price": 2.5}]},
            headers={"Idempotency-Key": f"lp-{unique}"},
        )
        assert order.status_code == 201, order.json
        # an expired key: the relay's housekeeping removes it, as the relay's role
        with psycopg.connect(cfg.database_url, autocommit=True) as conn:
            conn.execute(
                "UPDATE idempotency_keys SET expires_at = now() - interval '1 s' WHERE key = %s",
                (f"lp-{unique}",),
            )
        relay_and_project()
        # (no token here: in the run's shared stack other tests leave events unprojected,
        # which holds back every later token; the watch still reads both databases as
        # shop_analytics on this first GET)
        response = http_client("analytics").get(f"/api/analytics/products/{pid}/sales")
        assert jsonio.loads(response.get_data())["totalRevenue"] == Decimal("5.00")
        with psycopg.connect(cfg.database_url) as conn:
            left = conn.execute(
                "SELECT count(*) FROM idempotency_keys WHERE key = %s", (f"lp-{unique}",)
            ).fetchone()
        assert left == (0,)
        sync = http_client("analytics").get("/api/analytics/sync-status")
        assert sync.status_code == 200
        assert settings().command_database_url != settings().database_url  # roles were in use
    finally:
        monkeypatch.undo()
        stacks.reset_process_state()


def test_the_roles_the_local_run_derives_can_connect():
    """What `python -m infra.local` checks before starting anything, on a trust-auth server."""
    cfg = settings()
    for variable, role, base in FUNCTION_ROLES:
        url = preflight.url_as(getattr(cfg, base), role)
        assert preflight.function_url_problem(variable, url, derived=True) is None, variable


@pytest.mark.parametrize("derived", [True, False])
def test_a_role_that_cannot_connect_is_named_with_its_url_and_the_remedy(capsys, derived):
    server = conninfo_to_dict(settings().database_url)
    url = f"postgresql://shop_nobody@{server['host']}:{server['port']}/{server['dbname']}"
    with pytest.raises(SystemExit) as exit_:
        preflight.require_function_urls([("COMMAND_DATABASE_URL", url, derived)])
    assert exit_.value.code == 1
    said = capsys.readouterr().err
    assert said.startswith("error: COMMAND_DATABASE_URL: cannot connect as role shop_nobody")
    assert preflight.redact(url) in said
    assert 'role "shop_nobody" does not exist' in said
    assert "ALTER ROLE shop_nobody PASSWORD '...'" in said
    assert "COMMAND_DATABASE_URL=postgresql://shop_nobody:<password>@" in said
    assert ("USE_FUNCTION_ROLES=false" in said) is derived
    assert "Traceback" not in said


def test_set_role_passwords_stores_only_a_hash():
    """On a throwaway role (roles are cluster-wide): the server gets a SCRAM verifier, never
    the password itself."""
    role = f"shop_pwtest_{uuid.uuid4().hex[:8]}"
    admin = settings().database_url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        try:
            migrate.set_role_passwords(admin, {role: "plain-text-secret"})
            (stored,) = conn.execute(
                "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)
            ).fetchone()
            assert stored.startswith("SCRAM-SHA-256$")
            assert "plain-text-secret" not in stored
        finally:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
