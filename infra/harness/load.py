"""A steady stream of orders over HTTP, for fault tests, the soak and benchmarks.

It keeps going whatever the system answers (201, 409, 503, refused connections) and counts
each answer in `outcomes`, so a test can assert what the API did during a fault.

Keyed (the default): each order the client means to place (an `Intent`) gets a fresh
Idempotency-Key, and the client sends the same body with the same key again after no answer
(a refused or cut connection, a timeout), a 5xx, a 408 or 429, or a 409 saying the key is in
use, waiting the Retry-After it was given or else an exponential backoff, until a definitive
answer: a 201 (first time or replayed), or any other 4xx. So every intended order is placed
exactly once, whatever the faults (CONTRACT.md, "Safe retries: Idempotency-Key"); each intent
keeps its key and final outcome for infra.ops.reconcile.exactly_once to check against the
write database. An order still without a definitive answer after `give_up_after` seconds of
retries is left unresolved (status None). `keyed=False` sends each order once, without a key.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import requests

KEY_HEADER = "Idempotency-Key"
# Answers after which the same request, with the same key, is sent again (besides no answer,
# every 5xx, and a 409 with Retry-After: the key is in use).
RETRY_STATUSES = {408, 429}
MAX_RETRY_AFTER = 10.0  # seconds: a longer Retry-After is honoured only up to this
MAX_LAG = 1.0  # seconds behind its schedule a client catches up on (after a long retry)


@dataclass
class Intent:
    """One order the client means to place, and what became of it."""

    key: str
    body: dict[str, Any]
    status: int | None = None  # the definitive answer: 201 or another 4xx; None: unresolved
    order_id: int | None = None  # the orderId of its 201
    attempts: int = 0
    replayed: bool = False  # its 201 was a replay: an earlier attempt had written the order

    @property
    def placed(self) -> bool:
        return self.status == 201


@dataclass
class OrderStream:
    command_url: str
    product_ids: list[int]
    rate: float = 50.0  # orders per second, in total
    customers: int = 20
    seed: int = 7
    headers: dict[str, str] = field(default_factory=dict)
    keyed: bool = True  # a fresh Idempotency-Key per order, retried until definitive
    clients: int = 1  # concurrent clients (threads), each sending rate / clients orders/s
    timeout: float = 15.0  # seconds per attempt (a request waits up to 10 s for its key)
    backoff: tuple[float, float] = (0.05, 2.0)  # first and longest wait between attempts
    give_up_after: float = 120.0  # seconds of retries after which an order stays unresolved
    outcomes: Counter = field(default_factory=Counter)  # every answer, each attempt's
    accepted: list[int] = field(default_factory=list)  # the orderId of each order placed
    intents: list[Intent] = field(default_factory=list)  # keyed: every order meant, in order
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._run_id = uuid.uuid4().hex[:12]
        self._threads = [
            threading.Thread(target=self._run, args=(n,), daemon=True, name=f"order-stream-{n}")
            for n in range(self.clients)
        ]

    def start(self) -> OrderStream:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop sending new orders; an order being retried goes on to its definitive answer
        (or give_up_after)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(self.give_up_after + 2 * self.timeout)

    # --- what became of the intended orders (keyed) ----------------------------------------

    def unresolved(self) -> list[Intent]:
        with self._lock:
            return [i for i in self.intents if i.status is None]

    def summary(self) -> dict[str, int]:
        """How the intended orders ended: placed (201), refused (another 4xx), unresolved;
        how many needed more than one attempt, and how many of those were answered by a
        replay (an earlier attempt had written the order, and its answer was lost)."""
        with self._lock:
            intents = list(self.intents)
        return {
            "intended": len(intents),
            "placed": sum(i.placed for i in intents),
            "refused": sum(i.status is not None and not i.placed for i in intents),
            "unresolved": sum(i.status is None for i in intents),
            "retried": sum(i.attempts > 1 for i in intents),
            "replayed": sum(i.replayed for i in intents),
        }

    # --- the clients -----------------------------------------------------------------------

    def _run(self, client: int) -> None:
        rng = random.Random(self.seed if client == 0 else f"{self.seed}/{client}")
        session = requests.Session()
        interval = self.clients / self.rate
        next_at = time.monotonic()
        sequence = 0
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
            if self.keyed:
                sequence += 1
                session = self._place(session, Intent(f"{self._run_id}-{client}-{sequence}", body))
            else:
                session = self._send_once(session, body)
            next_at = max(next_at + interval, time.monotonic() - MAX_LAG)
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _send_once(self, session: requests.Session, body: dict) -> requests.Session:
        response, session = self._attempt(session, body, self.headers)
        if response is not None and response.status_code == 201:
            with self._lock:
                self.accepted.append(response.json()["orderId"])
        return session

    def _place(self, session: requests.Session, intent: Intent) -> requests.Session:
        """Send `intent` with its key until a definitive answer (or give_up_after)."""
        with self._lock:
            self.intents.append(intent)
        headers = {**self.headers, KEY_HEADER: intent.key}
        deadline = time.monotonic() + self.give_up_after
        delay = self.backoff[0]
        while True:
            response, session = self._attempt(session, intent.body, headers)
            intent.attempts += 1
            wait = _retry_wait(response, delay)
            if wait is None:
                assert response is not None
                self._settle(intent, response)
                return session
            if time.monotonic() + wait > deadline:
                return session  # unresolved: status stays None
            time.sleep(wait)
            delay = min(2 * delay, self.backoff[1])

    def _settle(self, intent: Intent, response: requests.Response) -> None:
        with self._lock:
            intent.status = response.status_code
            if response.status_code == 201:
                intent.order_id = int(response.json()["orderId"])
                intent.replayed = response.headers.get("Idempotent-Replayed") == "true"
                self.accepted.append(intent.order_id)

    def _attempt(
        self, session: requests.Session, body: dict, headers: dict[str, str]
    ) -> tuple[requests.Response | None, requests.Session]:
        """One POST; its answer (None: none came) counted in `outcomes`, and the session to
        go on with (a new one after a connection failed)."""
        try:
            response = session.post(
                f"{self.command_url}/api/orders", json=body, headers=headers, timeout=self.timeout
            )
        except requests.RequestException as exc:
            with self._lock:
                self.outcomes["no answer"] += 1
                self.errors.append(type(exc).__name__)
            session.close()
            return None, requests.Session()
        with self._lock:
            self.outcomes[response.status_code] += 1
            if response.status_code >= 500:
                self.errors.append(f"{response.status_code} {response.text[:200]}")
        return response, session


def _retry_wait(response: requests.Response | None, backoff: float) -> float | None:
    """Seconds to wait before sending the same request again (the Retry-After given, else
    `backoff` with jitter); None: the answer is definitive."""
    jittered = backoff * random.uniform(0.5, 1.0)
    if response is None:
        return jittered
    status = response.status_code
    retry_after = _seconds(response.headers.get("Retry-After"))
    if status == 409 and retry_after is None:
        return None  # a refusal (insufficient stock); the key in use comes with Retry-After
    if status >= 500 or status in RETRY_STATUSES or status == 409:
        return jittered if retry_after is None else retry_after
    return None


def _seconds(value: str | None) -> float | None:
    try:
        return None if value is None else min(max(float(value), 0.0), MAX_RETRY_AFTER)
    except ValueError:
        return None  # an HTTP date: not one this API sends
