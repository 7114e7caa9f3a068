"""Read your writes on the real local emulation (CONTRACT.md, "Read your writes: consistency
tokens"): every process of `python -m infra.local`, real sockets, the relay and projectors
running on their own.

1. A client that reads right after its write, passing the 201's token, sees the write every
   time: 1,000 rounds from several clients while a stream of other orders loads the pipeline.
2. Readers waiting for a token sleep on the edge's waiting threads: while hundreds wait,
   ordinary reads are answered, and all the waiters are answered once the write is
   projected. The projectors are stopped (SIGSTOP) for the while, so "not projected yet" is
   certain rather than a race.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
import requests

from infra.harness.load import OrderStream
from shopcore.events import tokens
from shopcore.platform import jsonio
from tests.support import stack as stacks
from tests.support.local_system import LocalSystem

TOKEN = "X-Consistency-Token"
ROUNDS = 1000
CLIENTS = 8
CUSTOMERS_PER_CLIENT = 3
# customers of this module alone: OrderStream's are 1..20
FIRST_CUSTOMER = 3_000_000_000


@pytest.fixture(scope="module")
def system(tmp_path_factory, run_stack) -> Iterator[LocalSystem]:
    with stacks.isolated() as stack:
        local = LocalSystem(stack, tmp_path_factory.mktemp("ryw") / "local.log")
        local.start()
        try:
            yield local
        finally:
            assert local.stop() == 0, local.log()[-3000:]
    stacks.activate(run_stack)


@pytest.fixture(scope="module")
def products(system) -> list[int]:
    ids = []
    for n in range(5):
        r = requests.post(
            f"{system.command_url}/api/products",
            json={"name": f"P{n}", "category": f"C{n % 2}", "price": 3, "stock": 100_000_000},
            timeout=10,
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["productId"])
    return ids


def ltv_url(system: LocalSystem, customer: int) -> str:
    return f"{system.query_url}/api/analytics/customers/{customer}/lifetime-value"


def place(
    session: requests.Session, system: LocalSystem, customer: int, lines: list[dict[str, Any]]
) -> str:
    r = session.post(
        f"{system.command_url}/api/orders",
        data=jsonio.dumps({"customerId": customer, "items": lines}),  # prices: Decimal numbers
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    token: str = r.headers[TOKEN]
    assert r.json()["consistencyToken"] == token
    return token


# --- 1. every read after a write sees it --------------------------------------------------------


def test_a_read_with_the_writes_token_always_sees_the_write(system, products):
    stream = OrderStream(system.command_url, products, rate=50).start()
    stale: list[str] = []
    answered = threading.Semaphore(0)

    def client(number: int) -> dict[int, tuple[int, Decimal]]:
        rng = random.Random(number)
        session = requests.Session()
        customers = [
            FIRST_CUSTOMER + number * CUSTOMERS_PER_CLIENT + k for k in range(CUSTOMERS_PER_CLIENT)
        ]
        expected = {c: (0, Decimal("0.00")) for c in customers}
        for round_ in range(ROUNDS // CLIENTS):
            customer = customers[round_ % len(customers)]
            quantity, price = rng.randint(1, 3), Decimal(rng.choice(["1", "2.5", "9.99"]))
            token = place(
                session,
                system,
                customer,
                [{"productId": rng.choice(products), "quantity": quantity, "price": price}],
            )
            count, total = expected[customer]
            expected[customer] = (count + 1, total + quantity * price)

            r = session.get(ltv_url(system, customer), headers={TOKEN: token}, timeout=30)
            answered.release()
            if r.status_code != 200:
                stale.append(f"{customer} after {token}: {r.status_code} {r.text[:200]}")
                continue
            body = jsonio.loads(r.content)
            seen = (body["orderCount"], body["totalSpent"])
            if seen != expected[customer]:
                stale.append(f"{customer} after {token}: saw {seen}, wrote {expected[customer]}")
            if tokens.parse(r.headers[TOKEN]) < tokens.parse(token):
                stale.append(f"{customer} after {token}: answered with {r.headers[TOKEN]}")
        return expected

    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            finals = list(pool.map(client, range(CLIENTS)))
    finally:
        stream.stop()

    assert stale == [], f"{len(stale)} stale answers, e.g. {stale[:5]}"
    assert sum(count for final in finals for count, _ in final.values()) == ROUNDS
    # the load really was there, and took no harm
    assert stream.outcomes[201] > 0, stream.outcomes
    assert not stream.errors, stream.errors[:5]


# --- 2. waiting readers hold up nothing -----------------------------------------------------------

WAITERS = 200


class StoppedProjectors:
    """Every projector process stopped (SIGSTOP) inside the block, continued on leaving it:
    nothing is projected meanwhile, whatever the relay publishes."""

    def __init__(self, system: LocalSystem) -> None:
        self.pids = system.instances("projector queue trigger")
        self.stopped = False

    def __enter__(self) -> StoppedProjectors:
        for pid in self.pids:
            os.kill(pid, signal.SIGSTOP)
        self.stopped = True
        return self

    def resume(self) -> None:
        if self.stopped:
            for pid in self.pids:
                os.kill(pid, signal.SIGCONT)
            self.stopped = False

    def __exit__(self, *exc: object) -> None:
        self.resume()


def test_hundreds_of_waiting_readers_do_not_block_other_reads(system, products):
    customer = FIRST_CUSTOMER + 999_999
    session = requests.Session()
    line = {"productId": products[0], "quantity": 2, "price": Decimal("4.50")}
    answers: list[tuple[int, Any, str | None] | str] = []
    lock = threading.Lock()
    start = threading.Barrier(WAITERS + 1)

    def wait_for(token: str) -> None:
        start.wait()
        try:
            r = requests.get(
                ltv_url(system, customer), headers={TOKEN: token, "Prefer": "wait=20"}, timeout=60
            )
            answer: tuple[int, Any, str | None] | str = (
                r.status_code,
                jsonio.loads(r.content),
                r.headers.get(TOKEN),
            )
        except requests.RequestException as exc:
            answer = f"no answer: {exc!r}"
        with lock:
            answers.append(answer)

    with StoppedProjectors(system) as projectors:
        token = place(session, system, customer, [line])
        waiters = [
            threading.Thread(target=wait_for, args=(token,), daemon=True) for _ in range(WAITERS)
        ]
        for thread in waiters:
            thread.start()
        start.wait()
        time.sleep(1.0)  # let them all arrive and fall asleep

        # meanwhile: ordinary reads, and reads whose token is long projected
        ordinary = [
            session.get(f"{system.query_url}/api/analytics/sync-status", timeout=10),
            session.get(f"{system.query_url}/api/analytics/sales/hourly", timeout=10),
            session.get(
                f"{system.query_url}/api/analytics/products/{products[0]}/sales",
                headers={TOKEN: "c1.0"},
                timeout=10,
            ),
            session.get(
                f"{system.query_url}/api/analytics/sync-status",
                headers={TOKEN: token, "Prefer": "wait=0"},
                timeout=10,
            ),
        ]
        with lock:
            early = list(answers)

        assert [r.status_code for r in ordinary[:3]] == [200, 200, 200], [r.text for r in ordinary]
        assert ordinary[3].status_code == 503 and "Retry-After" in ordinary[3].headers
        assert early == [], f"{len(early)} waiters answered before the write was projected"

        projectors.resume()
        for thread in waiters:
            thread.join(40)

    assert not any(thread.is_alive() for thread in waiters)
    assert len(answers) == WAITERS
    failed = [a for a in answers if isinstance(a, str) or a[0] != 200]
    assert failed == [], f"{len(failed)} of {WAITERS} not 200, e.g. {failed[:3]}"
    for _, body, answered_token in answers:  # type: ignore[misc]
        assert (body["orderCount"], body["totalSpent"]) == (1, Decimal("9.00"))
        assert answered_token is not None and tokens.parse(answered_token) >= tokens.parse(token)


def test_waiters_whose_wait_runs_out_are_503_and_the_rest_unharmed(system, products):
    customer = FIRST_CUSTOMER + 999_998
    session = requests.Session()
    line = {"productId": products[1], "quantity": 1, "price": 3}
    with StoppedProjectors(system):
        token = place(session, system, customer, [line])
        with ThreadPoolExecutor(50) as pool:
            futures = [
                pool.submit(
                    requests.get,
                    ltv_url(system, customer),
                    headers={TOKEN: token, "Prefer": "wait=1"},
                    timeout=30,
                )
                for _ in range(50)
            ]
            answers = [f.result() for f in futures]
    assert {r.status_code for r in answers} == {503}
    for r in answers:
        assert r.headers["Content-Type"] == "application/json"
        assert r.headers["Retry-After"].isdigit()
        assert r.json()["error"]

    # projected now: the same read is answered
    r = session.get(ltv_url(system, customer), headers={TOKEN: token}, timeout=30)
    assert r.status_code == 200, r.text
    assert jsonio.loads(r.content)["orderCount"] == 1


# --- 3. when every waiting thread is taken ------------------------------------------------------

FEW_THREADS = 4


@pytest.fixture
def small_system(tmp_path, run_stack) -> Iterator[LocalSystem]:
    """One query worker with FEW_THREADS waiting threads."""
    with stacks.isolated() as stack:
        local = LocalSystem(
            stack,
            tmp_path / "local.log",
            QUERY_WORKERS="1",
            EDGE_WAITING_THREADS=str(FEW_THREADS),
        )
        local.start()
        try:
            yield local
        finally:
            assert local.stop() == 0, local.log()[-3000:]
    stacks.activate(run_stack)


def test_a_reader_finding_every_waiting_thread_taken_is_answered_at_once(small_system):
    """Queued behind sleeping readers, a reader would wait longer than it asked: it gets its
    503 (and Retry-After) at once instead, and the sleepers are answered as usual."""
    system = small_system
    r = requests.post(
        f"{system.command_url}/api/products",
        json={"name": "Lamp", "category": "Home", "price": 2, "stock": 1000},
        timeout=10,
    )
    product = r.json()["productId"]
    customer = FIRST_CUSTOMER + 12
    session = requests.Session()

    def read(token: str, wait: int, into: list) -> threading.Thread:
        def run() -> None:
            headers = {TOKEN: token, "Prefer": f"wait={wait}"}
            into.append(requests.get(ltv_url(system, customer), headers=headers, timeout=60))

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    sleepers: list[requests.Response] = []
    latecomers: list[requests.Response] = []
    with StoppedProjectors(system) as projectors:
        token = place(
            session, system, customer, [{"productId": product, "quantity": 1, "price": 2}]
        )
        sleeping = [read(token, 20, sleepers) for _ in range(FEW_THREADS)]
        time.sleep(1.0)  # let them take every waiting thread
        late = [read(token, 1, latecomers) for _ in range(FEW_THREADS)]
        deadline = time.monotonic() + 10  # queued, they would wait for the sleepers' 20 s
        for thread in late:
            thread.join(max(0.0, deadline - time.monotonic()))
        still_queued = sum(thread.is_alive() for thread in late)
        ordinary = session.get(f"{system.query_url}/api/analytics/sync-status", timeout=10)
        early = list(sleepers)
        projectors.resume()
        for thread in sleeping:
            thread.join(40)

    assert still_queued == 0, f"{still_queued} readers queued behind the sleeping ones"
    assert early == []
    assert [r.status_code for r in latecomers] == [503] * FEW_THREADS
    for r in latecomers:
        assert r.headers["Content-Type"] == "application/json"
        assert r.headers["Retry-After"].isdigit()
        assert r.json()["error"]
    assert ordinary.status_code == 200
    assert [r.status_code for r in sleepers] == [200] * FEW_THREADS

    # every thread is free again: more readers than there are threads, one after another
    for _ in range(3 * FEW_THREADS):
        r = session.get(ltv_url(system, customer), headers={TOKEN: token}, timeout=30)
        assert r.status_code == 200, r.text
