"""Where the CPU went during a phase: the system's processes, Postgres, RabbitMQ, this
benchmark process, and everything else on the machine (other users of the shared box).

A snapshot sums user + system CPU seconds per group; the difference of two snapshots over the
wall time between them is cores used (2.0 = the whole 2-core machine). wrk's and pgbench's
CPU comes from wait4() on them (http_load.py, ceilings.py) and is added by the caller.
"""

from __future__ import annotations

import resource
import time
from typing import Any

import psutil
import psycopg

from benchmarks import processes
from infra.harness.local_system import LocalSystem
from infra.harness.sandbox import PG_SERVER


def _cpu(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return 0.0
    return times.user + times.system


class CpuProbe:
    """`system` None: only the machine, Postgres' backends on `databases`, RabbitMQ and this
    process (the ceilings run before the system starts)."""

    def __init__(self, system: LocalSystem | None, databases: list[str]) -> None:
        self.system = system
        self.databases = databases
        self._processes: dict[int, psutil.Process] = {}

    def _process(self, pid: int) -> psutil.Process | None:
        if pid not in self._processes:
            try:
                self._processes[pid] = psutil.Process(pid)
            except psutil.NoSuchProcess:
                return None
        return self._processes[pid]

    def _sum(self, pids: list[int]) -> float:
        return sum(_cpu(p) for pid in pids if (p := self._process(pid)) is not None)

    def snapshot(self) -> dict[str, float]:
        groups: dict[str, float] = {}
        if self.system is not None:
            for name, pid in processes.services(self.system).items():
                groups[name] = sum(_cpu(p) for p in processes.tree(pid))
            if self.system.process is not None:
                groups["supervisor"] = self._sum([self.system.process.pid])
        try:
            backends = processes.postgres_backends(PG_SERVER, self.databases)
        except psycopg.Error:  # a probe never fails a phase
            backends = []
        groups["postgres (sandbox databases)"] = self._sum(backends)
        groups["rabbitmq (whole broker)"] = self._sum(processes.rabbitmq_pids())
        usage = resource.getrusage(resource.RUSAGE_SELF)
        groups["benchmark process"] = usage.ru_utime + usage.ru_stime
        machine = psutil.cpu_times()
        idle = machine.idle + getattr(machine, "iowait", 0.0)
        groups["machine busy"] = sum(machine) - idle
        groups["wall"] = time.monotonic()
        return groups


def usage(before: dict[str, float], after: dict[str, float], **extra: float) -> dict[str, Any]:
    """Cores used per group between two snapshots; `extra` adds CPU seconds measured apart
    (e.g. wrk=...). 'unattributed' is the machine's busy time in no group: other users of the
    machine, and short-lived processes no snapshot saw."""
    wall = after["wall"] - before["wall"]
    if wall <= 0:
        return {}
    cores: dict[str, float] = {}
    for name, value in after.items():
        if name in ("wall", "machine busy") or name not in before:
            continue
        cores[name] = max(0.0, value - before[name]) / wall
    for name, seconds in extra.items():
        cores[name] = seconds / wall
    busy = (after["machine busy"] - before["machine busy"]) / wall
    cores["unattributed"] = max(0.0, busy - sum(cores.values()))
    cores["machine busy"] = busy
    return {"seconds": round(wall, 3), "cores": {k: round(v, 3) for k, v in cores.items()}}
