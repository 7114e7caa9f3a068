"""Each part of the system has a database role that can do its job and nothing more."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from infra.local.__main__ import FUNCTION_ROLES
from shopcore import jsonio
from shopcore.config import settings
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
        )
        assert order.status_code == 201, order.json
        relay_and_project()
        response = http_client("analytics").get(f"/api/analytics/products/{pid}/sales")
        assert jsonio.loads(response.get_data())["totalRevenue"] == Decimal("5.00")
        sync = http_client("analytics").get("/api/analytics/sync-status")
        assert sync.status_code == 200
        assert settings().command_database_url != settings().database_url  # roles were in use
    finally:
        monkeypatch.undo()
        stacks.reset_process_state()
