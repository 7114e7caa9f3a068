"""Check a running deployment end to end, as a user would.

    shop verify [--command-url http://localhost:8080] [--query-url http://localhost:8081]

(`python -m infra.ops.verify` is the same.)

Health of both APIs; create a product and an order; wait for the analytics to show exactly
that order; check sync-status. Writes one new product and one order for a random customer
id. Exit status 0 when every check passes.
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
from decimal import Decimal
from typing import Any


class Failed(Exception):
    pass


def call(method: str, url: str, body: dict | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null", parse_float=Decimal)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null", parse_float=Decimal)
    except (urllib.error.URLError, OSError) as exc:
        raise Failed(f"{method} {url}: cannot connect ({exc})") from None


def expect(ok: bool, what: str) -> None:
    print(f"{'ok  ' if ok else 'FAIL'} {what}", flush=True)
    if not ok:
        raise Failed(what)


def wait_for(url: str, accept: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        status, body = call("GET", url)
        if status == 200 and accept(body):
            return body
        if time.monotonic() > deadline:
            raise Failed(f"GET {url} did not converge in {timeout}s (last: {status} {body})")
        time.sleep(0.05)


def verify(command: str, query: str, timeout: float) -> None:
    for name, base in (("command", command), ("query", query)):
        status, _ = call("GET", f"{base}/health")
        expect(status == 200, f"{name} API health at {base}/health")

    category = f"verify-{uuid.uuid4().hex[:8]}"
    customer = random.randint(10**12, 10**13)
    status, body = call(
        "POST", f"{command}/api/products",
        {"name": "Verification widget", "category": category, "price": 12.34, "stock": 5},
    )  # fmt: skip
    expect(status == 201 and isinstance(body.get("productId"), int), "create a product -> 201")
    product = body["productId"]
    status, body = call(
        "POST", f"{command}/api/orders",
        {"customerId": customer, "items": [{"productId": product, "quantity": 2, "price": 12.34}]},
    )  # fmt: skip
    expect(status == 201 and isinstance(body.get("orderId"), int), "create an order -> 201")
    status, _ = call(
        "POST", f"{command}/api/orders",
        {"customerId": customer, "items": [{"productId": product, "quantity": 99, "price": 1}]},
    )  # fmt: skip
    expect(status == 409, "an order above stock -> 409")

    started = time.monotonic()
    sales = wait_for(
        f"{query}/api/analytics/products/{product}/sales",
        lambda b: b.get("orderCount") == 1,
        timeout,
    )
    took = time.monotonic() - started
    expect(
        (sales["totalQuantitySold"], sales["totalRevenue"]) == (2, Decimal("24.68")),
        f"product sales show the order ({took * 1000:.0f} ms after the 201)",
    )
    _, revenue = call("GET", f"{query}/api/analytics/categories/{category}/revenue")
    expect(
        (revenue.get("totalRevenue"), revenue.get("totalOrders")) == (Decimal("24.68"), 1),
        "category revenue",
    )
    _, ltv = call("GET", f"{query}/api/analytics/customers/{customer}/lifetime-value")
    expect(
        (ltv.get("totalSpent"), ltv.get("orderCount")) == (Decimal("24.68"), 1),
        "customer lifetime value",
    )
    status, sync = call("GET", f"{query}/api/analytics/sync-status")
    expect(
        status == 200 and sync.get("lagSeconds", -1) >= 0 and "lastProcessedEventTimestamp" in sync,
        f"sync-status {sync}",
    )


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--command-url", default="http://localhost:8080")
    parser.add_argument("--query-url", default="http://localhost:8081")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to converge")
    args = parser.parse_args(argv)
    try:
        verify(args.command_url.rstrip("/"), args.query_url.rstrip("/"), args.timeout)
    except Failed as exc:
        print(f"verification failed: {exc}", file=sys.stderr)
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
