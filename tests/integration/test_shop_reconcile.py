"""`shop reconcile` as an operator runs it (the installed console script, a process of its own)
against a sandbox of its own: exit 0 on read models that match the write side, 1 and the
difference printed as soon as they drift."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg

from tests.support.stack import Stack

SHOP = Path(sys.executable).with_name("shop")


def reconcile(stack: Stack, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SHOP), "reconcile"],
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
