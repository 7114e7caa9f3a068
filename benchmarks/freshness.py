"""Freshness: how long from an order's 201 until the analytics show it.

Each sample orders one item for a brand-new customer (so the customer's lifetime value answers
404 until that very order is projected), takes the time the 201 arrives, then polls
GET /api/analytics/customers/{id}/lifetime-value until it answers 200 with the order. The
figure is the time from the 201 to the arrival of that 200: an upper bound, by at most one GET
round trip plus the poll interval.

Sequential at idle (`sequential`), or in a thread alongside a load (`start` ... `stop`).
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests

from benchmarks.stats import percentile


@dataclass
class Sample:
    at: float  # wall clock (time.time()) of the 201
    seconds: float | None  # None: not visible within the timeout


@dataclass
class Sampler:
    command_url: str
    query_url: str
    product_ids: list[int]
    first_customer: int
    poll_seconds: float = 0.002
    timeout: float = 60.0
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    last_accepted: float | None = None  # time.monotonic() of the newest 201

    def __post_init__(self) -> None:
        self._next_customer = self.first_customer
        self._rng = random.Random(self.first_customer)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._session = requests.Session()

    def sample_one(self) -> Sample | None:
        customer = self._next_customer
        self._next_customer += 1
        body: dict[str, Any] = {
            "customerId": customer,
            "items": [{"productId": self._rng.choice(self.product_ids), "quantity": 1, "price": 1}],
        }
        try:
            answer = self._session.post(f"{self.command_url}/api/orders", json=body, timeout=30)
        except requests.RequestException as exc:
            self.errors.append(f"POST: {type(exc).__name__}")
            return None
        accepted, at = time.perf_counter(), time.time()
        if answer.status_code != 201:
            self.errors.append(f"POST {answer.status_code}: {answer.text[:200]}")
            return None
        self.last_accepted = time.monotonic()
        url = f"{self.query_url}/api/analytics/customers/{customer}/lifetime-value"
        deadline = accepted + self.timeout
        while time.perf_counter() < deadline:
            try:
                seen = self._session.get(url, timeout=30)
            except requests.RequestException as exc:
                self.errors.append(f"GET: {type(exc).__name__}")
                continue
            if seen.status_code == 200 and seen.json().get("orderCount") == 1:
                return Sample(at, time.perf_counter() - accepted)
            if seen.status_code not in (200, 404):
                self.errors.append(f"GET {seen.status_code}: {seen.text[:200]}")
            if self._stop.is_set():
                return None  # stopped mid-sample: the load is over, this one would not count
            time.sleep(self.poll_seconds)
        return Sample(at, None)

    def sequential(self, count: int) -> list[Sample]:
        for _ in range(count):
            sample = self.sample_one()
            if sample is not None:
                self.samples.append(sample)
        return self.samples

    def start(self) -> Sampler:
        self._thread = threading.Thread(target=self._run, daemon=True, name="freshness")
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            sample = self.sample_one()
            if sample is not None:
                self.samples.append(sample)

    def stop(self) -> list[Sample]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout + 5)
        return self.samples


def summarize(samples: list[Sample], errors: list[str], origin_wall: float) -> dict[str, Any]:
    """Percentiles in ms; a sample never seen counts as the timeout (so it shows in the tail)."""
    seen = [s.seconds * 1000 for s in samples if s.seconds is not None]
    missed = sum(1 for s in samples if s.seconds is None)
    values = seen + [float("inf")] * missed

    def pct(p: float) -> float | None:
        value = percentile(values, p)
        return None if value is None or value == float("inf") else round(value, 2)

    return {
        "samples": len(samples),
        "missed": missed,
        "errors": len(errors),
        "errorSample": errors[:5],
        "p50Ms": pct(50),
        "p95Ms": pct(95),
        "p99Ms": pct(99),
        "maxMs": pct(100),
        "meanMs": round(sum(seen) / len(seen), 2) if seen else None,
        # [seconds since the run's origin, ms or null]
        "series": [
            [
                round(s.at - origin_wall, 3),
                None if s.seconds is None else round(s.seconds * 1000, 2),
            ]
            for s in samples
        ],
    }
