"""A steady stream of orders over HTTP, for fault tests, the soak and benchmarks.

It keeps going whatever the system answers (201, 409, 503, refused connections) and counts
each outcome, so a test can assert what the API did during a fault.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import requests


@dataclass
class OrderStream:
    command_url: str
    product_ids: list[int]
    rate: float = 50.0  # orders per second, in total
    customers: int = 20
    seed: int = 7
    headers: dict[str, str] = field(default_factory=dict)
    outcomes: Counter = field(default_factory=Counter)
    accepted: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._lock = threading.Lock()

    def start(self) -> OrderStream:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        rng = random.Random(self.seed)
        session = requests.Session()
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        while not self._stop.is_set():
            products = rng.sample(self.product_ids, k=min(len(self.product_ids), rng.randint(1, 3)))
            body = {
                "customerId": rng.randint(1, self.customers),
                "items": [
                    {
                        "productId": p,
                        "quantity": rng.randint(1, 3),
                        "price": rng.choice([1, 2.5, 9.99]),
                    }
                    for p in products
                ],
            }
            self._send(session, body)
            next_at += interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _send(self, session: requests.Session, body: dict) -> None:
        try:
            response = session.post(
                f"{self.command_url}/api/orders", json=body, headers=self.headers, timeout=10
            )
        except requests.RequestException as exc:
            with self._lock:
                self.outcomes["no answer"] += 1
                self.errors.append(type(exc).__name__)
            session.close()
            return
        with self._lock:
            self.outcomes[response.status_code] += 1
            if response.status_code == 201:
                self.accepted.append(response.json()["orderId"])
            elif response.status_code >= 500:
                self.errors.append(f"{response.status_code} {response.text[:200]}")
