"""The whole system as a user runs it: `python -m infra.local` as real processes, driven over
HTTP, with the read models checked against exactly what was ordered."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections import defaultdict
from decimal import Decimal

import psycopg
import pytest
import requests

from infra.ops import verify
from tests.e2e.conftest import running_system
from tests.support.local_system import LocalSystem


@pytest.fixture(scope="module")
def system(tmp_path_factory, run_stack):
    with running_system(tmp_path_factory.mktemp("e2e"), run_stack) as local:
        yield local


class Shop:
    """A client that remembers what it was told, to compute the expected analytics."""

    def __init__(self, system: LocalSystem) -> None:
        self.system = system
        self.http = requests.Session()
        self.sold: dict[int, list] = defaultdict(lambda: [0, Decimal("0"), 0])
        self.spent: dict[int, list] = defaultdict(lambda: [Decimal("0"), 0])
        self.category_of: dict[int, str] = {}
        self.lock = threading.Lock()

    def product(self, name: str, category: str, price: str, stock: int) -> int:
        r = self.http.post(
            f"{self.system.command_url}/api/products",
            json={"name": name, "category": category, "price": float(price), "stock": stock},
        )
        assert r.status_code == 201, r.text
        self.category_of[r.json()["productId"]] = category
        return r.json()["productId"]

    def order(self, customer: int, lines: list[tuple[int, int, str]]) -> int:
        r = self.http.post(
            f"{self.system.command_url}/api/orders",
            json={
                "customerId": customer,
                "items": [
                    {"productId": p, "quantity": q, "price": float(pr)} for p, q, pr in lines
                ],
            },
        )
        if r.status_code == 201:
            with self.lock:
                total = Decimal("0")
                for p, q, price in lines:
                    line = q * Decimal(price)
                    self.sold[p][0] += q
                    self.sold[p][1] += line
                    total += line
                for p in {p for p, _, _ in lines}:
                    self.sold[p][2] += 1
                self.spent[customer][0] += total
                self.spent[customer][1] += 1
        return r.status_code

    def get(self, path: str) -> dict:
        r = self.http.get(f"{self.system.query_url}{path}")
        assert r.status_code == 200, (path, r.status_code, r.text)
        return r.json(parse_float=Decimal)

    def current(self, path: str) -> dict:
        """The answer at `path`, or {} while it is still 404 (not projected yet)."""
        r = self.http.get(f"{self.system.query_url}{path}")
        if r.status_code == 404:
            return {}
        assert r.status_code == 200, (path, r.status_code, r.text)
        return r.json(parse_float=Decimal)

    def converged(self) -> bool:
        for p, expected in self.sold.items():
            got = self.current(f"/api/analytics/products/{p}/sales")
            keys = ("totalQuantitySold", "totalRevenue", "orderCount")
            if [got.get(k) for k in keys] != expected:
                return False
        for c, expected in self.spent.items():
            got = self.current(f"/api/analytics/customers/{c}/lifetime-value")
            if [got.get("totalSpent"), got.get("orderCount")] != expected:
                return False
        return True

    def wait_until_converged(self, timeout: float = 30) -> float:
        started = time.monotonic()
        while not self.converged():
            if time.monotonic() - started > timeout:
                pytest.fail(
                    f"read models did not converge in {timeout}s:\n{self.system.log()[-3000:]}"
                )
            time.sleep(0.05)
        return time.monotonic() - started


def test_verification_command_passes(system):
    assert verify.main(["--command-url", system.command_url, "--query-url", system.query_url]) == 0


def test_contract_end_to_end_with_exact_totals(system, unique):
    shop = Shop(system)
    category = f"Tech-{unique}"
    laptop = shop.product("Laptop", category, "999.99", 100)
    mouse = shop.product("Mouse", category, "19.50", 100)
    customers = [70_000 + i for i in range(5)]
    for i in range(25):
        customer = customers[i % 5]
        assert shop.order(customer, [(laptop, 1, "999.99"), (mouse, 1 + i % 3, "19.50")]) == 201
    assert shop.order(customers[0], [(laptop, 1000, "999.99")]) == 409
    assert shop.order(customers[0], [(123456789, 1, "1")]) == 400

    took = shop.wait_until_converged()
    assert took < 5, f"converged only after {took:.2f}s"

    revenue = shop.get(f"/api/analytics/categories/{category}/revenue")
    assert revenue["totalOrders"] == 25
    assert revenue["totalRevenue"] == sum((v[1] for v in shop.sold.values()), Decimal("0"))
    sync = shop.get("/api/analytics/sync-status")
    assert (sync["pendingEvents"], sync["lagSeconds"]) == (0, 0)
    assert sync["lastProcessedEventTimestamp"].endswith("Z")


def test_new_order_is_visible_within_a_second(system, unique):
    shop = Shop(system)
    product = shop.product("Pen", f"Office-{unique}", "1.25", 10)
    assert shop.order(90_001, [(product, 2, "1.25")]) == 201
    assert shop.wait_until_converged(timeout=5) < 1.0


def test_by_default_every_process_connects_as_its_own_role(system, unique):
    """USE_FUNCTION_ROLES unset (LocalSystem passes none on): every session on the sandbox's
    databases is a function's role, none the superuser the CONTRACT URLs log in as."""
    assert "USE_FUNCTION_ROLES" not in system.env
    shop = Shop(system)
    product = shop.product("Badge", f"Roles-{unique}", "2.00", 10)
    assert shop.order(90_002, [(product, 1, "2.00")]) == 201
    shop.wait_until_converged(timeout=10)
    shop.get("/api/analytics/sync-status")  # analytics reads the write side's outbox too
    stack = system.stack
    with psycopg.connect(stack.database_url) as conn:
        sessions = set(
            conn.execute(
                "SELECT datname, usename FROM pg_stat_activity WHERE datname = ANY(%s)"
                " AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
                ([stack.write_db, stack.read_db],),
            ).fetchall()
        )
    write, read = stack.write_db, stack.read_db
    assert sessions == {
        (write, "shop_command"),
        (write, "shop_relay"),
        (write, "shop_analytics"),
        (read, "shop_projector"),
        (read, "shop_analytics"),
    }


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/api/orders", b"{not json", 400),
        (
            "/api/orders",
            b'{"customerId": 1, "items": [{"productId": 1, "quantity": 1e400, "price": 1}]}',
            400,
        ),
        ("/api/products", b'{"name": "\xff\xfe", "category": "x", "price": 1, "stock": 1}', 400),
        ("/api/products", b"x" * (2 * 1024 * 1024), 413),
        ("/api/nothing", b"{}", 404),
    ],
)
def test_hostile_input_over_http_gets_json_4xx(system, path, body, status):
    r = requests.post(
        f"{system.command_url}{path}", data=body, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == status
    assert r.json()["error"]


def test_chunked_oversized_body_is_413(system):
    def chunks():
        for _ in range(200):
            yield b"x" * 4096

    r = requests.post(
        f"{system.command_url}/api/products",
        data=chunks(),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 413
    assert r.json()["error"]


def test_an_oversized_declared_body_is_refused_before_it_is_uploaded(system):
    """As an API gateway would: a Content-Length over MAX_BODY_BYTES gets its 413 while the
    upload has barely begun (functions-framework alone would read all of it into memory first),
    and the port goes on serving."""
    head = (
        "POST /api/products HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        f"Content-Length: {200 * 1024 * 1024}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", system.command_port), timeout=10) as conn:
        conn.sendall(head.encode() + b"x" * 65536)
        answer = conn.recv(65536)
    status, _, rest = answer.partition(b"\r\n")
    assert status.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"error"' in rest
    ok = requests.post(
        f"{system.command_url}/api/products",
        json={"name": "after", "category": "oversize", "price": 1, "stock": 1},
    )
    assert ok.status_code == 201


def test_killing_the_projector_trigger_mid_stream_loses_nothing(system, unique):
    """SIGKILL the queue trigger while orders stream in; the supervisor restarts it, the
    unacked batch is redelivered, duplicates are absorbed, totals stay exact."""
    shop = Shop(system)
    products = [shop.product(f"P{i}", f"Kill-{unique}", "3.10", 10_000) for i in range(3)]
    done = threading.Event()

    def stream() -> None:
        for i in range(300):
            status = shop.order(
                80_000 + i % 7, [(products[i % 3], 1, "3.10"), (products[(i + 1) % 3], 2, "3.10")]
            )
            assert status == 201
        done.set()

    writer = threading.Thread(target=stream)
    writer.start()
    for _ in range(2):
        time.sleep(0.4)
        victim = system.pid_of("projector queue trigger")
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while system.pid_of("projector queue trigger") == victim:  # wait for the restart
            assert time.monotonic() < deadline, "the supervisor did not restart the trigger"
            time.sleep(0.1)
    writer.join(60)
    assert done.is_set()
    shop.wait_until_converged(timeout=30)
    assert system.log().count("projector queue trigger exited") >= 2


def test_the_apis_yield_the_cpu_to_the_pipeline(system):
    """The HTTP ports run at API_NICENESS (default 5), the relay and projector at 0."""
    assert (
        os.getpriority(os.PRIO_PROCESS, system.pid_of(f"command API :{system.command_port}")) == 5
    )
    assert os.getpriority(os.PRIO_PROCESS, system.pid_of(f"query API :{system.query_port}")) == 5
    assert os.getpriority(os.PRIO_PROCESS, system.pid_of("relay schedule trigger")) == 0
    assert os.getpriority(os.PRIO_PROCESS, system.pid_of("projector queue trigger")) == 0
