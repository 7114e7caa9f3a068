"""The benchmark suite (issue 5): the machine's ceilings and the system, in one command.

    shop bench [--quick] [--runs 3] [--out bench-results/NAME.json]   # or python -m benchmarks
               [--env QUERY_WORKERS=4 ...] [--keep-logs]

Each run gets its own sandbox (throwaway databases and RabbitMQ vhost) and its own
`python -m infra.local`; the figures of every run, their medians, the ratios to the ceilings
of the same run and the issue's targets are printed as a table and written as one JSON
document (--out), with PNG plots beside it. Exit status 1 if any run recorded a failure (a
read model not exact after the burst or the backlogs is one).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from benchmarks import plots, report, slow_clients
from benchmarks.suite import Run, Scale
from infra.functions import REPO


def _progress(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


def _version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else "?"


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "memoryGiB": round(psutil.virtual_memory().total / 2**30, 1),
        "loadAverageAtStart": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "kernel": platform.release(),
        "wrk": _version(["wrk", "-v"]),
        "pgbench": _version(["pgbench", "--version"]),
        "rabbitmq": _version(["rabbitmqctl", "-q", "version"]),
        "git": _version(["git", "-C", str(REPO), "describe", "--always", "--dirty"]),
    }


def memory_table(runs: list[dict[str, Any]]) -> str:
    lines = ["peak memory (VmHWM) per process, MiB, run by run:"]
    names: dict[str, list[str]] = {}
    for run in runs:
        for name, found in (run.get("memory") or {}).items():
            per = ", ".join(f"{p['role']} {p['peakMiB']:.0f}" for p in found["processes"])
            names.setdefault(f"{name} ({found['functions']})", []).append(
                f"{per} (sum {found['peakMiBSum']:.0f})"
            )
    for name, values in names.items():
        lines.append(f"  {name}: " + " | ".join(values))
    return "\n".join(lines)


def backlog_table(runs: list[dict[str, Any]]) -> str:
    lines = ["backlogs (events: relay drain s -> events/s; projector catch-up s -> events/s):"]
    for run in runs:
        sizes = (run.get("backlog") or {}).get("sizes") or []
        parts = [
            f"{s['events']:,}: relay {s['relaySeconds']} s -> {s['relayEventsPerSecond']:,.0f}/s,"
            f" projector {s['projectorSeconds']} s -> {s['projectorEventsPerSecond']:,.0f}/s"
            for s in sizes
        ]
        fit = (run.get("backlog") or {}).get("projectorLinearity") or {}
        lines.append(f"  run {run['run']}: " + "; ".join(parts))
        if fit:
            lines.append(
                f"    projector fit: {fit['secondsPerThousandEvents']} s per 1,000 events + "
                f"{fit['interceptSeconds']} s, R² {fit['r2']}, time per event grows "
                f"{fit['perEventTimeGrowth']}x -> {'linear' if fit['linear'] else 'NOT linear'}"
            )
    return "\n".join(lines)


def slow_clients_table(runs: list[dict[str, Any]]) -> str:
    lines = ["slow clients (first wave: answered, seconds from the first byte to the answer):"]
    for run in runs:
        found = run.get("slowClients") or {}
        attack = found.get("attack")
        if not attack:
            continue
        lines.append(
            f"  run {run['run']}: {found['clients']} slow clients; open files allowed: "
            f"benchmark {found['openFilesLimit']['benchmark']}, servers "
            f"{found['openFilesLimit']['servers']}; the slow clients' process used "
            f"{found.get('attackCpuSeconds')} s of CPU; ports healthy again after "
            f"{(found.get('recovery') or {}).get('secondsToHealthy')} s"
        )
        for group in attack["groups"]:
            first = group["firstWave"]
            to408, to_answer = first["secondsTo408"], first["secondsToAnswer"]
            lines.append(
                f"    {group['name']} ({group['method']} {group['path']}, {group['count']}): "
                f"statuses {first['statuses'] or '{}'}, 408 after {to408['min']}-"
                f"{to408['max']} s (p50 {to408['p50']}), any answer p50 {to_answer['p50']} s; "
                f"closed unanswered {first['closedWithoutAnswer']}, still waiting at the end "
                f"{first['unansweredAtEnd']}, connect errors {first['connectErrors']}"
            )
        every = attack["all"]
        lines.append(
            f"    all {every['connections']} connections in {attack['seconds']} s (replacements "
            f"included): statuses {every['statuses']}, peak open {attack['peakOpen']}"
        )
    return "\n".join(lines)


BULKY = {"timeline", "spectrumMs", "series", "tracebacks", "perRun"}


def compact(value: Any) -> Any:
    """The document without its series (timeline, latency spectra, freshness samples)."""
    if isinstance(value, dict):
        return {k: compact(v) for k, v in value.items() if k not in BULKY}
    if isinstance(value, list):
        return [compact(v) for v in value]
    return value


def main(argv: list[str] | None = None, prog: str = "python -m benchmarks") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="big numbers scaled down 10x")
    parser.add_argument("--runs", type=int, default=1, help="repeat the suite; report medians")
    parser.add_argument("--out", type=Path, help="JSON file (default bench-results/<time>.json)")
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE",
        help="environment for the system (and the hello world's workers/threads), e.g. "
        "COMMAND_WORKERS=4; repeatable",
    )  # fmt: skip
    parser.add_argument("--keep-logs", action="store_true", help="keep the system's logs")
    args = parser.parse_args(argv)
    # 1,000 slow clients need file descriptors here and in the servers, which inherit this
    open_files = slow_clients.raise_open_files()

    env = dict(item.split("=", 1) for item in args.env)
    scale = Scale.quick() if args.quick else Scale()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out: Path = args.out or REPO / "bench-results" / f"{stamp}{'-quick' if args.quick else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    log_dir = out.parent if args.keep_logs else Path(tempfile.mkdtemp(prefix="bench-logs-"))
    command = f"{prog} " + shlex.join(sys.argv[1:] if argv is None else argv)

    document: dict[str, Any] = {
        "command": command.strip(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {**machine(), "openFiles": open_files},
        "environment": env,
        "scale": "quick" if args.quick else "full",
        "runs": [],
    }
    started = time.monotonic()
    for index in range(1, args.runs + 1):
        _progress(f"run {index} of {args.runs} ({document['scale']})")
        run_started = time.monotonic()
        try:
            result = Run(index, scale, env, log_dir, _progress).execute()
        except Exception as exc:  # a broken run is reported, the others go on
            result = {"run": index, "failures": [f"run aborted: {exc!r}"], "phases": []}
            _progress(f"run {index} aborted: {exc!r}")
        result["seconds"] = round(time.monotonic() - run_started, 1)
        document["runs"].append(result)
        if args.keep_logs:
            result["systemLog"] = str(log_dir / f"system-run{index}.log")

    runs = document["runs"]
    summary = report.summarize(runs)
    generator = report.load_generator(runs)
    document.update(
        finished=datetime.now(UTC).isoformat(timespec="seconds"),
        seconds=round(time.monotonic() - started, 1),
        medians=summary["medians"],
        perRun=summary["perRun"],
        targets=summary["targets"],
        loadGenerator=generator,
        failures=[f"run {r['run']}: {f}" for r in runs for f in r.get("failures", [])],
    )
    plot_files: list[str] = []
    for run in runs:
        stem = out.with_suffix("") if len(runs) == 1 else out.with_name(
            f"{out.stem}-run{run['run']}"
        )  # fmt: skip
        try:
            plot_files += [str(p) for p in plots.all_plots(run, stem)]
        except Exception as exc:  # a plot never loses the figures
            document["failures"].append(f"plots of run {run['run']}: {exc!r}")
    document["plots"] = plot_files
    out.write_text(json.dumps(document, indent=1, default=str) + "\n")

    print()
    print(report.table(summary, len(runs)))
    print()
    print(backlog_table(runs))
    print()
    print(memory_table(runs))
    print()
    print(slow_clients_table(runs))
    print()
    print("CPU per phase (cores of 2; medians over the runs):")
    print(report.generator_table(generator))
    print()
    for failure in document["failures"]:
        print(f"FAILURE {failure}")
    if not args.keep_logs:
        if document["failures"]:
            print(f"the system's logs are kept for the failures: {log_dir}")
        else:
            shutil.rmtree(log_dir, ignore_errors=True)
    print(f"JSON: {out}")
    for p in plot_files:
        print(f"plot: {p}")
    print(f"total {document['seconds']:.0f} s")
    print()
    print(json.dumps(compact(document), default=str))
    return 1 if document["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
