"""The API gateway of the local emulation: one WSGI app per port, in-process.

Each function is loaded through functions-framework's `create_app`, exactly as it would be
served alone; the dispatcher only picks which app answers a path. No proxy hop: a request
costs what it would cost on the function itself.

    granian --interface wsgi --factory infra.local.gateway:command_port   # POST /api/products,
                                                                          # POST /api/orders
    granian --interface wsgi --factory infra.local.gateway:query_port     # GET /api/analytics/*
Both answer GET /health. `infra/local/http_server.py` builds these command lines.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable
from typing import Any

import functions_framework

from infra.functions import FUNCTIONS, Function
from shopcore import http, jsonio
from shopcore.config import settings

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def load(function: Function) -> WSGIApp:
    return functions_framework.create_app(
        function.target, str(function.source), function.signature_type
    )


def _json(start_response: Callable[..., Any], status: str, body: dict[str, Any]) -> list[bytes]:
    data = jsonio.dumps(body).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]


class Gateway:
    """Routes by path prefix to the function apps of one port; /health and /openapi.json (the
    port's API document, which each of its functions serves) to the first of them."""

    def __init__(self, port: str) -> None:
        functions = [f for f in FUNCTIONS if f.port == port]
        self.routes = [(path, load(f)) for f in functions for _method, path in f.routes]
        self.health_app = self.routes[0][1]

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        refused = _over_the_body_limit(environ, start_response)
        if refused is not None:
            return refused
        path = environ.get("PATH_INFO", "")
        if path.rstrip("/") in ("/health", "/openapi.json"):  # every function answers these
            return buffered(self.health_app(environ, start_response))
        for prefix, app in self.routes:
            if path == prefix or path.startswith(prefix + "/"):
                return buffered(app(environ, start_response))
        return _json(start_response, "404 Not Found", {"error": f"no such endpoint: {path}"})


def _over_the_body_limit(
    environ: dict[str, Any], start_response: Callable[..., Any]
) -> list[bytes] | None:
    """The payload limit an API gateway enforces, before functions-framework sees the request:
    functions-framework reads every body to its end before answering (its `read_request`
    hook), so without this a 200 MiB POST was held in the worker's memory (RSS 49 -> 254 MiB)
    and its 413 sent only once it was all uploaded. A declared length over MAX_BODY_BYTES is
    refused at once; a body without one (chunked) is cut one byte past the limit, so the
    function sees that it is too large and answers 413 itself."""
    limit = settings().max_body_bytes
    length = environ.get("CONTENT_LENGTH") or ""
    if length.isdigit() and int(length) > limit:
        return _json(start_response, "413 Payload Too Large", http.too_large(limit).body())
    if not length and "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        environ["wsgi.input"] = _CappedInput(environ["wsgi.input"], limit + 1)
    return None


class _CappedInput:
    """A request body that ends after `cap` bytes, or where the body itself ends."""

    def __init__(self, stream: Any, cap: int) -> None:
        self._stream = stream
        self._left = cap

    def _size(self, size: int | None) -> int:
        return self._left if size is None or size < 0 else min(size, self._left)

    def read(self, size: int | None = -1) -> bytes:
        data = self._stream.read(self._size(size)) if self._left > 0 else b""
        self._left -= len(data)
        return data

    def readline(self, size: int | None = -1) -> bytes:
        data = self._stream.readline(self._size(size)) if self._left > 0 else b""
        self._left -= len(data)
        return data


def buffered(body: Iterable[bytes]) -> list[bytes]:
    """The answer as one chunk in a list (every answer here is a small JSON document). Flask
    returns an iterator, which granian drains with a round trip between Rust and Python per
    chunk: that was 15 % of a command-port process's CPU under load (py-spy --gil); a list
    it writes in one call. Closing the iterator ends Flask's request context, as WSGI asks."""
    if isinstance(body, list):
        return body
    try:
        return [b"".join(body)]
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()


def _serving(gateway: Gateway) -> Gateway:
    """Freeze what loading the functions allocated, so the garbage collector's full passes
    stop re-scanning it while requests are served: with it, analytics GETs at c32 had a
    p99.9 of 21-30 ms against 61-68 ms without (two A/B pairs, BENCHMARKS.md)."""
    gc.collect()
    gc.freeze()
    return gateway


def command_port() -> Gateway:
    """The command port's app (the server calls this factory once per worker process)."""
    return _serving(Gateway("command"))


def query_port() -> Gateway:
    """The query port's app (the server calls this factory once per worker process)."""
    return _serving(Gateway("query"))
