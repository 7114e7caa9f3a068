"""The command line of the HTTP server behind each local port (and behind the benchmark's
hello-world ceiling): the edge server (infra/local/edge), serving a WSGI app built by a
factory with `workers` processes of `threads` serving threads each. The edge reads a whole
request on its event loop before a serving thread sees it, so slow clients cannot hold the
threads (README, "The edge").
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

# (processes, serving threads per process) of each port, unless <PORT>_WORKERS and
# <PORT>_THREADS say otherwise; chosen by A/B pairs (BENCHMARKS.md#port-sizing). A query is
# a short read and the query port is CPU-bound, so it runs one thread per process (the edge
# runs it on the event loop's thread): no GIL contention, as a platform runs one request per
# instance. A command mostly waits (row locks, its commit) and the whole command port needs
# under one core, so one process overlaps those waits with threads and leaves the other core
# to Postgres and the pipeline.
DEFAULT_SIZING = {"command": (1, 16), "query": (4, 1)}
SIZING_VARIABLES = {
    "command": ("COMMAND_WORKERS", "COMMAND_THREADS"),
    "query": ("QUERY_WORKERS", "QUERY_THREADS"),
}


def sizing(port: str, env: Mapping[str, str] = os.environ) -> tuple[int, int]:
    """(workers, threads) for `port` ("command" or "query")."""
    workers_variable, threads_variable = SIZING_VARIABLES[port]
    workers, threads = DEFAULT_SIZING[port]
    return int(env.get(workers_variable, workers)), int(env.get(threads_variable, threads))


def argv(
    factory: str,
    *,
    host: str,
    port: int | str,
    workers: int | str,
    threads: int | str,
    python: str = sys.executable,
) -> list[str]:
    """The command serving `factory` ("module:function", called once per worker process
    to build its WSGI app) on host:port. Numbers may be strings (docker-compose's
    `${VAR:-default}`)."""
    return [
        python, "-m", "infra.local.edge", factory,
        "--host", host,
        "--port", str(port),
        "--workers", str(workers),
        "--threads", str(threads),
    ]  # fmt: skip
