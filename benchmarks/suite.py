"""One run of the suite, in a sandbox of its own: the ceilings, then the system's phases.

Order: ceilings (before the system starts, so nothing else of ours runs) -> start the system
-> warm-up -> product creation (its products become the order pool) -> settle -> freshness at
idle -> order ingest burst with freshness sampled alongside -> convergence -> analytics GETs
-> slow clients (ordinary load without and with 1,000 slow connections;
benchmarks/slow_clients.py; exact again afterwards) -> backlogs -> final exactness check ->
peak memory. A phase that fails is recorded in `failures` and the run goes on where it can.
"""

from __future__ import annotations

import contextlib
import os
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg

from benchmarks import (
    backlog,
    ceilings,
    convergence,
    cpu,
    freshness,
    http_load,
    memory,
    slow_clients,
)
from benchmarks.monitor import Timeline
from infra.harness import sandbox
from infra.harness.local_system import LocalSystem
from infra.local import http_server

# customer id ranges, far apart: ingest uses 1..customers
IDLE_CUSTOMERS = 900_000_000_000
LOAD_CUSTOMERS = 910_000_000_000
BACKLOG_CUSTOMERS = 500_000_000_000


@dataclass(frozen=True)
class Scale:
    products: int = 5_000
    orders: int = 5_000
    pool: int = 1_000  # products the orders choose from (as pgbench's script: 1,000)
    customers: int = 1_000
    idle_samples: int = 100
    load_samplers: int = 2  # freshness samplers alongside the ingest burst, each sequential
    backlogs: tuple[int, ...] = (10_000, 30_000, 100_000)
    amqp_messages: int = 50_000
    seconds: int = 10  # pgbench, each hello world, analytics
    concurrency: int = 32
    pgbench_clients: int = 32
    convergence_timeout: float = 120.0
    backlog_timeout: float = 900.0
    slow_clients: int = 1_000  # connections trickling headers or bodies (issue 9)

    @classmethod
    def quick(cls) -> Scale:
        """The big numbers scaled down 10x, for a smoke run."""
        return cls(
            products=500,
            orders=500,
            pool=100,
            customers=100,
            idle_samples=20,
            backlogs=(1_000, 3_000, 10_000),
            amqp_messages=5_000,
            seconds=3,
            convergence_timeout=60.0,
            backlog_timeout=300.0,
            slow_clients=200,
        )


Progress = Callable[[str], None]


class Run:
    def __init__(self, index: int, scale: Scale, env: dict[str, str], log_dir: Path,
                 progress: Progress) -> None:  # fmt: skip
        self.index, self.scale, self.env = index, scale, env
        self.log_dir, self.progress = log_dir, progress
        self.result: dict[str, Any] = {
            "run": index,
            "scale": asdict(scale),
            "failures": [],
            "phases": [],
            "cpu": {},
        }
        self.origin = time.monotonic()
        self.origin_wall = time.time()
        self.probe: cpu.CpuProbe | None = None

    # --- bookkeeping ------------------------------------------------------------------------

    def say(self, text: str) -> None:
        self.progress(f"[run {self.index}] {text}")

    def fail(self, what: str, exc: BaseException | str) -> None:
        message = f"{what}: {exc}" if isinstance(exc, str) else f"{what}: {exc!r}"
        self.result["failures"].append(message)
        self.say(f"FAILURE {message}")
        if not isinstance(exc, str):
            self.result.setdefault("tracebacks", []).append(traceback.format_exc()[-3000:])

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[dict[str, float]]:
        """Times the block and records the CPU used in it; the block may put CPU seconds
        measured apart into the yielded dict (e.g. {"wrk": 1.2})."""
        extra: dict[str, float] = {}
        before = self.probe.snapshot() if self.probe else None
        start = time.monotonic()
        try:
            yield extra
        finally:
            end = time.monotonic()
            self.result["phases"].append(
                {"name": name, "start": round(start - self.origin, 3),
                 "end": round(end - self.origin, 3)}
            )  # fmt: skip
            if self.probe and before is not None:
                self.result["cpu"][name] = cpu.usage(before, self.probe.snapshot(), **extra)

    @contextlib.contextmanager
    def guarded(self, what: str) -> Iterator[None]:
        try:
            yield
        except Exception as exc:
            self.fail(what, exc)

    # --- the run ----------------------------------------------------------------------------

    def execute(self) -> dict[str, Any]:
        stack = sandbox.create("bench")
        self.result["sandbox"] = stack.name
        try:
            self.probe = cpu.CpuProbe(None, [f"{stack.name}_pgbench"])
            self.ceilings(stack)
            system = LocalSystem(stack, self.log_dir / f"system-run{self.index}.log", **self.env)
            system.start(timeout=90)
            try:
                self.probe = cpu.CpuProbe(system, [stack.write_db, stack.read_db])
                self.system_phases(system)
            finally:
                system.stop()
        finally:
            sandbox.drop(stack)
        return self.result

    def http_settings(self) -> tuple[int, int]:
        """The hello worlds run as the query port runs: the analytics target is measured
        against the hello-world function "under the same HTTP stack"."""
        return http_server.sizing("query", {**os.environ, **self.env})

    def ceilings(self, stack: sandbox.Stack) -> None:
        scale = self.scale
        found: dict[str, Any] = {}
        self.result["ceilings"] = found
        with self.guarded("ceiling pgbench"), self.phase("ceiling pgbench") as extra:
            found["pgbench"] = ceilings.pgbench(
                sandbox.PG_SERVER, f"{stack.name}_pgbench", scale.pgbench_clients, scale.seconds
            )
            extra["pgbench"] = found["pgbench"]["pgbenchCpuSeconds"]
            extra["postgres (pgbench's backends)"] = found["pgbench"]["postgresCpuSeconds"]
            self.say(f"pgbench order transaction: {found['pgbench']['tps']:,.0f} tps")
        with self.guarded("ceiling rabbitmq"), self.phase("ceiling rabbitmq"):
            found["rabbitmq"] = ceilings.rabbitmq(stack.broker_url, scale.amqp_messages)
            self.say(
                f"rabbitmq publish {found['rabbitmq']['publish']['perSecond']:,.0f} msg/s, "
                f"consume {found['rabbitmq']['consume']['perSecond']:,.0f} msg/s"
            )
        workers, threads = self.http_settings()
        for kind, key in (("wsgi", "helloWsgi"), ("function", "helloFunction")):
            with self.guarded(f"ceiling hello {kind}"), self.phase(f"ceiling hello {kind}") as x:
                found[key] = ceilings.hello(
                    kind, workers, threads, scale.seconds, scale.concurrency
                )
                x["wrk"] = found[key]["wrkCpuSeconds"]
                x["hello-world server"] = found[key]["serverCpuSeconds"]
                self.say(f"hello world ({kind}): {found[key]['perSecond']:,.0f} req/s")

    def system_phases(self, system: LocalSystem) -> None:
        scale, stack = self.scale, system.stack
        timeline = Timeline(stack.database_url, stack.read_database_url, self.origin).start()
        try:
            with self.phase("warm-up"):
                http_load.run(
                    system.command_url + "/", "products", total=2 * scale.concurrency,
                    connections=scale.concurrency, success=201,
                )  # fmt: skip
            pool = self.products(system)
            with self.guarded("settle after products"):
                settled = convergence.wait_exact(stack, time.monotonic(), scale.convergence_timeout)
                self.result["productSettle"] = settled
                if not settled["exact"]:
                    self.fail("settle after products", "read models not exact")
            with self.guarded("freshness at idle"), self.phase("freshness at idle"):
                sampler = freshness.Sampler(
                    system.command_url, system.query_url, pool, IDLE_CUSTOMERS, 0.002
                )
                sampler.sequential(scale.idle_samples)
                idle = freshness.summarize(sampler.samples, sampler.errors, self.origin_wall)
                self.result.setdefault("freshness", {})["idle"] = idle
                self.say(f"freshness at idle: p50 {idle['p50Ms']} ms, p99 {idle['p99Ms']} ms")
            with self.guarded("order ingest"):
                self.ingest(system, pool)
            with self.guarded("analytics"):
                self.analytics(system, pool)
            with self.guarded("slow clients"):
                self.slow_clients(system, pool)
            with self.guarded("backlog"):
                self.backlogs(system, pool)
            with self.guarded("memory"):
                self.result["memory"] = memory.peaks(system)
        finally:
            timeline.stop()
            self.result["timeline"] = timeline.to_json()

    def products(self, system: LocalSystem) -> list[int]:
        scale = self.scale
        with self.phase("product creation") as extra:
            result = http_load.run(
                system.command_url + "/", "products", total=scale.products,
                connections=scale.concurrency, success=201,
                env={"BENCH_CATEGORIES": "20"}, seed=self.index,
            )  # fmt: skip
            extra["wrk"] = result["wrkCpuSeconds"]
        self.result["productCreation"] = result
        if not result["complete"]:
            self.fail("product creation", f"incomplete: {result['requests']} answered")
        self.say(
            f"products: {result['perSecond']:,.0f}/s, p50 {result['p50Ms']} ms, "
            f"p99 {result['p99Ms']} ms, failed {result['failed']}"
        )
        with psycopg.connect(system.stack.database_url) as conn:
            rows = conn.execute("SELECT id FROM products ORDER BY id LIMIT %s", (scale.pool,))
            pool = [r[0] for r in rows]
        if len(pool) < 15:
            raise RuntimeError(f"only {len(pool)} products were created; orders need 15")
        return pool

    def ingest(self, system: LocalSystem, pool: list[int]) -> None:
        scale = self.scale
        samplers = [
            freshness.Sampler(
                system.command_url, system.query_url, pool, LOAD_CUSTOMERS + k * 10**8, 0.005
            )
            for k in range(scale.load_samplers)
        ]
        with self.phase("order ingest") as extra:
            for sampler in samplers:
                sampler.start()
            try:
                result = http_load.run(
                    system.command_url + "/", "orders", total=scale.orders,
                    connections=scale.concurrency, success=201, seed=self.index,
                    env={
                        "BENCH_PRODUCTS": ",".join(map(str, pool)),
                        "BENCH_CUSTOMERS": str(scale.customers),
                    },
                )  # fmt: skip
            finally:
                for sampler in samplers:
                    sampler.stop()
            extra["wrk"] = result["wrkCpuSeconds"]
        self.result["orderIngest"] = result
        if not result["complete"]:
            self.fail("order ingest", f"incomplete: {result['requests']} answered")
        self.say(
            f"orders: {result['perSecond']:,.0f}/s, p50 {result['p50Ms']} ms, "
            f"p99 {result['p99Ms']} ms, non-201 {result['failed']}"
        )
        load = freshness.summarize(
            sorted((s for sampler in samplers for s in sampler.samples), key=lambda s: s.at),
            [e for sampler in samplers for e in sampler.errors],
            self.origin_wall,
        )
        self.result.setdefault("freshness", {})["underLoad"] = load
        self.say(f"freshness under load: p50 {load['p50Ms']} ms, p99 {load['p99Ms']} ms "
                 f"({load['samples']} samples)")  # fmt: skip
        last = max(
            [result["monotonicLastResponse"] or time.monotonic()]
            + [s.last_accepted for s in samplers if s.last_accepted is not None]
        )
        with self.phase("convergence"):
            converged = convergence.wait_exact(system.stack, last, scale.convergence_timeout)
        self.result["convergence"] = converged
        if converged["exact"]:
            self.say(f"convergence: {converged['seconds']} s, exact")
        else:
            self.fail(
                "convergence",
                f"{converged['differences']} differences after "
                f"{scale.convergence_timeout:.0f} s: {converged['differenceSample'][:3]}",
            )

    def analytics_env(self, system: LocalSystem, pool: list[int]) -> dict[str, str]:
        """What lua/analytics.lua asks for: ids and names the read models know."""
        with psycopg.connect(system.stack.read_database_url) as conn:
            categories = [
                r[0]
                for r in conn.execute("SELECT category_name FROM category_metrics_view ORDER BY 1")
            ]
            customers = [r[0] for r in conn.execute(
                "SELECT customer_id FROM customer_ltv_view WHERE customer_id <= %s "
                "ORDER BY 1 LIMIT 1000", (self.scale.customers,))]  # fmt: skip
        return {
            "BENCH_PRODUCTS": ",".join(map(str, pool)),
            "BENCH_CATEGORIES": ",".join(categories),
            "BENCH_CUSTOMERS": ",".join(map(str, customers)),
            "BENCH_MIX": "25,25,25,25",
        }

    def analytics(self, system: LocalSystem, pool: list[int]) -> None:
        scale = self.scale
        env = self.analytics_env(system, pool)
        with self.phase("analytics") as extra:
            result = http_load.run(
                system.query_url + "/", "analytics", seconds=scale.seconds,
                connections=scale.concurrency, seed=self.index, env=env,
            )  # fmt: skip
            extra["wrk"] = result["wrkCpuSeconds"]
        result["mix"] = {"products": 25, "categories": 25, "customers": 25, "syncStatus": 25}
        self.result["analytics"] = result
        self.say(
            f"analytics: {result['perSecond']:,.0f} req/s, p50 {result['p50Ms']} ms, "
            f"p99 {result['p99Ms']} ms, failed {result['failed']}"
        )

    def backlogs(self, system: LocalSystem, pool: list[int]) -> None:
        scale = self.scale
        sizes: list[dict[str, Any]] = []
        self.result["backlog"] = {"sizes": sizes}
        for i, count in enumerate(scale.backlogs):
            self.say(f"backlog of {count:,} events ...")
            one = backlog.one(
                system, count, pool, BACKLOG_CUSTOMERS + i * 100_000_000,
                scale.backlog_timeout, phase=self.phase,
            )  # fmt: skip
            sizes.append(one)
            self.say(
                f"backlog {count:,}: relay {one['relayEventsPerSecond']:,.0f} ev/s "
                f"({one['relaySeconds']} s), projector {one['projectorEventsPerSecond']:,.0f} "
                f"ev/s ({one['projectorSeconds']} s)"
            )
        summary = self.result["backlog"]
        summary["relayLinearity"] = backlog.linearity(sizes, "relaySeconds")
        summary["projectorLinearity"] = backlog.linearity(sizes, "projectorSeconds")
        final = convergence.wait_exact(system.stack, time.monotonic(), scale.convergence_timeout)
        summary["exact"] = final["exact"]
        summary["differenceSample"] = final["differenceSample"]
        if not final["exact"]:
            self.fail("backlog", f"not exact afterwards: {final['differenceSample'][:3]}")

    def slow_clients(self, system: LocalSystem, pool: list[int]) -> None:
        """The ordinary load (analytics GETs, product POSTs, a sequential prober) without, then
        with `scale.slow_clients` connections trickling headers or bodies at both ports."""
        scale = self.scale
        found: dict[str, Any] = {"clients": scale.slow_clients, "seconds": scale.seconds}
        self.result["slowClients"] = found
        servers = slow_clients.server_processes(system)
        limits = {
            name: min((slow_clients.open_files_limit(pid) or 0) for pid in pids)
            for name, pids in servers.items()
        }
        found["openFilesLimit"] = {
            "benchmark": slow_clients.raise_open_files()["soft"],
            "servers": limits,
        }
        # worst case: one worker process takes its port's whole share, and wrk's connections
        needed = scale.slow_clients // 2 + scale.concurrency + 64
        for name, limit in limits.items():
            if 0 <= limit < needed:
                self.fail("slow clients", f"{name} may open {limit} files; {needed} needed")
        env = self.analytics_env(system, pool)

        def ordinary() -> dict[str, Any]:
            return slow_clients.ordinary(
                system, env, scale.seconds, scale.concurrency, seed=self.index
            )

        with self.phase("slow clients: without") as extra:
            found["without"] = ordinary()
            extra["wrk"] = _wrk_cpu(found["without"])
        self.say("without slow clients: " + _ordinary_text(found["without"]))
        deadlines = [
            float(system.env.get(variable, 10))
            for variable in ("REQUEST_HEADER_TIMEOUT_SECONDS", "REQUEST_BODY_TIMEOUT_SECONDS")
        ]
        attack = slow_clients.SlowClients(
            slow_clients.groups(system.command_url, system.query_url, scale.slow_clients),
            interval=1.0,
            resolve_seconds=max(deadlines) + 10,
            lifetime=4 * scale.seconds + 120,
        )
        with self.phase("slow clients: with") as extra:
            found["ready"] = attack.start()
            try:
                found["with"] = ordinary()
                found["serverOpenFiles"] = {
                    name: [slow_clients.open_files(pid) for pid in pids]
                    for name, pids in servers.items()
                }
            finally:
                found["attack"] = attack.stop()
            extra["wrk"] = _wrk_cpu(found["with"])
            extra["slow clients"] = attack.cpu_seconds
        found["attackCpuSeconds"] = round(attack.cpu_seconds, 3)
        self.say("with slow clients: " + _ordinary_text(found["with"]))
        first = found["attack"]["firstWave"]
        self.say(
            f"slow clients: {first['connections']} in the first wave, {first['answered408']} "
            f"answered 408 after {first['secondsTo408']['p50']} s (p50; max "
            f"{first['secondsTo408']['max']} s), {first['unansweredAtEnd']} unanswered at the "
            f"end; statuses {first['statuses']}"
        )
        found["recovery"] = slow_clients.recovery(system)
        settled = convergence.wait_exact(system.stack, time.monotonic(), scale.convergence_timeout)
        found["exactAfterwards"] = settled["exact"]
        if not settled["exact"]:
            self.fail("slow clients", f"not exact afterwards: {settled['differenceSample'][:3]}")


def _wrk_cpu(load: dict[str, Any]) -> float:
    return load["analytics"]["wrkCpuSeconds"] + load["products"]["wrkCpuSeconds"]


def _ordinary_text(load: dict[str, Any]) -> str:
    a, p, probes = load["analytics"], load["products"], load["probes"]["all"]
    return (
        f"analytics {a['perSecond']:,.0f} req/s p50 {a['p50Ms']} p99 {a['p99Ms']} ms "
        f"(failed {a['failed']}); products {p['perSecond']:,.0f}/s p50 {p['p50Ms']} "
        f"p99 {p['p99Ms']} ms (failed {p['failed']}); prober p50 {probes['p50Ms']} "
        f"p99 {probes['p99Ms']} ms, {probes['failed']} of {probes['requests']} failed"
    )
