"""Starting without a dependency, and stopping under load."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import psycopg
import pytest
import requests

from infra.functions import REPO
from tests.support import stack as stacks
from tests.support.local_system import LocalSystem, free_port


@pytest.mark.parametrize(
    ("variable", "url", "says"),
    [
        ("BROKER_URL", "amqp://guest:guest@127.0.0.1:{port}/", "RabbitMQ is not reachable"),
        ("DATABASE_URL", "postgresql://127.0.0.1:{port}/write_db", "Postgres is not reachable"),
    ],
)
def test_unreachable_dependency_is_named_with_url_and_remedy(variable, url, says):
    bad = url.format(port=free_port())
    result = subprocess.run(
        [sys.executable, "-m", "infra.local"],
        cwd=REPO,
        env={**os.environ, variable: bad},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert says in result.stderr
    assert bad.split("@")[-1] in result.stderr  # the URL, without the password
    assert "start it with" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_a_function_role_that_cannot_connect_stops_the_start_with_role_url_and_remedy(run_stack):
    """Checked after migrating, before any process starts: which role, which URL, the fix."""
    server = psycopg.conninfo.conninfo_to_dict(run_stack.database_url)
    bad = f"postgresql://shop_nobody@{server['host']}:{server['port']}/{run_stack.write_db}"
    env = {k: v for k, v in os.environ.items() if k != "USE_FUNCTION_ROLES"}
    result = subprocess.run(
        [sys.executable, "-m", "infra.local"],
        cwd=REPO,
        env={**env, **run_stack.env(), "COMMAND_DATABASE_URL": bad},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "error: COMMAND_DATABASE_URL: cannot connect as role shop_nobody" in result.stderr
    assert bad in result.stderr
    assert "ALTER ROLE shop_nobody PASSWORD" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "[local] started" not in result.stdout  # nothing was started
    # the roles derived for the other functions connected: only the explicit one is named
    assert result.stderr.count("error:") == 1


def test_sigterm_under_load_loses_nothing(tmp_path, run_stack):
    """SIGTERM while orders stream in: in-flight requests are answered, the processes exit
    cleanly, and after a restart every accepted order is in the read models exactly once."""
    with stacks.isolated() as stack:
        system = LocalSystem(stack, tmp_path / "local.log")
        system.start()
        http = requests.Session()
        product = http.post(
            f"{system.command_url}/api/products",
            json={"name": "Widget", "category": "Load", "price": 2, "stock": 1_000_000},
        ).json()["productId"]
        accepted: list[int] = []
        refused: list[str] = []

        def stream() -> None:
            session = requests.Session()
            for _ in range(5000):
                try:
                    r = session.post(
                        f"{system.command_url}/api/orders",
                        json={
                            "customerId": 5,
                            "items": [{"productId": product, "quantity": 1, "price": 2}],
                        },
                        timeout=10,
                    )
                except requests.ConnectionError:
                    refused.append("connection refused: the server is gone")
                    return
                if r.status_code == 201:
                    accepted.append(r.json()["orderId"])
                else:
                    refused.append(f"{r.status_code} {r.text}")
                    return

        writers = [threading.Thread(target=stream) for _ in range(4)]
        for w in writers:
            w.start()
        time.sleep(2)
        assert system.stop() == 0, system.log()[-3000:]
        for w in writers:
            w.join(30)
        assert accepted, "no order was accepted before the shutdown"
        assert "[local] stopped" in system.log()

        with psycopg.connect(stack.database_url) as conn:
            written = {r[0] for r in conn.execute("SELECT id FROM orders WHERE customer_id = 5")}
        assert set(accepted) <= written  # every 201 was committed

        system.start()
        deadline = time.monotonic() + 30
        while True:
            r = http.get(f"{system.query_url}/api/analytics/customers/5/lifetime-value")
            if r.status_code == 200 and r.json()["orderCount"] == len(written):
                break
            assert time.monotonic() < deadline, (len(written), r.text)
            time.sleep(0.1)
        sales = http.get(f"{system.query_url}/api/analytics/products/{product}/sales").json()
        assert sales["totalQuantitySold"] == len(written)
        assert sales["orderCount"] == len(written)
        assert system.stop() == 0
    stacks.activate(run_stack)
