"""PNG plots of one run: latency distributions, freshness over time, throughput over time."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

HTTP_PHASES = (
    ("hello world, raw WSGI", ("ceilings", "helloWsgi")),
    ("hello world, functions-framework", ("ceilings", "helloFunction")),
    ("product creation", ("productCreation",)),
    ("order ingest", ("orderIngest",)),
    ("analytics GETs", ("analytics",)),
    ("analytics GETs, slow clients off", ("slowClients", "without", "analytics")),
    ("analytics GETs, slow clients on", ("slowClients", "with", "analytics")),
    ("product POSTs, slow clients off", ("slowClients", "without", "products")),
    ("product POSTs, slow clients on", ("slowClients", "with", "products")),
)
TICKS = (0, 50, 90, 99, 99.9, 99.99)


def _get(run: dict[str, Any], keys: tuple[str, ...]) -> Any:
    value: Any = run
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _nines(p: float) -> float:
    """x position of percentile p: 90 -> 1, 99 -> 2, 99.9 -> 3 ..."""
    return -math.log10(max(1e-5, 1 - p / 100))


def _percentile_axis(ax: Any) -> None:
    ax.set_xticks([_nines(p) for p in TICKS], [f"p{p:g}" for p in TICKS])
    ax.set_xlim(0, _nines(99.99) + 0.2)
    ax.grid(True, which="both", alpha=0.3)


def _shade(ax: Any, run: dict[str, Any], names: tuple[str, ...] | None = None) -> None:
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    shown = [
        p for p in run.get("phases", [])
        if not p["name"].startswith("ceiling") and (not names or p["name"] in names)
    ]  # fmt: skip
    for i, phase in enumerate(shown):
        ax.axvspan(phase["start"], phase["end"], color=colors[i % len(colors)], alpha=0.08)
        # labels alternate between two heights so that short neighbouring phases stay legible
        ax.text(phase["start"], 1.0 if i % 2 == 0 else 0.55, phase["name"],
                transform=ax.get_xaxis_transform(), rotation=90, va="top", ha="left",
                fontsize=6, alpha=0.7)  # fmt: skip


def latency(run: dict[str, Any], out: Path) -> None:
    fig, (http, fresh) = plt.subplots(1, 2, figsize=(13, 5))
    for label, keys in HTTP_PHASES:
        result = _get(run, keys)
        if not result or not result.get("spectrumMs"):
            continue
        points = [(p, ms) for p, ms in result["spectrumMs"] if p < 100]
        http.plot([_nines(p) for p, _ in points], [ms for _, ms in points], marker=".",
                  label=f"{label} ({result['perSecond']:,.0f}/s)")  # fmt: skip
    http.set_yscale("log")
    http.set_ylabel("latency (ms)")
    http.set_title("HTTP latency by percentile (wrk, concurrency 32)")
    _percentile_axis(http)
    http.legend(fontsize=8)

    for label, key in (("at idle", "idle"), ("under ingest load", "underLoad")):
        series = _get(run, ("freshness", key, "series")) or []
        values = sorted(ms for _t, ms in series if ms is not None)
        if not values:
            continue
        n = len(values)
        fresh.plot([_nines(100 * (i + 0.5) / n) for i in range(n)], values, marker=".",
                   label=f"{label} ({n} samples)")  # fmt: skip
    fresh.set_yscale("log")
    fresh.set_ylabel("201 -> visible in analytics (ms)")
    fresh.set_title("freshness by percentile")
    _percentile_axis(fresh)
    fresh.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def freshness(run: dict[str, Any], out: Path) -> None:
    fig, ax = plt.subplots(figsize=(13, 4.5))
    for label, key in (("at idle", "idle"), ("under ingest load", "underLoad")):
        series = _get(run, ("freshness", key, "series")) or []
        seen = [(t, ms) for t, ms in series if ms is not None]
        if seen:
            ax.plot([t for t, _ in seen], [ms for _, ms in seen], ".", label=label)
    ax.set_yscale("log")
    ax.set_xlabel("seconds since the run started")
    ax.set_ylabel("201 -> visible (ms)")
    ax.set_title("freshness over time")
    _shade(ax, run, ("freshness at idle", "order ingest", "convergence"))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def _rates(rows: list[list[float]], column: int, window: float = 1.0) -> tuple[list, list]:
    """Per-second rate of a cumulative column over a sliding `window` of seconds."""
    ts, rates = [], []
    j = 0
    for i, row in enumerate(rows):
        while rows[j][0] < row[0] - window:
            j += 1
        if i == j:
            continue
        dt = row[0] - rows[j][0]
        ts.append((row[0] + rows[j][0]) / 2)  # at the middle of its window: no lag
        rates.append(max(0.0, (row[column] - rows[j][column]) / dt) if dt > 0 else 0.0)
    return ts, rates


def throughput(run: dict[str, Any], out: Path) -> None:
    timeline = run.get("timeline") or {}
    rows = timeline.get("rows") or []
    if len(rows) < 2:
        return
    columns = timeline["columns"]
    fig, ax = plt.subplots(figsize=(13, 5))
    for name, label in (
        ("products", "products created/s"),
        ("orders", "orders created/s (incl. backlog inserts)"),
        ("published", "events published/s (relay)"),
        ("projected", "events projected/s (projector)"),
    ):
        ts, rates = _rates(rows, columns.index(name))
        ax.plot(ts, [r if r > 0 else math.nan for r in rates], label=label, linewidth=1)
    ax.set_yscale("log")
    ax.set_xlabel("seconds since the run started")
    ax.set_ylabel("per second (1 s window)")
    ax.set_title("throughput over time")
    _shade(ax, run)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def all_plots(run: dict[str, Any], stem: Path) -> list[Path]:
    """Writes <stem>-latency.png, -freshness.png, -throughput.png; returns their paths."""
    written = []
    for name, draw in (("latency", latency), ("freshness", freshness), ("throughput", throughput)):
        target = stem.with_name(f"{stem.name}-{name}.png")
        draw(run, target)
        if target.exists():
            written.append(target)
    return written
