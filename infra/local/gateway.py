"""The API gateway of the local emulation: one WSGI app per port, in-process.

Each function is loaded through functions-framework's `create_app`, exactly as it would be
served alone; the dispatcher only picks which app answers a path. No proxy hop: a request
costs what it would cost on the function itself. The edge server (infra/local/edge) serves it:

    python -m infra.local.edge infra.local.gateway:command_port ...  # POST /api/products,
                                                                     # POST /api/orders
    python -m infra.local.edge infra.local.gateway:query_port ...    # GET /api/analytics/*
Both answer GET /health. `infra/local/http_server.py` builds these command lines.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from infra.functions import FUNCTIONS
from infra.triggers.invoke import WSGIApp, load
from shopcore import errors
from shopcore.openapi.routes import META
from shopcore.platform import admission, jsonio
from shopcore.platform.config import settings
from shopcore.read import consistency

# Every function answers these itself (shopcore/platform/http.py); the gateway sends them to
# the first.
META_PATHS = tuple(route.path for route in META)
_TOKEN_HEADER = consistency.TOKEN_HEADER.lower().encode()


@dataclass(frozen=True)
class Route:
    prefix: str
    methods: tuple[str, ...]
    app: WSGIApp

    def matches(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.prefix + "/")


class Gateway:
    """Routes by path prefix to the function apps of one port; /health and /openapi.json (the
    port's API document, which each of its functions serves) to the first of them."""

    def __init__(self, port: str) -> None:
        self.port = port
        self.routes = [
            Route(f.http.prefix, f.http.methods, load(f))
            for f in FUNCTIONS
            if f.http is not None and f.http.api == port
        ]
        self.meta = [Route(r.path, (r.method,), self.routes[0].app) for r in META]

    def route(self, path: str) -> Route | None:
        if path.rstrip("/") in META_PATHS:
            path = path.rstrip("/")
        return next((r for r in (*self.meta, *self.routes) if r.matches(path)), None)

    def admit(
        self, method: str, path: str, header: Callable[[bytes], str | None]
    ) -> errors.ShopError | None:
        """What the edge refuses before reading a body, in the contract's order: an unknown
        path 404, then the function's own checks (405, 415, 413: shopcore/admission)."""
        route = self.route(path)
        if route is None:
            return _no_such_endpoint(path)
        methods = ("GET",) if admission.meta_document(path) else route.methods
        try:
            admission.admit(
                method,
                methods,
                header(b"content-type"),
                header(b"content-length"),
                settings().max_body_bytes,
            )
        except errors.ShopError as exc:
            return exc
        return None

    def may_wait(self, method: str, path: str, header: Callable[[bytes], str | None]) -> bool:
        """A query with a consistency token may sleep until the read models include its
        write: the edge runs it on a thread of its own (infra/local/edge/connection.py)."""
        return self.port == "query" and header(_TOKEN_HEADER) is not None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        route = self.route(environ.get("PATH_INFO", ""))
        if route is not None:
            return route.app(environ, start_response)
        error = _no_such_endpoint(environ.get("PATH_INFO", ""))
        data = jsonio.dumps(error.body()).encode()
        start_response(
            "404 Not Found",
            [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
        )
        return [data]


def _no_such_endpoint(path: str) -> errors.NotFound:
    return errors.NotFound(f"no such endpoint: {path[:200]}")


def _serving(gateway: Gateway) -> Gateway:
    """Freeze what loading the functions allocated, so the garbage collector's full passes
    stop re-scanning it while requests are served: it cut the analytics GETs' p99.9 to about
    a third (BENCHMARKS.md#gc-freeze)."""
    gc.collect()
    gc.freeze()
    return gateway


def command_port() -> Gateway:
    """The command port's app (the server calls this factory once per worker process)."""
    return _serving(Gateway("command"))


def query_port() -> Gateway:
    """The query port's app (the server calls this factory once per worker process)."""
    return _serving(Gateway("query"))
