"""One client connection: read a request with deadlines, refuse what must be refused before
the app runs, hand a complete request to a serving thread, write its answer.

A connection is in one of four phases, each with its own timer: idle (between requests:
keep-alive, closed silently), head (from a request's first byte to the end of its headers:
408), body (to the end of the body: 408) and busy (the app runs; no timer, reading paused so
that a pipelining client cannot queue work).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from time import time
from typing import Any, Protocol

import httptools

from infra.local.edge import wsgi
from infra.local.edge.limits import Limits
from infra.local.edge.threads import ServingThreads
from shopcore import errors
from shopcore.platform import admission, http, jsonio

log = logging.getLogger("infra.local.edge")

HTTP_VERSIONS = ("1.0", "1.1")
# How long a refused client may go on sending before its connection is closed.
LINGER_SECONDS = 2.0
# How often deadlines are checked: a 408 comes at most this late.
DEADLINE_TICK_SECONDS = 0.25
# Complete requests a pipelining client may queue before the edge stops reading from it.
MAX_QUEUED_REQUESTS = 8
NEVER = float("inf")
# Hop-by-hop headers are the edge's to write, never the app's.
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length"})


class Admit(Protocol):
    """An app's checks of a request line and its headers (`header(b"content-type")`), before
    its body is read: the refusal it earns (404, 405, 415, ...) or None."""

    def __call__(
        self, method: str, path: str, header: Callable[[bytes], str | None]
    ) -> errors.ShopError | None: ...


class MayWait(Protocol):
    """Whether the app may sleep on a request before answering it (a query that waits for a
    consistency token), from its request line and headers."""

    def __call__(self, method: str, path: str, header: Callable[[bytes], str | None]) -> bool: ...


@dataclass
class Edge:
    """What every connection of one worker process shares. Without serving threads the event
    loop's own thread runs the app (a port of one serving thread per process): a request
    then costs no hand-off between threads, and it still runs only once it has fully
    arrived, so slow clients hold nothing; while it runs, the loop reads nothing else.
    Requests the app says may wait run on threads of their own (`waiting`, started on first
    use), so a sleeping request holds neither the loop nor a serving thread. While every one
    of those threads is taken, a request that may wait is answered 503 with Retry-After at
    once: queued behind sleepers it would wait longer than it asked (Prefer: wait)."""

    app: wsgi.WSGIApp
    admit: Admit | None
    limits: Limits
    threads: ServingThreads | None
    address: tuple[str, int]
    connections: set[Connection] = field(default_factory=set)
    may_wait: MayWait | None = None
    waiting: ServingThreads | None = None
    waiting_taken: int = 0  # requests on `waiting` now (counted on the loop's thread)

    def threads_for(self, request: wsgi.Request) -> ServingThreads | None:
        """Where `request` runs: a thread of `waiting`, a serving thread, or (None) here."""
        if self.may_wait is not None and self.may_wait(
            request.method, request.path(), request.header
        ):
            if self.waiting is None:
                self.waiting = ServingThreads(
                    self.limits.waiting_threads, self.app, asyncio.get_running_loop()
                )
            return self.waiting
        return self.threads

    def stop_threads(self) -> None:
        for pool in (self.threads, self.waiting):
            if pool is not None:
                pool.stop()

    async def expire_deadlines(self) -> None:
        """One clock for every connection's deadline, instead of a timer per phase of every
        request (three per request cost a measurable share of the loop,
        BENCHMARKS.md#edge-loop-thread): each connection only notes when its current phase
        ends, and this sweep acts on the ones past it."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(DEADLINE_TICK_SECONDS)
            now = loop.time()
            for connection in [c for c in self.connections if c.deadline <= now]:
                connection.expire()


class _Refused(Exception):
    """Raised inside a parser callback to stop reading and answer `error`."""

    def __init__(self, error: errors.ShopError) -> None:
        super().__init__(error.message)
        self.error = error


def error_answer(error: errors.ShopError, *, closing: bool) -> wsgi.Answer:
    body = jsonio.dumps(error.body()).encode()
    headers = [("Content-Type", "application/json"), *error.headers().items()]
    if closing:
        headers.append(("Connection", "close"))
    return wsgi.Answer(f"{error.status} {_REASONS.get(error.status, 'Error')}", headers, body)


_REASONS = {
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Content Too Large",
    414: "URI Too Long",
    415: "Unsupported Media Type",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class Connection(asyncio.Protocol):
    def __init__(self, edge: Edge) -> None:
        self.edge = edge
        self.limits = edge.limits
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.client: tuple[str, int] | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.request: wsgi.Request | None = None  # being read
        self.ready: deque[wsgi.Request] = deque()  # read whole, waiting for their turn
        self.busy = False
        self.head_bytes = 0
        self.expects_body = False
        # when the current phase ends (loop time), and what happens then
        self.deadline = NEVER
        self.on_deadline: Callable[[], None] = _nothing
        self.reading = True
        self.closing = False
        self.discarding = False  # a refusal was sent: what still arrives is dropped
        # the running request's, when it may wait (shopcore/platform/http.py, STOP_WAITING)
        self.stop_waiting: threading.Event | None = None

    # --- the transport's calls ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        self.client = transport.get_extra_info("peername")
        self.edge.connections.add(self)
        self._arm(self.limits.keep_alive_seconds, self._close)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.stop_waiting is not None:
            self.stop_waiting.set()  # nobody to answer: free its thread
        self.edge.connections.discard(self)
        self._disarm()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        if self.discarding:
            return
        if self.request is not None and not self.expects_body:
            self.head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            refused = exc.__context__
            if not isinstance(refused, _Refused):
                raise
            self._refuse(refused.error)
            return
        except httptools.HttpParserUpgrade:
            # an Upgrade (h2c, websocket) is not taken: answer in HTTP/1.1, then close
            for request in self.ready:
                request.keep_alive = False
        except httptools.HttpParserError as exc:
            self._refuse(errors.InvalidInput(f"malformed HTTP request: {exc}"))
            return
        limit = self.limits.max_url_bytes + self.limits.max_header_bytes
        if self.request is not None and not self.expects_body and self.head_bytes > limit:
            # the parser keeps a header it has not finished in memory: cap it here
            self._refuse(_headers_too_large(self.limits))
            return
        self._next()

    def eof_received(self) -> bool:
        """The client will send no more. A request cut short is refused, never run; one
        already read is still answered before the connection closes."""
        if self.discarding:
            self._close()
            return False
        if self.request is not None:
            where = "its body" if self.expects_body else "its headers"
            self._refuse(errors.InvalidInput(f"the request ended before {where} did"))
            return True
        self.closing = True
        if self.stop_waiting is not None:
            # a request that waits (for the read models) stops: a client that closed (or
            # only half-closed) its side gets the answer it would get when the wait ran out
            self.stop_waiting.set()
        # keep the connection open to write the answers of what was read, then close
        return self.busy

    # --- the parser's calls ------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.request = wsgi.Request()
        self.head_bytes = 0
        self.expects_body = False
        self._arm(self.limits.header_seconds, self._timed_out, "headers")

    def on_url(self, url: bytes) -> None:
        assert self.request is not None
        self.request.url += url
        if len(self.request.url) > self.limits.max_url_bytes:
            raise _Refused(
                errors.URITooLong(f"the URL is longer than {self.limits.max_url_bytes} bytes")
            )

    def on_header(self, name: bytes, value: bytes) -> None:
        request = self.request
        assert request is not None
        request.headers.append((name, value))
        request.header_bytes += len(name) + len(value)
        if (
            request.header_bytes > self.limits.max_header_bytes
            or len(request.headers) > self.limits.max_headers
        ):
            raise _Refused(_headers_too_large(self.limits))

    def on_headers_complete(self) -> None:
        request = self.request
        assert request is not None
        request.method = self.parser.get_method().decode("latin-1")
        request.version = self.parser.get_http_version()
        request.keep_alive = self.parser.should_keep_alive()
        if request.version not in HTTP_VERSIONS:
            raise _Refused(
                errors.InvalidInput(f"HTTP/{request.version} is not served here; use HTTP/1.1")
            )
        refusal = self._admission(request)
        if refusal is not None:
            raise _Refused(refusal)
        self.expects_body = True
        self._arm(self.limits.body_seconds, self._timed_out, "body")
        if (request.header(b"expect") or "").lower() == "100-continue" and self.transport:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        request = self.request
        assert request is not None
        request.body_bytes += len(body)
        if request.body_bytes > self.limits.max_body_bytes:
            raise _Refused(admission.too_large(self.limits.max_body_bytes))
        request.body.append(body)

    def on_message_complete(self) -> None:
        assert self.request is not None
        self.ready.append(self.request)
        self.request = None
        self.expects_body = False
        self._disarm()

    # --- answering ---------------------------------------------------------------------

    def _admission(self, request: wsgi.Request) -> errors.ShopError | None:
        """The app's refusals first (404, 405, 415: they do not depend on the body's size),
        then the edge's: a declared body over the limit is 413 before a byte of it is read."""
        try:
            if self.edge.admit is not None:
                refusal = self.edge.admit(request.method, request.path(), request.header)
                if refusal is not None:
                    return refusal
            declared = admission.declared_length(request.header(b"content-length"))
        except errors.ShopError as exc:
            return exc
        if declared is not None and declared > self.limits.max_body_bytes:
            return admission.too_large(self.limits.max_body_bytes)
        return None

    def _next(self) -> None:
        """Run the oldest complete request, unless one is running: on a serving thread, or
        on this thread when the port has none."""
        while not self.busy and self.ready and self.transport is not None:
            request = self.ready.popleft()
            env = wsgi.environ(request, self.edge.address, self.client)
            threads = self.edge.threads_for(request)
            if threads is None:
                self._answered(request, _run(self.edge.app, env, request))
                continue
            finish = functools.partial(self._finished, request)
            if threads is self.edge.waiting:
                if self.edge.waiting_taken >= self.limits.waiting_threads:
                    self._answered(request, error_answer(_all_waiting(self.limits), closing=False))
                    continue
                self.edge.waiting_taken += 1
                finish = functools.partial(self._finished_waiting, request)
                # set when its client goes or the server stops: the app stops waiting then
                self.stop_waiting = env[http.STOP_WAITING] = threading.Event()
            self.busy = True
            threads.submit(env, finish)
        if len(self.ready) >= MAX_QUEUED_REQUESTS and self.reading and self.transport:
            self.reading = False
            self.transport.pause_reading()

    def _finished(
        self, request: wsgi.Request, answer: wsgi.Answer | None, error: BaseException | None
    ) -> None:
        self.busy = False
        if answer is None:
            answer = _failed(request, error)
        self._answered(request, answer)
        self._next()

    def _finished_waiting(
        self, request: wsgi.Request, answer: wsgi.Answer | None, error: BaseException | None
    ) -> None:
        self.edge.waiting_taken -= 1
        self.stop_waiting = None
        self._finished(request, answer, error)

    def _answered(self, request: wsgi.Request, answer: wsgi.Answer) -> None:
        if self.transport is None:
            return  # the client left meanwhile
        self._write(answer, request)
        if not request.keep_alive or (self.closing and not self.ready):
            self._close()
            return
        if not self.reading and len(self.ready) < MAX_QUEUED_REQUESTS:
            self.reading = True
            self.transport.resume_reading()
        if self.request is None and not self.ready:
            self._arm(self.limits.keep_alive_seconds, self._close)

    def _write(self, answer: wsgi.Answer, request: wsgi.Request) -> None:
        assert self.transport is not None
        head = [f"HTTP/1.1 {answer.status}", f"Date: {_http_date()}"]
        length = None
        for name, value in answer.headers:
            lower = name.lower()
            if lower == "content-length":
                length = value
            if lower not in _HOP_BY_HOP:
                head.append(f"{name}: {value}")
        if request.method == "HEAD":
            # no body, but the length the GET would have had (the app says it, if anyone)
            if length is not None:
                head.append(f"Content-Length: {length}")
        else:
            head.append(f"Content-Length: {len(answer.body)}")
        if not request.keep_alive:
            head.append("Connection: close")
        elif request.version == "1.0":
            head.append("Connection: keep-alive")
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        self.transport.write(data if request.method == "HEAD" else data + answer.body)

    def _refuse(self, error: errors.ShopError) -> None:
        """Answer `error` for the request being read, without running it, and close: what
        is left of its body is never read."""
        self._disarm()
        request = self.request or wsgi.Request(method="GET")
        self.request = None
        if self.transport is None:
            return
        if self.busy or self.ready:
            # answers go out in order: the earlier requests' first, so just stop here
            for pending in self.ready:
                pending.keep_alive = False
            self.reading = False
            self.transport.pause_reading()
            return
        request.keep_alive = False
        request.method = request.method or "GET"
        self._write(error_answer(error, closing=True), request)
        self._linger()

    def _linger(self) -> None:
        """Close after a refusal without losing it: closing a socket with unread input makes
        the kernel reset the connection, and a client still sending its body would then lose
        the answer. So stop sending, drop what still arrives for a moment, then close."""
        assert self.transport is not None
        self.discarding = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._arm(LINGER_SECONDS, self._close)

    def _timed_out(self, part: str) -> None:
        seconds = self.limits.header_seconds if part == "headers" else self.limits.body_seconds
        self._refuse(
            errors.RequestTimeout(f"the request's {part} did not arrive within {seconds:g} s")
        )

    def _close(self) -> None:
        self._disarm()
        if self.transport is not None:
            self.transport.close()

    # --- timers ------------------------------------------------------------------------

    def _arm(self, seconds: float, callback: Callable[..., Any], *args: Any) -> None:
        self.deadline = self.loop.time() + seconds
        self.on_deadline = functools.partial(callback, *args) if args else callback

    def _disarm(self) -> None:
        self.deadline = NEVER

    def expire(self) -> None:
        """The current phase's deadline has passed (Edge.expire_deadlines)."""
        self.deadline = NEVER
        self.on_deadline()

    def shutdown(self) -> None:
        """Stop serving (the process is stopping): close at once unless a request runs,
        else once it is answered. A request still being read is dropped unanswered, as a
        closed connection tells any HTTP client to retry it."""
        self.closing = True
        if self.stop_waiting is not None:
            self.stop_waiting.set()  # a request waiting for the read models answers 503 now
        if not self.busy:
            self._close()


def _run(app: wsgi.WSGIApp, env: dict[str, Any], request: wsgi.Request) -> wsgi.Answer:
    try:
        return wsgi.call(app, env)
    except Exception:
        return _failed(request)


def _failed(request: wsgi.Request, error: BaseException | None = None) -> wsgi.Answer:
    """The 500 for an app that raised (`error`, or the exception being handled)."""
    request.keep_alive = False
    log.error(
        "unhandled error serving %s %r",
        request.method,
        request.url[:200],
        exc_info=error if error is not None else True,
    )
    return error_answer(errors.ShopError("internal error"), closing=True)


def _nothing() -> None:
    pass


# When a request that may wait finds every waiting thread taken: try again in this many seconds.
ALL_WAITING_RETRY_AFTER_SECONDS = 1


def _all_waiting(limits: Limits) -> errors.ShopError:
    return errors.RetryLater(
        503,
        f"{limits.waiting_threads} requests are already waiting here (EDGE_WAITING_THREADS);"
        " retry later",
        retry_after=ALL_WAITING_RETRY_AFTER_SECONDS,
    )


def _headers_too_large(limits: Limits) -> errors.ShopError:
    return errors.HeaderFieldsTooLarge(
        f"the request's headers exceed {limits.max_header_bytes} bytes"
        f" or {limits.max_headers} fields"
    )


_date_cache: tuple[int, str] = (0, "")


def _http_date() -> str:
    """The Date header, formatted once a second."""
    global _date_cache
    now = int(time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True))
    return _date_cache[1]
