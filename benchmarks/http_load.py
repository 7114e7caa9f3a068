"""HTTP load with wrk and a Lua scenario (benchmarks/lua/): throughput, latency, errors, and
the load generator's own CPU time.

Two modes:
- for a duration (`seconds`): wrk's -d, for steady-state throughput (analytics, hello world);
- a bounded count (`total`): exactly `total` requests, then stop (orders, products). wrk has
  no request limit, so lua/common.lua gives each thread a quota, parks connections once it
  is issued (delay()), and writes BENCH_THREAD_DONE when all of it is answered; we then send
  SIGINT, which ends wrk's sleep early. If no response comes for `stall_seconds` (requests
  lost to socket errors never complete a quota) wrk is stopped and the result is marked
  incomplete. The rate is `total` over the time from wrk's start to
  the last thread's done line (slightly conservative: it includes wrk's start-up).

Latency percentiles are wrk's own (its histogram, in microseconds, after wrk's correction for
coordinated omission), printed as JSON by the Lua done(); the `--latency` text block is parsed
too and kept as a cross-check. wrk's CPU time comes from wait4() on it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

LUA = Path(__file__).parent / "lua"
WRK = os.environ.get("BENCH_WRK", "wrk")

# percentiles done() reports: the usual ones plus a spectrum for the latency plots
PERCENTILES = sorted(
    {0.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 99.99, 100.0}
    | {round(100 * (1 - 10 ** (-k / 8)), 4) for k in range(1, 33)}
    | {float(p) for p in range(5, 100, 5)}
)

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def script(scenario: str) -> str:
    """lua/common.lua followed by lua/<scenario>.lua, as one file wrk can load."""
    text = (LUA / "common.lua").read_text() + "\n" + (LUA / f"{scenario}.lua").read_text()
    with tempfile.NamedTemporaryFile(
        "w", prefix=f"bench-{scenario}-", suffix=".lua", delete=False
    ) as handle:
        handle.write(text)
    return handle.name


def parse_latency_block(text: str) -> dict[str, float]:
    """wrk --latency's 'Latency Distribution' block: {"50": ms, "75": ms, "90": ms, "99": ms}."""
    found: dict[str, float] = {}
    block = text.split("Latency Distribution", 1)
    if len(block) < 2:
        return found
    for line in block[1].splitlines()[1:]:
        match = re.match(r"\s+([\d.]+)%\s+([\d.]+)(us|ms|s|m)\s*$", line)
        if not match:
            break
        found[f"{float(match.group(1)):g}"] = float(match.group(2)) * _UNITS[match.group(3)]
    return found


def run(
    url: str,
    scenario: str,
    *,
    connections: int = 32,
    threads: int = 2,
    seconds: float | None = None,
    total: int | None = None,
    success: int = 200,
    env: dict[str, str] | None = None,
    timeout_seconds: int = 10,
    seed: int = 1,
    max_seconds: float = 600,
    stall_seconds: float = 30,
) -> dict[str, Any]:
    """Run wrk against `url` with lua/<scenario>.lua; return its figures (see module doc)."""
    if (seconds is None) == (total is None):
        raise ValueError("give either seconds or total")
    bounded = total is not None
    path = script(scenario)
    duration = int(seconds) if seconds is not None else int(max_seconds)
    argv = [
        WRK, "--latency", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s",
        "--timeout", f"{timeout_seconds}s", "-s", path, url,
    ]  # fmt: skip
    wrk_env = {
        **os.environ,
        **(env or {}),
        "BENCH_TOTAL": str(total or 0),
        "BENCH_THREADS": str(threads),
        "BENCH_SEED": str(seed),
        "BENCH_PERCENTILES": ",".join(f"{p:g}" for p in PERCENTILES),
    }
    started = time.monotonic()
    started_wall = time.time()
    proc = subprocess.Popen(
        argv, env=wrk_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    done_at: list[float] = []
    stderr_lines: list[str] = []
    exited = _Exited()

    progress = [time.monotonic()]

    def watch_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.strip() == "BENCH_PROGRESS":
                progress[0] = time.monotonic()
            elif line.strip() == "BENCH_THREAD_DONE":
                done_at.append(time.monotonic())
                if len(done_at) == threads:
                    _interrupt(proc.pid, exited)
            else:
                stderr_lines.append(line)

    def watchdog() -> None:
        while not exited.flag:
            if time.monotonic() - progress[0] > stall_seconds:
                stalled.append(True)
                _interrupt(proc.pid, exited)
                return
            time.sleep(1)

    stalled: list[bool] = []
    watcher = threading.Thread(target=watch_stderr, daemon=True)
    watcher.start()
    if bounded:
        threading.Thread(target=watchdog, daemon=True).start()
    assert proc.stdout is not None
    stdout = proc.stdout.read()
    # wait for the exit without reaping, so _interrupt never signals a recycled pid
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
    with exited.lock:
        exited.flag = True
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    ended = time.monotonic()
    watcher.join(5)
    Path(path).unlink(missing_ok=True)

    match = re.search(r"^BENCH_JSON (.*)$", stdout, re.MULTILINE)
    if proc.returncode != 0 or not match:
        raise RuntimeError(
            f"wrk {scenario} failed (exit {proc.returncode}):\n{stdout[-2000:]}"
            f"\n{''.join(stderr_lines)[-2000:]}"
        )
    raw = json.loads(match.group(1))
    cpu = usage.ru_utime + usage.ru_stime
    complete = bounded and len(done_at) == threads
    if bounded:
        last = done_at[-1] if complete else ended
        elapsed = last - started
        requests = sum(raw["statuses"].values())
    else:
        elapsed = raw["durationUs"] / 1e6
        requests = raw["requests"]
    percentiles = {p: us / 1000 for p, us in raw["percentilesUs"]}
    errors = raw["errors"]
    # a bounded run counts every status; a timed one only wrk's "non-2xx or 3xx"
    failed = requests - raw["statuses"].get(str(success), 0) if bounded else errors["status"]
    failed += errors["connect"] + errors["read"] + errors["write"] + errors["timeout"]
    return {
        "scenario": scenario,
        "url": url,
        "connections": connections,
        "threads": threads,
        "mode": "count" if bounded else "duration",
        "requested": total,
        "complete": complete if bounded else True,
        "stalled": bool(stalled),
        "requests": requests,
        "seconds": round(elapsed, 4),
        "perSecond": round(requests / elapsed, 1) if elapsed > 0 else None,
        "p50Ms": percentiles.get("50"),
        "p90Ms": percentiles.get("90"),
        "p95Ms": percentiles.get("95"),
        "p99Ms": percentiles.get("99"),
        "p999Ms": percentiles.get("99.9"),
        "maxMs": raw["latencyUs"]["max"] / 1000,
        "meanMs": round(raw["latencyUs"]["mean"] / 1000, 3),
        "spectrumMs": [[float(p), us / 1000] for p, us in raw["percentilesUs"]],
        "statuses": raw["statuses"],
        "errors": errors,
        "failed": failed,
        "wrkCpuSeconds": round(cpu, 3),
        "wrkCores": round(cpu / (ended - started), 3),
        "wrkLatencyBlockMs": parse_latency_block(stdout),
        "startedAt": started_wall,
        "monotonicStart": started,
        "monotonicLastResponse": done_at[-1] if complete else None,
    }


class _Exited:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.flag = False


def _interrupt(pid: int, exited: _Exited) -> None:
    """SIGINT until wrk exits: a signal that lands on a worker thread instead of the sleeping
    main thread does not end the sleep, so keep at it (each try costs nothing)."""

    def keep_at_it() -> None:
        while True:
            with exited.lock:
                if exited.flag:
                    return
                os.kill(pid, signal.SIGINT)  # exited or not, it is not reaped yet: still ours
            time.sleep(0.1)

    threading.Thread(target=keep_at_it, daemon=True).start()
