"""The listening socket and the processes that serve it.

The parent binds the port, forks `workers` processes that each build the app from its factory
and serve the shared socket on their own event loop with `threads` serving threads, and
respawns a worker that dies. SIGTERM or SIGINT: workers stop accepting, answer what they are
running (within GRACEFUL_SECONDS), and exit; then the parent exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import resource
import signal
import socket
import sys
import time
import traceback
from collections.abc import Iterable

import uvloop

from infra.local.edge.connection import Connection, Edge
from infra.local.edge.limits import Limits
from infra.local.edge.threads import ServingThreads

GRACEFUL_SECONDS = 20
RESPAWN_SECONDS = 1.0
BACKLOG = 2048
# A worker that cannot build its app exits with this: respawning it would fail the same way.
CANNOT_LOAD = 3


def serve(factory: str, *, host: str, port: int, workers: int, threads: int) -> int:
    """Serve `factory` ("module:function" returning a WSGI app) until SIGTERM/SIGINT."""
    _raise_file_limit()
    listener = socket.create_server((host, port), backlog=BACKLOG, reuse_port=False)
    listener.setblocking(False)
    limits = Limits.from_env()
    stopping = failed = False
    children: dict[int, int] = {}  # pid -> worker number

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        _signal_all(children, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for number in range(workers):
        children[_spawn(listener, factory, threads, limits)] = number
    deadline: float | None = None
    while children:
        if stopping and deadline is None:
            deadline = time.monotonic() + GRACEFUL_SECONDS + 5
        if deadline is not None and time.monotonic() > deadline:
            _signal_all(children, signal.SIGKILL)
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            time.sleep(0.1)
            continue
        number = children.pop(pid)
        code = os.waitstatus_to_exitcode(status)
        if stopping:
            continue
        if code == CANNOT_LOAD:
            failed = True
            stop(signal.SIGTERM, None)
            print(f"[edge] {factory}: the app could not be built; stopping", file=sys.stderr)
            continue
        print(f"[edge] worker {number} (pid {pid}) exited ({code}); respawning", file=sys.stderr)
        time.sleep(RESPAWN_SECONDS)
        children[_spawn(listener, factory, threads, limits)] = number
    listener.close()
    return 1 if failed else 0


def _raise_file_limit() -> None:
    """Every connection is a file descriptor, and slow clients hold theirs for a deadline:
    take all the process may have (a common soft limit is 1,024)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _signal_all(pids: Iterable[int], sig: signal.Signals) -> None:
    for pid in pids:
        _signal(pid, sig)


def _spawn(listener: socket.socket, factory: str, threads: int, limits: Limits) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 0
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        try:
            app = _load(factory)
        except Exception:
            traceback.print_exc()
            code = CANNOT_LOAD
        else:
            uvloop.run(_serve_worker(listener, app, threads, limits))
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _load(factory: str) -> object:
    module, _, name = factory.partition(":")
    return getattr(importlib.import_module(module), name)()


async def _serve_worker(listener: socket.socket, app: object, threads: int, limits: Limits) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # one serving thread: the loop's own (no hand-off per request; edge.Edge says why)
    serving = ServingThreads(threads, app, loop) if threads > 1 else None  # type: ignore[arg-type]
    host, port = listener.getsockname()[:2]
    edge = Edge(
        app,  # type: ignore[arg-type]
        getattr(app, "admit", None),
        limits,
        serving,
        (host, port),
        may_wait=getattr(app, "may_wait", None),
    )
    server = await loop.create_server(lambda: Connection(edge), sock=listener, backlog=BACKLOG)
    clock = asyncio.create_task(edge.expire_deadlines())
    await stop.wait()
    server.close()
    for connection in list(edge.connections):
        connection.shutdown()
    deadline = time.monotonic() + GRACEFUL_SECONDS
    while edge.connections and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    clock.cancel()
    edge.stop_threads()
