"""`shop verify` against a fake shop on loopback: it passes on one that keeps the contract's
Idempotency-Key and consistency-token rules, and fails, naming the check, on one that breaks
any of them. (tests/e2e/test_local_emulation.py runs it against the real system.)"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from infra.ops import verify


class FakeShop:
    """Just enough of both APIs for verify, in memory. `broken` names one rule to break."""

    def __init__(self, broken: str | None = None) -> None:
        self.broken = broken
        self.products: dict[int, dict[str, Any]] = {}
        self.orders: list[dict[str, Any]] = []
        self.keys: dict[str, tuple[str, dict[str, Any]]] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.lock = threading.Lock()

    # --- the command API -------------------------------------------------------------------

    def post(self, path: str, body: dict, headers: dict[str, str]) -> tuple[int, dict, dict]:
        key = headers.get("idempotency-key")
        fingerprint = json.dumps([path, body], sort_keys=True, default=str)
        if key in self.keys and self.broken != "no replay":
            held, answer = self.keys[key]
            if held != fingerprint and self.broken != "key reuse accepted":
                return 422, {"error": "key reused"}, {}
            if held == fingerprint:
                token = answer["consistencyToken"]
                return 201, answer, {"X-Consistency-Token": token, "Idempotent-Replayed": "true"}
        status, answer = self.write(path, body)
        if status != 201:
            return status, answer, {}
        if key is not None:
            self.keys[key] = (fingerprint, answer)
        headers = {} if self.broken == "no token header" else {"X-Consistency-Token": "c1.7"}
        return 201, answer, headers

    def write(self, path: str, body: dict) -> tuple[int, dict]:
        if path == "/api/products":
            product_id = len(self.products) + 1
            self.products[product_id] = dict(body)
            return 201, {"productId": product_id, "consistencyToken": "c1.7"}
        for item in body["items"]:
            if item["quantity"] > self.products[item["productId"]]["stock"]:
                return 409, {"error": "insufficient stock"}
        for item in body["items"]:
            self.products[item["productId"]]["stock"] -= item["quantity"]
        self.orders.append(body)
        return 201, {"orderId": len(self.orders), "consistencyToken": "c1.7"}

    # --- the query API ---------------------------------------------------------------------

    def get(self, path: str, headers: dict[str, str]) -> tuple[int, dict]:
        if self.broken == "busy once" and "x-consistency-token" in headers:
            self.broken = None
            return 503, {"error": "no thread free to wait; retry"}
        if path == "/health":
            return 200, {"status": "ok"}
        if path == "/api/analytics/sync-status":
            return 200, {"lastProcessedEventTimestamp": None, "lagSeconds": 0}
        # without the token's wait, the read model has not caught up yet
        orders = self.orders if "x-consistency-token" in headers else []
        if self.broken == "stale reads":
            orders = []
        lines = [(o, i) for o in orders for i in o["items"]]
        parts = path.split("/")
        if parts[3] == "products":
            mine = [(o, i) for o, i in lines if i["productId"] == int(parts[4])]
            return 200, {
                "totalQuantitySold": sum(i["quantity"] for _, i in mine),
                "totalRevenue": sum(i["quantity"] * i["price"] for _, i in mine),
                "orderCount": len({id(o) for o, _ in mine}),
            }
        if parts[3] == "categories":
            return 200, {
                "totalRevenue": sum(i["quantity"] * i["price"] for _, i in lines),
                "totalOrders": len(orders),
            }
        mine_orders = [o for o in orders if o["customerId"] == int(parts[4])]
        return 200, {
            "totalSpent": sum(i["quantity"] * i["price"] for o in mine_orders for i in o["items"]),
            "orderCount": len(mine_orders),
        }


@contextmanager
def serving(shop: FakeShop) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def answer(self, status: int, body: dict, headers: dict[str, str]) -> None:
            raw = json.dumps(body, default=float).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(raw)

        def headers_lower(self) -> dict[str, str]:
            return {name.lower(): value for name, value in self.headers.items()}

        def do_GET(self) -> None:
            with shop.lock:
                shop.requests.append(("GET", self.path, self.headers_lower()))
                status, body = shop.get(self.path, self.headers_lower())
            headers = {"X-Consistency-Token": "c1.7"} if self.path.startswith("/api/") else {}
            if status == 503:
                headers = {"Retry-After": "1"}
            self.answer(status, body, headers)

        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            body = json.loads(self.rfile.read(length), parse_float=Decimal)
            with shop.lock:
                shop.requests.append(("POST", self.path, self.headers_lower()))
                self.answer(*shop.post(self.path, body, self.headers_lower()))

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run_verify(shop: FakeShop, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with serving(shop) as url:
        code = verify.main(["--command-url", url, "--query-url", url, "--timeout", "3"])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_shop_that_keeps_the_rules_passes(capsys):
    shop = FakeShop()
    code, out, err = run_verify(shop, capsys)
    assert code == 0, out + err
    assert "Idempotent-Replayed: true" in out
    assert "-> 422" in out
    assert out.rstrip().endswith("all checks passed")
    posts = [headers for method, _, headers in shop.requests if method == "POST"]
    assert all("idempotency-key" in headers for headers in posts)
    order_keys = [h["idempotency-key"] for m, p, h in shop.requests if p == "/api/orders"]
    assert order_keys[0] == order_keys[1] == order_keys[2] != order_keys[3]
    reads = [h for m, p, h in shop.requests if m == "GET" and p.startswith("/api/analytics/")]
    with_token = [h for h in reads if h.get("x-consistency-token") == "c1.7"]
    assert len(with_token) == 3
    assert all(2 < float(h["prefer"].removeprefix("wait=")) <= 3 for h in with_token)
    assert len(shop.orders) == 1  # the replay and the misused key wrote nothing


@pytest.mark.parametrize(
    ("broken", "failed_check"),
    [
        ("no replay", "the same order with the same key -> 201, Idempotent-Replayed: true"),
        ("key reuse accepted", "the same key with another body -> 422"),
        ("no token header", "the order's 201 carries its consistency token"),
        ("stale reads", "product sales read with the order's X-Consistency-Token"),
    ],
)
def test_a_shop_that_breaks_a_rule_fails_at_that_check(capsys, broken, failed_check):
    code, out, err = run_verify(FakeShop(broken), capsys)
    assert code == 1
    assert f"FAIL {failed_check}" in out
    assert err.startswith("verification failed: ")


def test_a_503_with_retry_after_is_asked_again_within_the_wait(capsys):
    shop = FakeShop("busy once")
    code, out, err = run_verify(shop, capsys)
    assert code == 0, out + err
    reads = [h for m, p, h in shop.requests if p.endswith("/sales")]
    assert len(reads) == 2
    assert float(reads[1]["prefer"].removeprefix("wait=")) < 2.1  # what was left of 3 s


def test_an_api_key_is_sent_with_both_posts(capsys):
    shop = FakeShop()
    with serving(shop) as url:
        code = verify.main(["--command-url", url, "--query-url", url, "--api-key", "s3cret"])
    assert code == 0, capsys.readouterr()
    posts = [headers for method, _, headers in shop.requests if method == "POST"]
    assert posts and all(headers["x-api-key"] == "s3cret" for headers in posts)
