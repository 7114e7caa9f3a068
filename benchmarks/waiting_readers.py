"""How many readers waiting on a consistency token one query process holds (issue 11).

A GET with `X-Consistency-Token` for a write whose event is not projected yet sleeps in the
query process until the projector announces it (shopcore/read/consistency.py); the edge runs
such a request on a thread of its own, at most EDGE_WAITING_THREADS (256) per worker process,
and answers any more 503 with Retry-After at once (infra/local/edge/connection.py). For each
count N, on a system whose query port has one worker (QUERY_WORKERS=1):

1. N GETs of a new customer's lifetime value, each on a connection of its own, carry the token
   of the next outbox id (nothing has it yet) with `Prefer: wait=30`;
2. while they wait: the worker's RSS, threads and CPU; the committed transactions per second
   of the read database and of the write database (`pg_stat_database.xact_commit`: each query
   of the analytics role's pools is one autocommit transaction; the watch asks both sides),
   less their idle rates; an ordinary GET's latency (sequential, keep-alive) and that of one
   GET whose token is long covered (it needs a waiting thread too);
3. one order for that customer is placed (its token must be the one the readers hold), and
   each reader's answer is checked: 200 with orderCount 1, and how long after the 201.

Postgres publishes a backend's counters up to 10 s after its transactions (PGSTAT_IDLE_
INTERVAL), so each count is read 11 s after the activity it covers, and no probe runs inside
a counted window. Then two checks of what the wait bound means: N readers whose write never
comes, with `Prefer: wait=5` (when does each get its 503?), and readers that hang up at once
(do their waits still hold the threads, and for how long are other token GETs refused?).
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import requests

from benchmarks import processes, stats
from infra.harness.local_system import LocalSystem
from infra.harness.sandbox import PG_SERVER
from shopcore.events import tokens
from shopcore.platform import db, jsonio

STATS_DELAY = 11.0  # a backend's counters reach pg_stat_database within 10 s
CONNECT_BATCH = 200  # connections opened at once (the listen backlog is 2,048)
WAIT_HEADER = "wait=30"
NEXT_OUTBOX_ID = "SELECT last_value + CASE WHEN is_called THEN 1 ELSE 0 END FROM outbox_id_seq"
XACT_COMMIT = "SELECT xact_commit FROM pg_stat_database WHERE datname = %s"


@dataclass
class Answer:
    sent: float  # time.monotonic() when the request was written (or the connection failed)
    at: float | None = None  # when the answer arrived (None: none)
    status: int | None = None
    body: bytes = b""
    error: str | None = None


def _request(url: str, path: str, headers: dict[str, str]) -> bytes:
    host = urlsplit(url).netloc
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _one(
    host: str, port: int, request: bytes, timeout: float, hang_up: bool, sent: Callable[[], None]
) -> Answer:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
    except (OSError, TimeoutError) as exc:
        sent()
        return Answer(time.monotonic(), error=f"connect: {type(exc).__name__}")
    answer = Answer(time.monotonic())
    try:
        writer.write(request)
        await writer.drain()
        answer.sent = time.monotonic()
        sent()
        if hang_up:
            return answer
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        answer.status = int(head.split(b" ", 2)[1])
        length = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
        if length:
            answer.body = await asyncio.wait_for(reader.readexactly(int(length[1])), timeout)
        answer.at = time.monotonic()
    except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
        answer.error = type(exc).__name__
    finally:
        writer.close()
    return answer


class Readers:
    """`count` concurrent GETs, a connection each, on an event loop in a thread of its own."""

    def __init__(
        self, url: str, path: str, headers: dict[str, str], count: int, *,
        timeout: float = 60.0, hang_up: bool = False,
    ) -> None:  # fmt: skip
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.request = _request(url, path, headers)
        self.count, self.timeout, self.hang_up = count, timeout, hang_up
        self.answers: list[Answer] = []
        self.sent = 0
        self.all_sent = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def start(self) -> Readers:
        """Returns once every request has been written (or its connection failed)."""
        self.thread.start()
        self.all_sent.wait(120)
        return self

    def _one_sent(self) -> None:
        self.sent += 1
        if self.sent == self.count:
            self.all_sent.set()

    async def _run(self) -> None:
        tasks: list[asyncio.Task[Answer]] = []
        for first in range(0, self.count, CONNECT_BATCH):
            tasks += [
                asyncio.create_task(
                    _one(self.host, self.port, self.request, self.timeout, self.hang_up,
                         self._one_sent)
                )
                for _ in range(first, min(self.count, first + CONNECT_BATCH))
            ]  # fmt: skip
            await asyncio.sleep(0.05)
        self.answers = list(await asyncio.gather(*tasks))
        self.all_sent.set()  # also when some never got so far

    def join(self, timeout: float) -> list[Answer]:
        self.thread.join(timeout)
        return self.answers


# --- the query process, the read database -------------------------------------------------


def status_of(pid: int) -> dict[str, float]:
    """VmRSS (MiB) and Threads from /proc/<pid>/status."""
    found: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == "VmRSS":
            found["rssMiB"] = round(int(value.split()[0]) / 1024, 1)
        elif name == "Threads":
            found["threads"] = int(value)
    return found


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime, stime in clock ticks


def query_worker(system: LocalSystem) -> tuple[int, int]:
    """(edge parent, its one worker) of the query port."""
    parent = processes.services(system)["query API"]
    children = [p.pid for p in processes.tree(parent) if p.pid != parent]
    if len(children) != 1:
        raise RuntimeError(f"expected one query worker (QUERY_WORKERS=1), found {children}")
    return parent, children[0]


Count = tuple[float, dict[str, int]]  # (time.monotonic(), {database: xact_commit})


class Transactions:
    """Committed transactions of the sandbox's databases, as pg_stat_database publishes them
    (read from the `postgres` database, so reading them counts nowhere)."""

    def __init__(self, databases: dict[str, str]) -> None:
        self.databases = databases  # {"read": name, "write": name}
        self.conn = psycopg.connect(PG_SERVER, autocommit=True)
        self.idle = {name: 0.0 for name in databases}

    def now(self) -> Count:
        counts = {
            name: int(db.one(self.conn.execute(XACT_COMMIT, (database,)).fetchone())[0])
            for name, database in self.databases.items()
        }
        return time.monotonic(), counts

    @staticmethod
    def rates(a: Count, b: Count) -> dict[str, float]:
        return {name: (b[1][name] - a[1][name]) / (b[0] - a[0]) for name in a[1]}

    def beyond_idle(self, a: Count, b: Count) -> dict[str, int]:
        """Transactions between two counts beyond what the idle rates account for."""
        return {
            name: round(b[1][name] - a[1][name] - self.idle[name] * (b[0] - a[0])) for name in a[1]
        }

    def rates_beyond_idle(self, a: Count, b: Count) -> dict[str, float]:
        return {name: round(rate - self.idle[name], 2) for name, rate in self.rates(a, b).items()}


def _sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


@dataclass
class Held:
    """What one count of waiting readers measured."""

    count: int
    found: dict[str, Any] = field(default_factory=dict)


class Bench:
    def __init__(self, system: LocalSystem, pool: list[int], customer_base: int) -> None:
        self.system, self.pool = system, pool
        self.customer = customer_base
        self.parent, self.worker = query_worker(system)
        self.transactions = Transactions(
            {"read": system.stack.read_db, "write": system.stack.write_db}
        )
        self.session = requests.Session()

    def next_customer(self) -> int:
        self.customer += 1
        return self.customer

    def next_outbox_id(self) -> int:
        with psycopg.connect(self.system.stack.database_url, autocommit=True) as conn:
            return int(db.one(conn.execute(NEXT_OUTBOX_ID).fetchone())[0])

    def idle(self, seconds: float = 10.0) -> dict[str, Any]:
        """The databases' transactions/s with nobody waiting (after STATS_DELAY)."""
        time.sleep(STATS_DELAY)
        a = self.transactions.now()
        time.sleep(seconds)
        b = self.transactions.now()
        self.transactions.idle = Transactions.rates(a, b)
        return {
            "transactionsPerSecond": {k: round(v, 2) for k, v in self.transactions.idle.items()},
            "worker": status_of(self.worker),
            "parent": status_of(self.parent),
        }

    def sample_worker(self, until: float, into: list[dict[str, float]]) -> None:
        while time.monotonic() < until:
            into.append(status_of(self.worker))
            time.sleep(0.5)

    def ordinary_gets(self, seconds: float) -> dict[str, Any]:
        """Sequential GETs without a token (keep-alive), 20 ms apart: latency in ms."""
        url = f"{self.system.query_url}/api/analytics/products/{self.pool[0]}/sales"
        latencies, failed = [], 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            start = time.perf_counter()
            try:
                answer = self.session.get(url, timeout=10)
                if answer.status_code == 200:
                    latencies.append((time.perf_counter() - start) * 1000)
                else:
                    failed += 1
            except requests.RequestException:
                failed += 1
            time.sleep(0.02)
        return {**_spread(latencies), "failed": failed}

    def projected_token_get(self, into: dict[str, Any]) -> threading.Thread:
        """One GET whose token (outbox id 1, the first product) is long covered: it runs on a
        waiting thread too. Its status and latency (ms) land in `into` when it is answered."""

        def run() -> None:
            url = f"{self.system.query_url}/api/analytics/products/{self.pool[0]}/sales"
            start = time.perf_counter()
            try:
                answer = requests.get(
                    url, headers={"X-Consistency-Token": tokens.issue(1)}, timeout=45
                )
                into["status"] = answer.status_code
            except requests.RequestException as exc:
                into["status"] = type(exc).__name__
            into["ms"] = round((time.perf_counter() - start) * 1000, 1)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    def place_order(self, customer: int) -> tuple[float, str]:
        answer = self.session.post(
            f"{self.system.command_url}/api/orders",
            json={"customerId": customer, "items": [
                {"productId": self.pool[0], "quantity": 1, "price": 1}]},
            timeout=30,
        )  # fmt: skip
        accepted = time.monotonic()
        if answer.status_code != 201:
            raise RuntimeError(f"order refused: {answer.status_code} {answer.text[:200]}")
        return accepted, answer.headers["X-Consistency-Token"]

    def held(self, count: int) -> dict[str, Any]:
        """`count` readers wait for the next order, then it is placed (module doc, 1-3)."""
        customer = self.next_customer()
        token = tokens.issue(self.next_outbox_id())
        path = f"/api/analytics/customers/{customer}/lifetime-value"
        before = self.transactions.now()
        readers = Readers(
            self.system.query_url, path,
            {"X-Consistency-Token": token, "Prefer": WAIT_HEADER}, count,
        ).start()  # fmt: skip
        filled = time.monotonic()
        memory: list[dict[str, float]] = []
        sampler = threading.Thread(
            target=self.sample_worker, args=(filled + 20, memory), daemon=True
        )
        sampler.start()
        # probes first, then a counted window free of them
        time.sleep(1.0)
        projected: dict[str, Any] = {}
        token_probe = self.projected_token_get(projected)
        ordinary = self.ordinary_gets(3.0)
        _sleep_until(filled + 4 + STATS_DELAY)
        a, cpu_a = self.transactions.now(), cpu_seconds(self.worker)
        _sleep_until(filled + 20)
        b, cpu_b = self.transactions.now(), cpu_seconds(self.worker)
        accepted, issued = self.place_order(customer)
        answers = readers.join(60)
        token_probe.join(50)
        sampler.join(5)
        _sleep_until(accepted + STATS_DELAY)
        c = self.transactions.now()
        correct = 0
        after: list[float] = []  # the 200s, ms after the order's 201
        early: list[float] = []  # answered before the order, ms after being sent
        statuses: Counter[str] = Counter()
        for answer in answers:
            statuses[str(answer.status or answer.error)] += 1
            if answer.status == 200:
                body = jsonio.loads(answer.body)
                if body.get("customerId") == customer and body.get("orderCount") == 1:
                    correct += 1
            if answer.at is not None and answer.at < accepted:
                early.append((answer.at - answer.sent) * 1000)
            elif answer.status == 200 and answer.at is not None:
                after.append((answer.at - accepted) * 1000)
        return {
            "readers": count,
            "tokenMatchesOrder": issued == token,
            "fillSeconds": round(filled - before[0], 3),
            "answered": sum(1 for a_ in answers if a_.status is not None),
            "correct": correct,
            "statuses": dict(statuses),
            "okAfterOrderMs": _spread(after),
            "answeredBeforeOrderMs": _spread(early),
            "worker": {
                "rssMiBMax": max((m["rssMiB"] for m in memory), default=None),
                "threadsMax": max((m["threads"] for m in memory), default=None),
                "coresWhileWaiting": round((cpu_b - cpu_a) / (b[0] - a[0]), 4),
            },
            "transactions": {
                # fill: the readers' own checks as they register, and the probes' queries
                # (one per ordinary GET; the long-covered token needs none)
                "fillAndProbes": self.transactions.beyond_idle(before, a),
                "whileWaitingPerSecond": self.transactions.rates_beyond_idle(a, b),
                # the projector's batch, the watch's checks, each reader's query
                "wake": self.transactions.beyond_idle(b, c),
            },
            "ordinaryGetMs": ordinary,
            "projectedTokenGet": projected,
        }

    def expiring(self, count: int, wait: float) -> dict[str, Any]:
        """`count` readers whose event never comes, asking to wait `wait` s: when does each
        get its answer, counted from when its request was written?"""
        token = tokens.issue(self.next_outbox_id() + 1_000_000)
        path = f"/api/analytics/customers/{self.next_customer()}/lifetime-value"
        readers = Readers(
            self.system.query_url, path,
            {"X-Consistency-Token": token, "Prefer": f"wait={wait:g}"}, count, timeout=120,
        ).start()  # fmt: skip
        answers = readers.join(150)
        waited = [a.at - a.sent for a in answers if a.at is not None]
        statuses = Counter(str(a.status or a.error) for a in answers)
        rounds = Counter(round(w / wait) for w in waited)
        return {
            "readers": count,
            "askedSeconds": wait,
            "statuses": dict(statuses),
            "secondsToAnswer": {k: round(v / 1000, 2) for k, v in _spread(
                [w * 1000 for w in waited]).items() if k != "n"},
            "answeredWithinAskedPlus1s": sum(1 for w in waited if w <= wait + 1),
            "byMultipleOfAsked": {str(k): v for k, v in sorted(rounds.items())},
        }  # fmt: skip

    def abandoned(self, count: int) -> dict[str, Any]:
        """`count` readers ask to wait 30 s for a write that never comes and hang up at once;
        then GETs whose token is long covered, one every 0.5 s, until one is answered 200."""
        token = tokens.issue(self.next_outbox_id() + 1_000_000)
        path = f"/api/analytics/customers/{self.next_customer()}/lifetime-value"
        Readers(
            self.system.query_url, path,
            {"X-Consistency-Token": token, "Prefer": WAIT_HEADER}, count, hang_up=True,
        ).start().join(30)  # fmt: skip
        hung_up = time.monotonic()
        ordinary = self.ordinary_gets(1.0)
        tries: Counter[str] = Counter()
        while time.monotonic() < hung_up + 45:
            probe: dict[str, Any] = {}
            self.projected_token_get(probe).join(50)
            tries[str(probe.get("status"))] += 1
            if probe.get("status") == 200:
                break
            time.sleep(0.5)
        return {
            "readersHungUp": count,
            "ordinaryGetMs": ordinary,
            "coveredTokenGets": dict(tries),
            "secondsUntilCoveredTokenGetAnswered200": round(time.monotonic() - hung_up, 1),
        }


def stopped_while_waiting(system: LocalSystem, count: int, hang_up: bool) -> dict[str, Any]:
    """`count` readers wait (Prefer: wait=30, a write that never comes; connected, or hung up
    at once), then the whole system is stopped (SIGTERM): how long the stop takes, and what
    the readers got."""
    readers = Readers(
        system.query_url, "/api/analytics/customers/1/lifetime-value",
        {"X-Consistency-Token": tokens.issue(10**12), "Prefer": WAIT_HEADER}, count,
        hang_up=hang_up,
    ).start()  # fmt: skip
    time.sleep(1.0)
    started = time.monotonic()
    system.stop()
    stopped = time.monotonic() - started
    answers = readers.join(60)
    return {
        "readers": count,
        "hungUp": hang_up,
        "stopSeconds": round(stopped, 1),
        "outcomes": dict(Counter(str(a.status or a.error) for a in answers)),
    }


def _spread(values: list[float]) -> dict[str, Any]:
    def pct(p: float) -> float | None:
        value = stats.percentile(values, p)
        return None if value is None else round(value, 2)

    return {"n": len(values), "p50": pct(50), "p90": pct(90), "p99": pct(99), "max": pct(100)}


def run(system: LocalSystem, pool: list[int], counts: list[int], *, customer_base: int,
        expiring: int, abandoned: int, say: Any = print) -> dict[str, Any]:  # fmt: skip
    bench = Bench(system, pool, customer_base)
    found: dict[str, Any] = {"worker": bench.worker, "idle": bench.idle()}
    say(f"waiting readers: idle {found['idle']}")
    found["held"] = []
    for count in counts:
        held = bench.held(count)
        found["held"].append(held)
        say(f"waiting readers: {count}: {jsonio.dumps(held)}")
    if expiring:
        found["expiring"] = bench.expiring(expiring, 5.0)
        say(f"waiting readers, never projected: {jsonio.dumps(found['expiring'])}")
    if abandoned:
        found["abandoned"] = bench.abandoned(abandoned)
        say(f"waiting readers, hung up: {jsonio.dumps(found['abandoned'])}")
    return found
