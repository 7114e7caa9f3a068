"""The GCP push bridge for real: RabbitMQ -> `python -m infra.deploy.gcp.bridge` -> the projector
served alone by functions-framework over HTTP (as Cloud Run functions serves it) -> read_db.

Events come from the real write side: products and an order through their functions, then
the relay publishes the outbox. Both processes run in the run's sandbox (databases + vhost).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from infra.functions import REPO, by_name
from infra.harness.local_system import free_port
from infra.harness.sandbox import Stack
from shopcore.pipeline import broker
from tests.support.functions import drain_queue, http_client, read_rows, relay_invoker


def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait(5)


def wait_until(done: Callable[[], object], what: str, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not reached in {timeout}s; logs:\n{log.read_text()[-4000:]}")
        time.sleep(0.1)


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def env(services: Stack) -> dict[str, str]:
    for queue in (*broker.QUEUES, broker.DEAD_LETTER_QUEUE):
        drain_queue(queue)
    return {**os.environ, **services.env(), "LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1"}


@pytest.fixture
def projector_url(env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """The projector alone, as `functions-framework` serves it on Cloud Run functions."""
    function, port = by_name("projector"), free_port()
    argv = [str(Path(sys.executable).with_name("functions-framework")), "--target", "projector"]
    argv += ["--source", str(function.source.relative_to(REPO))]
    argv += ["--signature-type", function.signature_type, "--port", str(port)]
    log = tmp_path / "projector.log"
    server = start(argv, env, log)
    try:
        wait_until(lambda: listening(port), "the projector listening", log)
        yield f"http://127.0.0.1:{port}/"
    finally:
        stop(server)


def create(kind: str, body: dict) -> int:
    answer = http_client(f"create_{kind}").post(f"/api/{kind}s", json=body)
    assert answer.status_code == 201, answer.get_data(as_text=True)
    return answer.get_json()[f"{kind}Id"]


def product_sales(product_id: int) -> list[tuple]:
    sql = "SELECT total_quantity_sold, order_count FROM product_sales_view WHERE product_id = %s"
    return read_rows(sql, product_id)


def test_bridge_pushes_published_events_to_the_projector_over_http(
    env: dict[str, str], projector_url: str, tmp_path: Path, unique: str, customer_id: int
) -> None:
    laptop = create("product", {"name": "Laptop", "category": unique, "price": 999, "stock": 5})
    mouse = create("product", {"name": "Mouse", "category": unique, "price": 25, "stock": 5})
    items = [{"productId": laptop, "quantity": 2, "price": 999}]
    create("order", {"customerId": customer_id, "items": items})
    assert relay_invoker()({}) == 200  # the outbox -> RabbitMQ

    log = tmp_path / "bridge.log"
    argv = [sys.executable, "-m", "infra.deploy.gcp.bridge", "--target", projector_url]
    bridge = start(argv, {**env, "PROJECTOR_BATCH_WINDOW_MS": "50"}, log)
    try:
        wait_until(
            lambda: product_sales(laptop) == [(2, 1)] and product_sales(mouse) == [(0, 0)],
            "the read model",
            log,
        )
        ltv = "SELECT order_count FROM customer_ltv_view WHERE customer_id = %s"
        assert read_rows(ltv, customer_id) == [(1,)]
    finally:
        exit_code = stop(bridge)
    assert exit_code == 0, log.read_text()[-4000:]  # SIGTERM: the batch in hand, then exit

    for queue in broker.QUEUES:  # every delivery was acked after the projector's 200
        assert drain_queue(queue) == []
    assert drain_queue(broker.DEAD_LETTER_QUEUE) == []
    # ...and applied by the projector's own process, reached over HTTP
    lines = (tmp_path / "projector.log").read_text().splitlines()
    records = [json.loads(line) for line in lines if line.startswith('{"function"')]
    assert sum(r.get("applied", 0) for r in records if r["function"] == "projector") >= 3
