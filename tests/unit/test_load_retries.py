"""The harness's retrying client (infra/harness/load.py) against a fake command API on
loopback that loses answers, fails and holds keys: each order is sent again with its key until
a definitive answer, and written once."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from infra.harness.load import OrderStream


class FakeOrders:
    """POST /api/orders with Idempotency-Keys. The first attempt of each key meets, in turn:
    its write committed and the connection cut (no answer), a 503, a 409 for the key in use
    (Retry-After: 0), an ordinary 201, a 409 for stock (a refusal: definitive). Later attempts
    are answered as the contract says: a replay when the key holds a write, else a write."""

    FIRST_ATTEMPTS = ("lost answer", "503", "key in use", "201", "no stock")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.turns = itertools.cycle(self.FIRST_ATTEMPTS)
        self.first: dict[str, str] = {}  # key -> what its first attempt met
        self.stored: dict[str, dict[str, Any]] = {}  # key -> the answer of its write
        self.writes: Counter[str] = Counter()
        self.bodies: dict[str, set[bytes]] = {}  # key -> every body sent with it
        self.unkeyed = 0

    def handle(self, key: str | None, body: bytes) -> tuple[int, dict, dict[str, str]] | None:
        """The answer (None: cut the connection)."""
        with self.lock:
            if key is not None:
                self.bodies.setdefault(key, set()).add(body)
            if key is None:
                self.unkeyed += 1
                return 201, {"orderId": 10**6 + self.unkeyed}, {}
            if key in self.stored:
                return 201, self.stored[key], {"Idempotent-Replayed": "true"}
            if key not in self.first:
                self.first[key] = turn = next(self.turns)
                if turn == "503":
                    return 503, {"error": "the database is unavailable; retry later"}, {}
                if turn == "key in use":
                    return 409, {"error": "key in use"}, {"Retry-After": "0"}
                if turn == "no stock":
                    return 409, {"error": "insufficient stock"}, {}
            self.writes[key] += 1
            self.stored[key] = {"orderId": len(self.stored) + 1}
            if self.first[key] == "lost answer" and self.writes[key] == 1:
                return None
            return 201, self.stored[key], {}


@contextmanager
def serving(fake: FakeOrders) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            answer = fake.handle(self.headers.get("Idempotency-Key"), body)
            if answer is None:
                self.close_connection = True  # committed, and no answer
                return
            status, body, headers = answer
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(raw)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run(fake: FakeOrders, seconds: float = 0.6, at_least: int = 0, **options: Any) -> OrderStream:
    """Send orders for `seconds`, and on past them (up to 60 s) until `at_least` orders have
    reached a definitive answer: a busy machine sends fewer in the same time."""
    with serving(fake) as url:
        stream = OrderStream(url, [1, 2, 3], rate=100, backoff=(0.01, 0.05), **options)
        stream.start()
        time.sleep(seconds)
        deadline = time.monotonic() + 60
        while len(stream.intents) < at_least and time.monotonic() < deadline:
            time.sleep(0.05)
        stream.stop()
    return stream


def test_each_order_is_retried_with_its_key_until_definitive_and_written_once():
    fake = FakeOrders()
    stream = run(fake, at_least=20, clients=3)

    intents = {intent.key: intent for intent in stream.intents}
    assert len(intents) == len(stream.intents) >= 20  # a fresh key per order
    assert set(intents) == set(fake.first)
    assert all(times == 1 for times in fake.writes.values())  # never written twice
    for key, intent in intents.items():  # every attempt: the same body with the same key
        assert fake.bodies[key] == {json.dumps(intent.body).encode()}
    assert len({json.dumps(i.body) for i in intents.values()}) > 1  # a body per order
    for key, intent in intents.items():
        met = fake.first[key]
        if met == "no stock":
            assert (intent.status, intent.order_id, intent.attempts) == (409, None, 1)
            assert key not in fake.stored
            continue
        assert intent.status == 201 and intent.order_id == fake.stored[key]["orderId"]
        assert intent.attempts == (1 if met == "201" else 2), (met, intent)
        assert intent.replayed == (met == "lost answer")

    summary = stream.summary()
    firsts = Counter(fake.first.values())
    assert summary == {
        "intended": len(intents),
        "placed": len(intents) - firsts["no stock"],
        "refused": firsts["no stock"],
        "unresolved": 0,
        "retried": firsts["lost answer"] + firsts["503"] + firsts["key in use"],
        "replayed": firsts["lost answer"],
    }
    # every answer counted, each attempt's
    assert stream.outcomes == Counter(
        {
            "no answer": firsts["lost answer"],
            503: firsts["503"],
            409: firsts["key in use"] + firsts["no stock"],
            201: summary["placed"],
        }
    )
    assert sorted(stream.accepted) == sorted(i.order_id for i in intents.values() if i.placed)


def test_without_keys_each_order_is_sent_once():
    fake = FakeOrders()
    stream = run(fake, seconds=0.3, keyed=False)
    assert stream.intents == [] and fake.first == {}
    assert fake.unkeyed == stream.outcomes[201] == len(stream.accepted) > 0
