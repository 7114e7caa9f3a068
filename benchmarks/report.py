"""The figures of each run, their medians over the runs, ratios to the ceilings of the same run,
the issue's targets, and the printed table.

A ratio is taken within each run (figure / that run's ceiling) and its median reported: the
machine is noisy, and a ceiling measured minutes earlier is the fair yardstick.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.stats import median, ratio

Getter = Callable[[dict[str, Any]], float | None]


def path(*keys: str | int) -> Getter:
    def get(run: dict[str, Any]) -> float | None:
        value: Any = run
        for key in keys:
            try:
                value = value[key]
            except (KeyError, IndexError, TypeError):
                return None
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None

    return get


def largest_backlog(key: str) -> Getter:
    def get(run: dict[str, Any]) -> float | None:
        sizes = (run.get("backlog") or {}).get("sizes") or []
        return sizes[-1].get(key) if sizes else None

    return get


def bool_path(*keys: str) -> Getter:
    def get(run: dict[str, Any]) -> float | None:
        value: Any = run
        for key in keys:
            if not isinstance(value, dict) or key not in value:
                return None
            value = value[key]
        return None if value is None else float(bool(value))

    return get


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    get: Getter
    ceilings: tuple[str, ...] = ()  # keys of ceiling metrics, the first one shown in the table
    node: float | None = None  # the Node.js system's figure (issue 5), for comparison


CEILINGS = (
    Metric("ceiling.pgbench", "ceiling: pgbench order transaction", "tps",
           path("ceilings", "pgbench", "tps")),
    Metric("ceiling.publish", "ceiling: RabbitMQ publish, windowed confirms", "msg/s",
           path("ceilings", "rabbitmq", "publish", "perSecond")),
    Metric("ceiling.consume", "ceiling: RabbitMQ consume, multiple acks", "msg/s",
           path("ceilings", "rabbitmq", "consume", "perSecond")),
    Metric("ceiling.helloWsgi", "ceiling: hello world, raw WSGI", "req/s",
           path("ceilings", "helloWsgi", "perSecond")),
    Metric("ceiling.helloWsgiP50", "ceiling: hello world, raw WSGI p50", "ms",
           path("ceilings", "helloWsgi", "p50Ms")),
    Metric("ceiling.helloWsgiP99", "ceiling: hello world, raw WSGI p99", "ms",
           path("ceilings", "helloWsgi", "p99Ms")),
    Metric("ceiling.helloFunction", "ceiling: hello world, functions-framework", "req/s",
           path("ceilings", "helloFunction", "perSecond")),
    Metric("ceiling.helloFunctionP50", "ceiling: hello world, functions-framework p50", "ms",
           path("ceilings", "helloFunction", "p50Ms")),
    Metric("ceiling.helloFunctionP99", "ceiling: hello world, functions-framework p99", "ms",
           path("ceilings", "helloFunction", "p99Ms")),
)  # fmt: skip


def _slow(when: str, *keys: str) -> Getter:
    return path("slowClients", when, *keys)


def _ordinary_metrics() -> tuple[Metric, ...]:
    """The slow-client phase's ordinary load, without ("off") and with ("on") the slow
    clients; an "on" figure's yardstick (the ceiling column) is the same figure "off"."""
    found: list[Metric] = []
    for key, label, unit, keys in (
        ("analytics", "analytics GETs c32", "req/s", ("analytics", "perSecond")),
        ("analytics.p50", "analytics GETs c32 p50", "ms", ("analytics", "p50Ms")),
        ("analytics.p99", "analytics GETs c32 p99", "ms", ("analytics", "p99Ms")),
        ("analytics.failed", "analytics GETs c32 failed", "requests", ("analytics", "failed")),
        ("products", "product POSTs c32", "products/s", ("products", "perSecond")),
        ("products.p50", "product POSTs c32 p50", "ms", ("products", "p50Ms")),
        ("products.p99", "product POSTs c32 p99", "ms", ("products", "p99Ms")),
        ("products.failed", "product POSTs c32 failed", "requests", ("products", "failed")),
        ("probes.p50", "prober (new connection each) p50", "ms", ("probes", "all", "p50Ms")),
        ("probes.p99", "prober (new connection each) p99", "ms", ("probes", "all", "p99Ms")),
        ("probes.failed", "prober failed or timed out", "requests", ("probes", "all", "failed")),
    ):
        off = Metric(f"slow.off.{key}", f"slow clients off: {label}", unit, _slow("without", *keys))
        on = Metric(
            f"slow.on.{key}",
            f"slow clients on: {label}",
            unit,
            _slow("with", *keys),
            () if key.endswith("failed") else (off.key,),
        )
        found += [off, on]
    return tuple(found)


SLOW_CLIENTS = (
    *_ordinary_metrics(),
    Metric("slow.clients", "slow clients (first wave)", "connections",
           path("slowClients", "attack", "firstWave", "connections")),
    Metric("slow.answered408", "slow clients answered 408", "connections",
           path("slowClients", "attack", "firstWave", "answered408")),
    Metric("slow.to408.p50", "slow clients: seconds to their 408, p50", "s",
           path("slowClients", "attack", "firstWave", "secondsTo408", "p50")),
    Metric("slow.to408.max", "slow clients: seconds to their 408, max", "s",
           path("slowClients", "attack", "firstWave", "secondsTo408", "max")),
    Metric("slow.unanswered", "slow clients unanswered when the attack ended", "connections",
           path("slowClients", "attack", "firstWave", "unansweredAtEnd")),
)  # fmt: skip


FIGURES = (
    Metric("orders.rate", "order ingest", "orders/s", path("orderIngest", "perSecond"),
           ("ceiling.pgbench",), 1067),
    Metric("orders.p50", "order ingest p50", "ms", path("orderIngest", "p50Ms"),
           ("ceiling.helloFunctionP50",)),
    Metric("orders.p99", "order ingest p99", "ms", path("orderIngest", "p99Ms"),
           ("ceiling.helloFunctionP99",), 68),
    Metric("orders.failed", "order ingest non-201", "requests", path("orderIngest", "failed")),
    Metric("products.rate", "product creation", "products/s",
           path("productCreation", "perSecond"), ("ceiling.helloFunction", "ceiling.pgbench"),
           1862),
    Metric("products.p50", "product creation p50", "ms", path("productCreation", "p50Ms"),
           ("ceiling.helloFunctionP50",)),
    Metric("products.p99", "product creation p99", "ms", path("productCreation", "p99Ms"),
           ("ceiling.helloFunctionP99",)),
    Metric("products.failed", "product creation non-201", "requests",
           path("productCreation", "failed")),
    Metric("freshness.idle.p50", "freshness at idle p50", "ms",
           path("freshness", "idle", "p50Ms")),
    Metric("freshness.idle.p95", "freshness at idle p95", "ms",
           path("freshness", "idle", "p95Ms")),
    Metric("freshness.idle.p99", "freshness at idle p99", "ms",
           path("freshness", "idle", "p99Ms"), node=998),
    Metric("freshness.load.p50", "freshness under ingest load p50", "ms",
           path("freshness", "underLoad", "p50Ms")),
    Metric("freshness.load.p95", "freshness under ingest load p95", "ms",
           path("freshness", "underLoad", "p95Ms")),
    Metric("freshness.load.p99", "freshness under ingest load p99", "ms",
           path("freshness", "underLoad", "p99Ms"), node=45_500),
    Metric("freshness.load.samples", "freshness under load: samples", "samples",
           path("freshness", "underLoad", "samples")),
    Metric("convergence", "convergence after the burst (exact)", "s",
           path("convergence", "seconds"), node=45.6),
    Metric("relay.rate", "relay drain, largest backlog", "events/s",
           largest_backlog("relayEventsPerSecond"), ("ceiling.publish",), 100),
    Metric("projector.rate", "projector catch-up, largest backlog", "events/s",
           largest_backlog("projectorEventsPerSecond"), ("ceiling.consume",), 616),
    Metric("projector.r2", "projector catch-up time vs backlog: R²", "",
           path("backlog", "projectorLinearity", "r2")),
    Metric("projector.growth", "projector time per event, largest/smallest backlog", "x",
           path("backlog", "projectorLinearity", "perEventTimeGrowth")),
    Metric("projector.linear", "projector catch-up linear in the backlog", "1=yes",
           bool_path("backlog", "projectorLinearity", "linear")),
    Metric("relay.growth", "relay time per event, largest/smallest backlog", "x",
           path("backlog", "relayLinearity", "perEventTimeGrowth")),
    Metric("analytics.rate", "analytics GETs (mixed)", "req/s", path("analytics", "perSecond"),
           ("ceiling.helloFunction", "ceiling.helloWsgi"), 8531),
    Metric("analytics.p50", "analytics GETs p50", "ms", path("analytics", "p50Ms"),
           ("ceiling.helloFunctionP50",)),
    Metric("analytics.p99", "analytics GETs p99", "ms", path("analytics", "p99Ms"),
           ("ceiling.helloFunctionP99",), 10),
    Metric("analytics.failed", "analytics GETs non-2xx", "requests", path("analytics", "failed")),
    *SLOW_CLIENTS,
)  # fmt: skip

ALL = {m.key: m for m in (*CEILINGS, *FIGURES)}


@dataclass(frozen=True)
class Target:
    label: str
    key: str  # a metric key, or "<metric>/<ceiling>" for a ratio
    op: str  # ">=" or "<="
    bound: float


TARGETS = (
    Target("order ingest >= 50% of the pgbench ceiling", "orders.rate/ceiling.pgbench", ">=", 0.5),
    Target("order ingest >= 2,100 orders/s", "orders.rate", ">=", 2100),
    Target("freshness p99 at idle <= 50 ms", "freshness.idle.p99", "<=", 50),
    Target("freshness p99 under load <= 250 ms", "freshness.load.p99", "<=", 250),
    Target("convergence after the burst <= 1 s", "convergence", "<=", 1.0),
    Target("relay >= 50% of the confirmed-publish ceiling", "relay.rate/ceiling.publish",
           ">=", 0.5),
    Target("projector catch-up >= 50% of the consume ceiling",
           "projector.rate/ceiling.consume", ">=", 0.5),
    Target("projector catch-up linear in the backlog", "projector.linear", ">=", 1),
    # the ceiling: "a hello-world function under the same HTTP stack"
    Target("analytics >= 50% of the hello-world function ceiling",
           "analytics.rate/ceiling.helloFunction", ">=", 0.5),
    Target("analytics p99 <= 10 ms", "analytics.p99", "<=", 10),
    Target("product creation >= 2,000/s", "products.rate", ">=", 2000),
)  # fmt: skip


def per_run(run: dict[str, Any]) -> dict[str, float | None]:
    """Every metric of one run, and every ratio "<metric>/<ceiling>" of the same run."""
    values: dict[str, float | None] = {key: m.get(run) for key, m in ALL.items()}
    for metric in FIGURES:
        for ceiling in metric.ceilings:
            values[f"{metric.key}/{ceiling}"] = ratio(values[metric.key], values[ceiling])
    return values


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    table = [per_run(run) for run in runs]
    keys = list(table[0]) if table else []
    medians = {key: median([t[key] for t in table]) for key in keys}
    values = {key: [t[key] for t in table] for key in keys}
    targets = []
    for target in TARGETS:
        value = medians.get(target.key)
        met = None
        if value is not None:
            met = value >= target.bound if target.op == ">=" else value <= target.bound
        targets.append(
            {"target": target.label, "key": target.key, "median": value, "op": target.op,
             "bound": target.bound, "met": met}
        )  # fmt: skip
    return {"medians": medians, "perRun": values, "targets": targets}


def load_generator(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per phase: the load generator's cores (wrk or pgbench), the machine's busy cores, and
    what else (outside our processes) was busy: the evidence that wrk was not the bottleneck
    and how noisy the shared machine was."""
    rows: dict[str, dict[str, list[float]]] = {}
    for run in runs:
        for phase, usage in run.get("cpu", {}).items():
            cores = usage.get("cores", {})
            row = rows.setdefault(phase, {"generator": [], "bench": [], "busy": [], "else": []})
            generator = cores.get("wrk", cores.get("pgbench"))
            if generator is not None:
                row["generator"].append(generator)
            row["bench"].append(cores.get("benchmark process", 0.0))
            row["busy"].append(cores.get("machine busy", 0.0))
            row["else"].append(cores.get("unattributed", 0.0))
    return [
        {
            "phase": phase,
            "loadGeneratorCores": median(row["generator"]),
            "benchmarkProcessCores": median(row["bench"]),
            "machineBusyCores": median(row["busy"]),
            "otherCores": median(row["else"]),
        }
        for phase, row in rows.items()
    ]


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if unit in ("ratio", "x", ""):
        return f"{value:.2f}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def table(summary: dict[str, Any], runs: int) -> str:
    medians, per = summary["medians"], summary["perRun"]
    header = ("figure", "median", "unit", f"runs ({runs})", "ceiling", "ratio", "Node.js")
    rows = [header]
    for metric in (*CEILINGS, *FIGURES):
        value = medians.get(metric.key)
        runs_text = " / ".join(_fmt(v, metric.unit) for v in per.get(metric.key, []))
        ceiling_text = ratio_text = ""
        if metric.ceilings:
            ceiling = metric.ceilings[0]
            ceiling_text = f"{_fmt(medians.get(ceiling), ALL[ceiling].unit)} {ALL[ceiling].unit}"
            r = medians.get(f"{metric.key}/{ceiling}")
            ratio_text = "-" if r is None else f"{r:.2f} ({ceiling.removeprefix('ceiling.')})"
        node = "" if metric.node is None else _fmt(metric.node, metric.unit)
        rows.append(
            (metric.label, _fmt(value, metric.unit), metric.unit, runs_text, ceiling_text,
             ratio_text, node)
        )  # fmt: skip
    lines = _columns(rows)
    lines.append("")
    lines.append("targets (issue 5), on the medians:")
    for t in summary["targets"]:
        mark = {True: "met", False: "NOT MET", None: "no figure"}[t["met"]]
        value = t["median"]
        shown = "-" if value is None else (f"{value:.2f}" if "/" in t["key"] else _fmt(value))
        lines.append(f"  [{mark:>9}] {t['target']}: {shown}")
    return "\n".join(lines)


def generator_table(rows: list[dict[str, Any]]) -> str:
    header = ("phase", "wrk/pgbench", "bench process", "machine busy", "unattributed")
    body = [header] + [
        (r["phase"], _fmt(r["loadGeneratorCores"], "x"), _fmt(r["benchmarkProcessCores"], "x"),
         _fmt(r["machineBusyCores"], "x"), _fmt(r["otherCores"], "x"))
        for r in rows
    ]  # fmt: skip
    return "\n".join(_columns(body))


def _columns(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in
                 enumerate(zip(row, widths, strict=True))]  # fmt: skip
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines
