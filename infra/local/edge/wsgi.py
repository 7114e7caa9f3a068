"""A fully received request as one WSGI call, made in a serving thread (PEP 3333)."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_to_bytes

import httptools

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass
class Request:
    """One request as the connection reads it; `body` is complete once it is handed over."""

    url: bytes = b""
    method: str = ""
    version: str = "1.1"
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    header_bytes: int = 0
    body: list[bytes] = field(default_factory=list)
    body_bytes: int = 0
    keep_alive: bool = True

    def header(self, name: bytes) -> str | None:
        """The first value of header `name` (lower case), as text."""
        for key, value in self.headers:
            if key.lower() == name:
                return value.decode("latin-1")
        return None

    def path(self) -> str:
        """The path, percent-decoded, as PEP 3333 wants it (bytes read as latin-1)."""
        return unquote_to_bytes(httptools.parse_url(self.url).path or b"/").decode("latin-1")


@dataclass
class Answer:
    status: str
    headers: list[tuple[str, str]]
    body: bytes


def environ(request: Request, server: tuple[str, int], client: tuple[str, int] | None) -> dict:
    parsed = httptools.parse_url(request.url)
    body = b"".join(request.body)
    env: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote_to_bytes(parsed.path or b"/").decode("latin-1"),
        "QUERY_STRING": (parsed.query or b"").decode("latin-1"),
        "SERVER_NAME": server[0],
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": f"HTTP/{request.version}",
        "REMOTE_ADDR": client[0] if client else "",
        "REMOTE_PORT": str(client[1]) if client else "",
        # the body is whole and de-chunked: its length is known, whatever the client sent
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for name, value in request.headers:
        key = name.decode("latin-1").upper().replace("-", "_")
        if key in ("CONTENT_LENGTH", "TRANSFER_ENCODING"):
            continue
        if key != "CONTENT_TYPE":
            key = "HTTP_" + key
        text = value.decode("latin-1")
        env[key] = f"{env[key]},{text}" if key in env else text
    return env


def call(app: WSGIApp, env: dict[str, Any]) -> Answer:
    """Run the app and collect its whole answer (every answer here is a small document)."""
    started: list[Any] = []
    written: list[bytes] = []

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        if exc_info is not None and started:
            raise exc_info[1].with_traceback(exc_info[2])
        started[:] = [status, headers]
        return written.append

    result = app(env, start_response)
    try:
        for chunk in result:
            written.append(chunk)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    status, headers = started
    return Answer(status, headers, b"".join(written))
