"""Small WSGI apps for the edge server's own tests (served by `python -m infra.local.edge`)."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from shopcore import errors
from shopcore.platform import http

# Every request the app ran, one line each, so a test can tell that a refused request never ran.
RAN_LOG = "EDGE_TEST_RAN_LOG"
_lock = threading.Lock()


class Echo:
    """Answers what it was asked: method, path, query, body length, the body itself (short),
    and which serving thread ran it. `/sleep?seconds=S` sleeps first; `/crash` raises;
    `/wait?seconds=S` may wait (`may_wait`): up to S seconds, or until the server tells it to
    stop waiting (then it says so as "stopped")."""

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        body = environ["wsgi.input"].read()
        self._note(environ["REQUEST_METHOD"], path)
        if path == "/crash":
            raise RuntimeError("the app failed")
        if path == "/sleep":
            time.sleep(float(environ["QUERY_STRING"].partition("=")[2] or 1))
        stopped = None
        if path == "/wait":
            stop = environ.get(http.STOP_WAITING)
            assert isinstance(stop, threading.Event), "the edge gives a waiting request its event"
            stopped = stop.wait(float(environ["QUERY_STRING"].partition("=")[2] or 1))
        answer = json.dumps(
            {
                "method": environ["REQUEST_METHOD"],
                "path": path,
                "query": environ["QUERY_STRING"],
                "length": len(body),
                "body": body[:100].decode("latin-1"),
                "contentLength": environ.get("CONTENT_LENGTH"),
                "pid": os.getpid(),
                "stopped": stopped,
            }
        ).encode()
        start_response(
            "200 OK",
            [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))],
        )
        return [answer]

    def admit(
        self, method: str, path: str, header: Callable[[bytes], str | None]
    ) -> errors.ShopError | None:
        if path.startswith("/missing"):
            return errors.NotFound(f"no such endpoint: {path}")
        return None

    def may_wait(self, method: str, path: str, header: Callable[[bytes], str | None]) -> bool:
        return path == "/wait"

    @staticmethod
    def _note(method: str, path: str) -> None:
        log = os.environ.get(RAN_LOG)
        if log:
            with _lock, open(log, "a") as f:
                f.write(f"{method} {path}\n")


def echo() -> Echo:
    return Echo()


def broken() -> Echo:
    raise RuntimeError("this app cannot be built")
