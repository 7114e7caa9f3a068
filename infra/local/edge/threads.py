"""The serving threads of a port with more than one: they run complete requests and hand the
answers back to the event loop in batches.

Cheaper per request than a ThreadPoolExecutor with a future and a loop wake-up each
(BENCHMARKS.md#edge-loop-thread): a job is one put on a SimpleQueue, and finished requests
gather in a deque that the loop drains whole, woken once for however many finished meanwhile.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any

from infra.local.edge import wsgi

# What the loop runs with a finished request: its answer, or the exception that replaced it.
Finish = Callable[[wsgi.Answer | None, BaseException | None], None]
_STOP = None


class ServingThreads:
    def __init__(self, count: int, app: wsgi.WSGIApp, loop: asyncio.AbstractEventLoop) -> None:
        self.app = app
        self.loop = loop
        self.jobs: SimpleQueue[tuple[dict[str, Any], Finish] | None] = SimpleQueue()
        self.finished: deque[tuple[Finish, wsgi.Answer | None, BaseException | None]] = deque()
        self.wake_pending = False
        self.threads = [
            threading.Thread(target=self._serve, name=f"serving-{n}", daemon=True)
            for n in range(count)
        ]
        for thread in self.threads:
            thread.start()

    def submit(self, env: dict[str, Any], finish: Finish) -> None:
        """Run the app on `env` in a serving thread; `finish` then runs on the loop."""
        self.jobs.put((env, finish))

    def _serve(self) -> None:
        while (job := self.jobs.get()) is not _STOP:
            env, finish = job
            try:
                answer, error = wsgi.call(self.app, env), None
            except Exception as exc:  # the loop logs it and answers 500
                answer, error = None, exc
            self.finished.append((finish, answer, error))
            if not self.wake_pending:
                # the flag is cleared before the loop drains, so nothing appended after a
                # drain began can be missed; at worst the loop wakes once for nothing
                self.wake_pending = True
                self.loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        self.wake_pending = False
        while self.finished:
            finish, answer, error = self.finished.popleft()
            finish(answer, error)

    def stop(self) -> None:
        """Let each thread finish its job in hand, then end."""
        for _ in self.threads:
            self.jobs.put(_STOP)
