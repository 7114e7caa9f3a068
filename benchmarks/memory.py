"""Peak memory (VmHWM, the high-water mark of resident memory) of every process of the system.

Read from /proc/<pid>/status at the end of a run, so it covers the whole run; a service's
processes include its children (the HTTP servers' workers)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from benchmarks import processes
from infra.harness.local_system import LocalSystem


def _status_kib(pid: int, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def peaks(system: LocalSystem) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, pid in processes.services(system).items():
        rows = []
        for process in processes.tree(pid):
            peak = _status_kib(process.pid, "VmHWM")
            rss = _status_kib(process.pid, "VmRSS")
            if peak is None:
                continue
            role = "main" if process.pid == pid else "worker"
            rows.append(
                {
                    "pid": process.pid,
                    "role": role,
                    "peakMiB": round(peak / 1024, 1),
                    "rssMiB": round((rss or 0) / 1024, 1),
                }
            )
        if rows:
            found[name] = {
                "functions": processes.FUNCTIONS.get(re.sub(r" #\d+$", "", name), ""),
                "processes": rows,
                "peakMiBLargest": max(r["peakMiB"] for r in rows),
                "peakMiBSum": round(sum(r["peakMiB"] for r in rows), 1),
            }
    return found
