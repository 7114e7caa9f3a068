"""Check a running deployment end to end, as a user would.

    shop verify [--command-url http://localhost:8080] [--query-url http://localhost:8081]

(`python -m infra.ops.verify` is the same.)

Health of both APIs; create a product and an order, each with an Idempotency-Key; send the
order again with its key (a replay: the same orderId, nothing written) and the key with another
body (422); an order above stock (409); then read the analytics with the order's consistency
token (`Prefer: wait`), which answer only once they include that order, and must show exactly
it; check sync-status. Writes one new product and one order for a random customer id. Exit
status 0 when every check passes.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

KEY = "Idempotency-Key"
TOKEN = "X-Consistency-Token"
MAX_WAIT = 30  # seconds: the longest Prefer: wait the query API honours


class Failed(Exception):
    pass


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str]  # names in lower case

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def call(
    method: str, url: str, body: dict | None = None, headers: dict[str, str] | None = None
) -> Answer:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=MAX_WAIT + 10) as response:
            return _answer(response.status, response.read(), response.headers.items())
    except urllib.error.HTTPError as exc:
        return _answer(exc.code, exc.read(), exc.headers.items())
    except (urllib.error.URLError, OSError) as exc:
        raise Failed(f"{method} {url}: cannot connect ({exc})") from None


def _answer(status: int, raw: bytes, headers: Any) -> Answer:
    try:
        body = json.loads(raw or b"null", parse_float=Decimal)
    except ValueError:
        body = raw[:200].decode(errors="replace")
    return Answer(status, body, {name.lower(): value for name, value in headers})


def expect(ok: bool, what: str, got: Answer | None = None) -> None:
    """Print the check's outcome; Failed, naming what was answered, when it failed."""
    if not ok and got is not None:
        what = f"{what} (got {got.status} {got.body})"
    print(f"{'ok  ' if ok else 'FAIL'} {what}", flush=True)
    if not ok:
        raise Failed(what)


def _member(answer: Answer, name: str) -> Any:
    return answer.body.get(name) if isinstance(answer.body, dict) else None


@dataclass
class Verification:
    command: str
    query: str
    wait: float  # seconds the analytics may take to include the order
    api_key: str | None = None
    placed_at: float = 0.0  # time.monotonic() of the order's 201

    def post(self, path: str, body: dict, key: str) -> Answer:
        headers = {KEY: key}
        if self.api_key:
            headers["X-API-Key"] = self.api_key
        return call("POST", f"{self.command}{path}", body, headers)

    def read(self, path: str, token: str) -> Answer:
        """GET an analytic once it includes the write of `token`: the query API waits for it
        (Prefer: wait). A 503 with Retry-After (the wait ran out, or no thread was free to
        wait) is asked again after Retry-After while the seconds allowed last."""
        deadline = time.monotonic() + self.wait
        while True:
            left = max(0.0, deadline - time.monotonic())
            headers = {TOKEN: token, "Prefer": f"wait={left:.3f}"}
            answer = call("GET", f"{self.query}{path}", headers=headers)
            retry_after = answer.header("Retry-After")
            if answer.status != 503 or retry_after is None or not retry_after.isdigit():
                return answer
            if time.monotonic() + int(retry_after) >= deadline:
                return answer
            time.sleep(int(retry_after))

    def run(self) -> None:
        for name, base in (("command", self.command), ("query", self.query)):
            expect(
                call("GET", f"{base}/health").status == 200, f"{name} API health at {base}/health"
            )
        category = f"verify-{uuid.uuid4().hex[:8]}"
        customer = random.randint(10**12, 10**13)
        product = self.create_product(category)
        order, token = self.create_order(customer, product)
        self.analytics(product, category, customer, order, token)

    def create_product(self, category: str) -> int:
        body = {"name": "Verification widget", "category": category, "price": 12.34, "stock": 5}
        created = self.post("/api/products", body, key=f"verify-{uuid.uuid4()}")
        expect(
            created.status == 201 and isinstance(_member(created, "productId"), int),
            f"create a product with an {KEY} -> 201",
            created,
        )
        return int(created.body["productId"])

    def create_order(self, customer: int, product: int) -> tuple[int, str]:
        """Place the order, send it again with its key, and misuse the key; the orderId and
        its consistency token."""
        key = f"verify-{uuid.uuid4()}"
        body = {
            "customerId": customer,
            "items": [{"productId": product, "quantity": 2, "price": 12.34}],
        }
        first = self.post("/api/orders", body, key)
        self.placed_at = time.monotonic()
        order, token = _member(first, "orderId"), first.header(TOKEN)
        expect(
            first.status == 201
            and isinstance(order, int)
            and first.header("Idempotent-Replayed") is None,
            f"create an order with an {KEY} -> 201",
            first,
        )
        expect(
            bool(token) and _member(first, "consistencyToken") == token,
            f"the order's 201 carries its consistency token ({TOKEN} and consistencyToken)",
            first,
        )
        again = self.post("/api/orders", body, key)
        expect(
            again.status == 201
            and again.header("Idempotent-Replayed") == "true"
            and _member(again, "orderId") == order
            and again.header(TOKEN) == token,
            f"the same order with the same key -> 201, Idempotent-Replayed: true, orderId {order}",
            again,
        )
        other = {**body, "items": [{"productId": product, "quantity": 1, "price": 12.34}]}
        reused = self.post("/api/orders", other, key)
        expect(reused.status == 422, "the same key with another body -> 422", reused)
        above = {**body, "items": [{"productId": product, "quantity": 99, "price": 1}]}
        refused = self.post("/api/orders", above, f"verify-{uuid.uuid4()}")
        expect(refused.status == 409, "an order above stock -> 409", refused)
        return order, str(token)

    def analytics(self, product: int, category: str, customer: int, order: int, token: str) -> None:
        """Every figure shows the order exactly once (the replay and the refusals wrote
        nothing), read with the order's token: no polling."""
        total = Decimal("24.68")
        sales = self.read(f"/api/analytics/products/{product}/sales", token)
        took = time.monotonic() - self.placed_at
        expect(
            sales.status == 200
            and bool(sales.header(TOKEN))
            and (
                _member(sales, "totalQuantitySold"),
                _member(sales, "totalRevenue"),
                _member(sales, "orderCount"),
            )
            == (2, total, 1),
            f"product sales read with the order's {TOKEN} show order {order} once "
            f"(answered {took * 1000:.0f} ms after its 201)",
            sales,
        )
        revenue = self.read(f"/api/analytics/categories/{category}/revenue", token)
        expect(
            revenue.status == 200
            and (_member(revenue, "totalRevenue"), _member(revenue, "totalOrders")) == (total, 1),
            "category revenue",
            revenue,
        )
        ltv = self.read(f"/api/analytics/customers/{customer}/lifetime-value", token)
        expect(
            ltv.status == 200
            and (_member(ltv, "totalSpent"), _member(ltv, "orderCount")) == (total, 1),
            "customer lifetime value",
            ltv,
        )
        sync = call("GET", f"{self.query}/api/analytics/sync-status")
        lag = _member(sync, "lagSeconds")
        expect(
            sync.status == 200
            and isinstance(lag, int | Decimal)
            and lag >= 0
            and "lastProcessedEventTimestamp" in sync.body,
            f"sync-status {sync.body}",
        )


def verify(command: str, query: str, timeout: float, api_key: str | None = None) -> None:
    Verification(command, query, min(max(timeout, 0.0), MAX_WAIT), api_key).run()


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--command-url", default="http://localhost:8080")
    parser.add_argument("--query-url", default="http://localhost:8081")
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        help="seconds the analytics may take to include the order (Prefer: wait; at most 30)",
    )
    parser.add_argument(
        "--api-key", help="sent as X-API-Key with both POSTs (when COMMAND_API_KEYS is set)"
    )
    args = parser.parse_args(argv)
    try:
        verify(args.command_url.rstrip("/"), args.query_url.rstrip("/"), args.timeout, args.api_key)
    except Failed as exc:
        print(f"verification failed: {exc}", file=sys.stderr)
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
