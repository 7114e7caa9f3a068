"""Slow clients (issue 9): ordinary load without and with 1,000 connections that trickle their
headers or bodies, in the same run.

The slow clients run in a process of their own (`python -m benchmarks.slow_clients SPEC`):
one asyncio event loop, one Protocol and one timer per socket, so 1,000 sockets writing a byte
a second cost a few percent of a core and never share this process's GIL with the sequential
prober. Each port gets `clients / 2` connections, half of each kind:

- headers: a request line, `Host` and the start of a header, then one more byte of that header
  every `interval` seconds (the headers never end);
- body: complete headers declaring a 1,000-byte JSON body (a POST to /api/products on the
  command port; a GET with a body on the query port, whose routes are all GETs), then one body
  byte every `interval` seconds (the body never ends in time).

Each connection starts at a random point of its interval, so the writes are spread. A slow
client hangs up once answered; one that is answered or closed is replaced by a new one (no
sooner than `interval` after it connected) until the attack stops, so `clients` connections
are open throughout. The first `clients` connections ("the first wave") are followed to their
end: the status they were answered (408 from the edge, after REQUEST_HEADER_TIMEOUT_SECONDS /
REQUEST_BODY_TIMEOUT_SECONDS) and how long after their first byte; or closed without an
answer; or still waiting when the attack ends (it waits for them until `resolve_seconds`
after it began).

The ordinary load (`ordinary`), run once without and once with the slow clients: wrk's mixed
analytics GETs on the query port for `seconds`, then wrk's product POSTs on the command port
for `seconds` (both at c32, keep-alive), and throughout both a sequential prober in a thread
of this process that opens a fresh connection for each request, cycling GET /health on the
query port, GET /health on the command port and a product POST, 5 s timeout each: what a new
client sees (a request that fails or times out counts as infinitely slow in its percentiles).
Every wait is bounded: wrk runs for its duration (its figures are the requests answered in
it: a stalled port shows as a rate near 0, its latency percentiles then None), the prober's
requests time out, and the slow-client process has a lifetime.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import math
import os
import random
import resource
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from benchmarks import http_load, processes
from benchmarks.stats import percentile
from infra.harness.local_system import LocalSystem

BODY_BYTES = 1000  # what a body trickler declares: at a byte a second it never ends in time
PROBE_TIMEOUT = 5.0


# --- the file-descriptor limit ------------------------------------------------------------------


def raise_open_files(wanted: int = 65536) -> dict[str, int]:
    """Raise this process's soft RLIMIT_NOFILE towards `wanted` (at most the hard limit).
    Children started afterwards (wrk, the slow clients, `python -m infra.local` and its
    HTTP servers) inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    now = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return {"softBefore": soft, "soft": now, "hard": hard}


def open_files_limit(pid: int) -> int | None:
    """The soft 'Max open files' of process `pid` (None if unreadable; -1 if unlimited)."""
    try:
        for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                soft = line.split()[3]
                return -1 if soft == "unlimited" else int(soft)
    except (OSError, ValueError, IndexError):
        return None
    return None


def open_files(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def server_processes(system: LocalSystem) -> dict[str, list[int]]:
    """{"command API": [pids], "query API": [pids]}: each HTTP server and its workers."""
    found = processes.services(system)
    return {
        name: [p.pid for p in processes.tree(found[name])]
        for name in ("command API", "query API")
        if name in found
    }


# --- the slow clients (run in their own process) ------------------------------------------------


@dataclass
class Group:
    """`count` slow clients of one kind against one port."""

    name: str
    host: str
    port: int
    kind: str  # "headers" or "body"
    method: str
    path: str
    count: int

    def opening(self) -> bytes:
        head = f"{self.method} {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        if self.kind == "headers":
            return (head + "X-Slow: a").encode()
        return (
            head + f"Content-Type: application/json\r\nContent-Length: {BODY_BYTES}\r\n\r\n" + "["
        ).encode()

    def trickle(self) -> bytes:
        return b"a" if self.kind == "headers" else b" "


def groups(command_url: str, query_url: str, clients: int) -> list[Group]:
    """`clients` split evenly: per port, half trickle headers and half a body."""
    quarter, rest = divmod(clients, 4)
    sizes = [quarter + (1 if k < rest else 0) for k in range(4)]
    command, query = urlsplit(command_url), urlsplit(query_url)
    assert command.hostname and command.port and query.hostname and query.port
    return [
        Group(
            "command headers",
            command.hostname,
            command.port,
            "headers",
            "POST",
            "/api/products",
            sizes[0],
        ),
        Group(
            "command body",
            command.hostname,
            command.port,
            "body",
            "POST",
            "/api/products",
            sizes[1],
        ),
        Group(
            "query headers",
            query.hostname,
            query.port,
            "headers",
            "GET",
            "/api/analytics/sync-status",
            sizes[2],
        ),
        Group(
            "query body",
            query.hostname,
            query.port,
            "body",
            "GET",
            "/api/analytics/sync-status",
            sizes[3],
        ),
    ]


@dataclass
class Outcome:
    group: str
    first_wave: bool
    connected_at: float | None = None
    answered_at: float | None = None
    closed_at: float | None = None
    status: int | None = None
    error: str | None = None
    closed_by_us: bool = False
    bytes_sent: int = 0


class SlowClient(asyncio.Protocol):
    def __init__(self, attack: Attack, group: Group, outcome: Outcome) -> None:
        self.attack, self.group, self.outcome = attack, group, outcome
        self.loop = attack.loop
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.received = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.outcome.connected_at = self.loop.time()
        self.attack.track(self)
        opening = self.group.opening()
        self.transport.write(opening)  # type: ignore[union-attr]
        self.outcome.bytes_sent += len(opening)
        self.timer = self.loop.call_later(random.uniform(0, self.attack.interval), self.tick)

    def tick(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(self.group.trickle())
        self.outcome.bytes_sent += 1
        self.timer = self.loop.call_later(self.attack.interval, self.tick)

    def data_received(self, data: bytes) -> None:
        if self.outcome.status is not None:
            return
        self.received += data
        if b"\r\n" in self.received:
            line = self.received.split(b"\r\n", 1)[0].split()
            try:
                self.outcome.status = int(line[1])
            except (IndexError, ValueError):
                self.outcome.status = -1
            self.outcome.answered_at = self.loop.time()
            self.attack.answered(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.transport = None
        if exc is not None and self.outcome.error is None and not self.outcome.closed_by_us:
            self.outcome.error = type(exc).__name__
        self.outcome.closed_at = self.loop.time()
        self.attack.lost(self)

    def close(self) -> None:
        self.outcome.closed_by_us = True
        if self.transport is not None:
            self.transport.abort()


class Attack:
    def __init__(self, spec: list[Group], interval: float, ramp: float) -> None:
        self.spec, self.interval, self.ramp = spec, interval, ramp
        self.loop = asyncio.get_running_loop()
        self.outcomes: list[Outcome] = []
        self.open: set[SlowClient] = set()
        self.peak_open = 0
        self.connect_errors: Counter[str] = Counter()
        self.stopping = False
        self.started = self.loop.time()
        self.changed = asyncio.Event()

    async def connect(self, group: Group, first_wave: bool) -> None:
        outcome = Outcome(group.name, first_wave)
        self.outcomes.append(outcome)
        try:
            await asyncio.wait_for(
                self.loop.create_connection(
                    lambda: SlowClient(self, group, outcome), group.host, group.port
                ),
                timeout=5,
            )
        except (OSError, TimeoutError) as exc:
            outcome.error = f"connect: {type(exc).__name__}"
            outcome.closed_at = self.loop.time()
            self.connect_errors[type(exc).__name__] += 1
            self.changed.set()
            if not self.stopping:  # try again, not in a tight loop
                self.loop.call_later(1.0, self.replace, group)

    def replace(self, group: Group) -> None:
        if not self.stopping:
            self.loop.create_task(self.connect(group, first_wave=False))

    def answered(self, client: SlowClient) -> None:
        """A slow client's request is over once answered: hang up (it is replaced)."""
        self.changed.set()
        if client.transport is not None:
            client.transport.close()

    def lost(self, client: SlowClient) -> None:
        """Replace it, but no sooner than `interval` after it connected: a server that answers
        slow clients at once must not turn them into a storm of connections."""
        self.open.discard(client)
        self.changed.set()
        if not self.stopping:
            lived = self.loop.time() - (client.outcome.connected_at or self.loop.time())
            self.loop.call_later(max(0.0, self.interval - lived), self.replace, client.group)

    def track(self, client: SlowClient) -> None:
        self.open.add(client)
        self.peak_open = max(self.peak_open, len(self.open))

    async def first_wave(self) -> float:
        """Open every group's connections, spread over `ramp` seconds; seconds it took."""
        order = [g for g in self.spec for _ in range(g.count)]
        random.shuffle(order)
        tasks = []
        for k, group in enumerate(order):
            tasks.append(self.loop.create_task(self.connect(group, first_wave=True)))
            if self.ramp and k % 50 == 49:
                await asyncio.sleep(self.ramp * 50 / max(1, len(order)))
        await asyncio.gather(*tasks)
        return self.loop.time() - self.started

    def first_wave_resolved(self) -> bool:
        return all(o.closed_at is not None for o in self.outcomes if o.first_wave)

    def close_all(self) -> None:
        self.stopping = True
        for client in list(self.open):
            client.close()

    def summary(self, ended: float) -> dict[str, Any]:
        def describe(outcomes: list[Outcome]) -> dict[str, Any]:
            statuses = Counter(str(o.status) for o in outcomes if o.status is not None)
            answered = [o for o in outcomes if o.status is not None and o.connected_at]
            seconds = [o.answered_at - o.connected_at for o in answered]  # type: ignore[operator]
            timed_out = [
                o.answered_at - o.connected_at  # type: ignore[operator]
                for o in answered
                if o.status == 408
            ]
            return {
                "connections": len(outcomes),
                "statuses": dict(statuses),
                "answered408": statuses.get("408", 0),
                "secondsTo408": _spread(timed_out),
                "secondsToAnswer": _spread(seconds),
                "closedWithoutAnswer": sum(
                    1
                    for o in outcomes
                    if o.status is None
                    and o.closed_at is not None
                    and not o.closed_by_us
                    and o.connected_at is not None
                ),
                "connectErrors": sum(1 for o in outcomes if o.connected_at is None),
                "errors": dict(Counter(o.error for o in outcomes if o.error)),
                "unansweredAtEnd": sum(1 for o in outcomes if o.status is None and o.closed_by_us),
                "bytesSent": sum(o.bytes_sent for o in outcomes),
            }

        first = [o for o in self.outcomes if o.first_wave]
        return {
            "groups": [
                {**g.__dict__, "firstWave": describe([o for o in first if o.group == g.name])}
                for g in self.spec
            ],
            "firstWave": describe(first),
            "all": describe(self.outcomes),
            "peakOpen": self.peak_open,
            "seconds": round(ended - self.started, 3),
            "interval": self.interval,
        }


def _spread(values: list[float]) -> dict[str, float | None]:
    def pct(p: float) -> float | None:
        value = percentile(values, p)
        return None if value is None else round(value, 3)

    return {"n": len(values), "min": pct(0), "p50": pct(50), "p99": pct(99), "max": pct(100)}


async def _attack(
    spec: list[Group], interval: float, ramp: float, resolve_seconds: float, lifetime: float
) -> dict[str, Any]:
    attack = Attack(spec, interval, ramp)
    loop = attack.loop
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, stop.set)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    ramp_seconds = await attack.first_wave()
    print(
        "READY " + json.dumps({"rampSeconds": round(ramp_seconds, 3), "open": len(attack.open)}),
        flush=True,
    )
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), lifetime)
    stopped = loop.time()
    # no new slow clients from now; give the first wave until `resolve_seconds` after the
    # attack began to be answered (the edge's deadlines), then hang up on everyone
    attack.stopping = True
    deadline = attack.started + resolve_seconds
    while not attack.first_wave_resolved() and loop.time() < deadline:
        attack.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(attack.changed.wait(), max(0.01, deadline - loop.time()))
    ended = loop.time()
    attack.close_all()
    await asyncio.sleep(0.1)
    result = attack.summary(ended)
    result["stopSignalAfterSeconds"] = round(stopped - attack.started, 3)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.slow_clients")
    parser.add_argument("spec", help="JSON list of groups (see Group)")
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--ramp", type=float, default=1.0)
    parser.add_argument("--resolve-seconds", type=float, default=25.0)
    parser.add_argument("--lifetime", type=float, default=300.0)
    args = parser.parse_args(argv)
    raise_open_files()
    spec = [Group(**g) for g in json.loads(args.spec)]
    result = asyncio.run(
        _attack(spec, args.interval, args.ramp, args.resolve_seconds, args.lifetime)
    )
    print("RESULT " + json.dumps(result), flush=True)
    return 0


# --- driving it from the suite ------------------------------------------------------------------


class SlowClients:
    """The slow-client process, started and stopped around a block of ordinary load."""

    def __init__(
        self, spec: list[Group], *, interval: float, resolve_seconds: float, lifetime: float
    ) -> None:
        self.spec = spec
        self.argv = [
            sys.executable,
            "-m",
            "benchmarks.slow_clients",
            json.dumps([g.__dict__ for g in spec]),
            "--interval",
            str(interval),
            "--resolve-seconds",
            str(resolve_seconds),
            "--lifetime",
            str(lifetime),
        ]
        self.resolve_seconds, self.lifetime = resolve_seconds, lifetime
        self.proc: subprocess.Popen[str] | None = None
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.cpu_seconds = 0.0

    def start(self, timeout: float = 60) -> dict[str, Any]:
        self.proc = subprocess.Popen(
            self.argv, cwd=Path(__file__).parent.parent, stdout=subprocess.PIPE, text=True
        )
        threading.Thread(target=self._read, daemon=True).start()
        if not self.ready.wait(timeout):
            self.kill()
            raise RuntimeError(f"the slow clients were not connected in {timeout:.0f} s")
        line = next(x for x in self.lines if x.startswith("READY "))
        return json.loads(line.removeprefix("READY "))

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.strip())
            if line.startswith("READY "):
                self.ready.set()

    def stop(self) -> dict[str, Any]:
        """Stop the attack; wait (bounded) for its summary."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGUSR1)
        try:
            _pid, status, usage = _wait4(self.proc, self.resolve_seconds + 30)
        except TimeoutError:
            self.kill()
            raise RuntimeError("the slow-client process did not stop") from None
        self.cpu_seconds = usage.ru_utime + usage.ru_stime
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(x.startswith("RESULT ") for x in self.lines):
            time.sleep(0.05)
        found = [x for x in self.lines if x.startswith("RESULT ")]
        if not found:
            raise RuntimeError(f"the slow-client process printed no result (status {status})")
        return json.loads(found[-1].removeprefix("RESULT "))

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _wait4(proc: subprocess.Popen[str], timeout: float) -> tuple[int, int, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return pid, status, usage
        time.sleep(0.05)
    raise TimeoutError


@dataclass
class Prober:
    """Sequential requests on fresh connections, in a thread: GET /health on each port and a
    product POST in turn, `pause` seconds apart."""

    command_url: str
    query_url: str
    pause: float = 0.05
    results: list[tuple[str, float, int | None, str | None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="prober")
        self._counter = 0

    def _one(self, kind: str, url: str, method: str, body: bytes | None) -> None:
        parts = urlsplit(url)
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        conn = http.client.HTTPConnection(parts.netloc, timeout=PROBE_TIMEOUT)
        try:
            headers = {"Content-Type": "application/json"} if body else {}
            conn.request(method, parts.path, body=body, headers=headers)
            answer = conn.getresponse()
            answer.read()
            status = answer.status
        except (OSError, http.client.HTTPException) as exc:
            error = type(exc).__name__
        finally:
            conn.close()
        self.results.append((kind, time.perf_counter() - started, status, error))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._counter += 1
            body = json.dumps(
                {
                    "name": f"slow-probe {os.getpid()}-{self._counter}",
                    "category": "bench-probe",
                    "price": 1,
                    "stock": 1000,
                }
            )
            for kind, url, method, data in (
                ("query /health", self.query_url + "/health", "GET", None),
                ("command /health", self.command_url + "/health", "GET", None),
                ("command POST", self.command_url + "/api/products", "POST", body.encode()),
            ):
                if self._stop.is_set():
                    break
                self._one(kind, url, method, data)
                time.sleep(self.pause)

    def start(self) -> Prober:
        self._thread.start()
        return self

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join(PROBE_TIMEOUT * 2 + 5)
        return summarize_probes(self.results)


def summarize_probes(results: list[tuple[str, float, int | None, str | None]]) -> dict[str, Any]:
    """Per kind and in all: percentiles in ms over every request, a failed one (no 2xx, or no
    answer within PROBE_TIMEOUT) counting as infinitely slow, so a tail with failures shows
    as None; `okP50Ms`/`okP99Ms` are over the answered ones alone."""

    def describe(rows: list[tuple[str, float, int | None, str | None]]) -> dict[str, Any]:
        ok = [
            seconds * 1000
            for _k, seconds, status, _e in rows
            if status is not None and 200 <= status < 300
        ]
        every = ok + [math.inf] * (len(rows) - len(ok))

        def pct(values: list[float], p: float) -> float | None:
            value = percentile(values, p)  # between two infinities: nan
            return None if value is None or not math.isfinite(value) else round(value, 2)

        return {
            "requests": len(rows),
            "ok": len(ok),
            "failed": len(rows) - len(ok),
            "errors": dict(
                Counter(e or str(s) for _k, _t, s, e in rows if s is None or not 200 <= s < 300)
            ),
            "p50Ms": pct(every, 50),
            "p99Ms": pct(every, 99),
            "maxMs": pct(every, 100),
            "okP50Ms": pct(ok, 50),
            "okP99Ms": pct(ok, 99),
            "okMaxMs": pct(ok, 100),
        }

    kinds = sorted({r[0] for r in results})
    return {
        "all": describe(results),
        **{k: describe([r for r in results if r[0] == k]) for k in kinds},
    }


def ordinary(
    system: LocalSystem, analytics_env: dict[str, str], seconds: int, connections: int, seed: int
) -> dict[str, Any]:
    """wrk's analytics GETs (query port), then wrk's product POSTs (command port), `seconds`
    each, with the prober running throughout."""
    prober = Prober(system.command_url, system.query_url).start()
    try:
        analytics = http_load.run(
            system.query_url + "/",
            "analytics",
            seconds=seconds,
            connections=connections,
            seed=seed,
            env=analytics_env,
        )
        products = http_load.run(
            system.command_url + "/",
            "products",
            seconds=seconds,
            connections=connections,
            seed=seed,
            env={"BENCH_CATEGORIES": "20"},
        )
    finally:
        probes = prober.stop()
    return {
        "analytics": _no_empty_latency(analytics),
        "products": _no_empty_latency(products),
        "probes": probes,
    }


def recovery(system: LocalSystem, timeout: float = 60) -> dict[str, Any]:
    """Once the slow clients are gone: seconds until both ports answer GET /health."""
    started = time.monotonic()
    pending = {"command": system.command_url, "query": system.query_url}
    seconds: dict[str, float | None] = {name: None for name in pending}
    while pending and time.monotonic() - started < timeout:
        for name, url in list(pending.items()):
            parts = urlsplit(url)
            conn = http.client.HTTPConnection(parts.netloc, timeout=PROBE_TIMEOUT)
            try:
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    seconds[name] = round(time.monotonic() - started, 3)
                    del pending[name]
            except (OSError, http.client.HTTPException):
                pass
            finally:
                conn.close()
        if pending:
            time.sleep(0.2)
    return {"secondsToHealthy": seconds, "healthy": not pending}


def _no_empty_latency(result: dict[str, Any]) -> dict[str, Any]:
    """wrk reports percentiles of 0 when no request completed: they are no figures."""
    if not result.get("requests"):
        for key in ("p50Ms", "p90Ms", "p95Ms", "p99Ms", "p999Ms", "maxMs", "meanMs"):
            result[key] = None
        result["spectrumMs"] = []
    return result


if __name__ == "__main__":
    sys.exit(main())
