"""`shop reconcile` as an operator runs it (the installed console script, a process of its own)
against a sandbox of its own: exit 0 on read models that match the write side, 1 and the
difference printed as soon as they drift."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg

from shopcore.pipeline.broker import QUEUES
from shopcore.platform import runtime
from tests.support import stack
from tests.support.functions import drain_queue, http_client, relay_and_project, relay_invoker
from tests.support.stack import Stack

SHOP = Path(sys.executable).with_name("shop")


def reconcile(stack: Stack, cwd: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SHOP), "reconcile", *options],
        cwd=cwd,
        env={**os.environ, **stack.env()},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_shop_reconcile_exits_1_on_drift(fresh_stack: Stack, tmp_path: Path) -> None:
    clean = reconcile(fresh_stack, tmp_path)
    assert (clean.returncode, clean.stdout) == (0, "reconciliation: 0 difference(s)\n")

    with psycopg.connect(fresh_stack.read_database_url, autocommit=True) as read:
        read.execute(
            "INSERT INTO product_sales_view"
            " (product_id, total_quantity_sold, total_revenue, order_count)"
            " VALUES (424242, 2, 19.98, 1)"
        )
    drifted = reconcile(fresh_stack, tmp_path)
    assert drifted.returncode == 1, drifted.stderr
    assert drifted.stdout.splitlines() == [
        "product 424242: expected nothing, read model has "
        "{totalQuantitySold=2, totalRevenue=19.98, orderCount=1}",
        "reconciliation: 1 difference(s)",
    ]


def test_republish_lost_hands_lost_events_back_to_the_relay(fresh_stack: Stack, tmp_path: Path):
    """An event lost on its way (its queue purged after the relay published it) holds back
    every later consistency token; `--republish-lost` makes the relay publish it again, and
    the read models and tokens recover."""
    stack.activate(fresh_stack)
    runtime.current().reset()
    try:
        product = http_client("create_product").post(
            "/", json={"name": "Lost", "category": "Gone", "price": 4, "stock": 9}
        )
        assert relay_invoker()({}) == 200
        for queue in QUEUES:
            drain_queue(queue)  # lost: published, never projected
        order = http_client("create_order").post(
            "/",
            json={
                "customerId": 5,
                "items": [{"productId": product.json["productId"], "quantity": 1, "price": 4}],
            },
        )
        relay_and_project()
        token = {"X-Consistency-Token": order.headers["X-Consistency-Token"], "Prefer": "wait=0"}
        ltv = "/api/analytics/customers/5/lifetime-value"
        assert http_client("analytics").get(ltv, headers=token).status_code == 503

        found = reconcile(fresh_stack, tmp_path, "--republish-lost")
        assert found.returncode == 1
        assert "in the outbox, never projected" in found.stdout
        assert "republished 1 lost event(s)" in found.stdout

        relay_and_project()
        assert http_client("analytics").get(ltv, headers=token).status_code == 200
        again = reconcile(fresh_stack, tmp_path, "--republish-lost")
        assert (again.returncode, again.stdout.splitlines()[-1]) == (
            0,
            "republished 0 lost event(s)",
        )
    finally:
        runtime.current().reset()
