"""How long and how large a request may be at the edge; every figure can be set in the
environment (`.env.example` lists them with these defaults)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from shopcore.platform.config import settings


@dataclass(frozen=True)
class Limits:
    # From a request's first byte to the end of its headers, then from there to the end of
    # its body: past either, the client gets 408 and nothing runs.
    header_seconds: float = 10.0
    body_seconds: float = 10.0
    # How long an idle keep-alive connection stays open between requests.
    keep_alive_seconds: float = 5.0
    max_url_bytes: int = 8 * 1024  # longer: 414
    max_header_bytes: int = 16 * 1024  # request line and headers together; more: 431
    max_headers: int = 100  # more: 431
    max_body_bytes: int = 64 * 1024  # more: 413 (MAX_BODY_BYTES, shared with the functions)
    # Threads per worker process for requests the app says may wait (a query with a
    # consistency token): they sleep, so they must not hold the loop or the serving threads.
    # While every one is taken, another such request is answered 503 with Retry-After at once:
    # queued behind sleeping ones, it would wait longer than its Prefer: wait asked.
    waiting_threads: int = 256

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Limits:
        return cls(
            header_seconds=float(env.get("REQUEST_HEADER_TIMEOUT_SECONDS", cls.header_seconds)),
            body_seconds=float(env.get("REQUEST_BODY_TIMEOUT_SECONDS", cls.body_seconds)),
            keep_alive_seconds=float(env.get("KEEP_ALIVE_SECONDS", cls.keep_alive_seconds)),
            max_url_bytes=int(env.get("MAX_URL_BYTES", cls.max_url_bytes)),
            max_header_bytes=int(env.get("MAX_HEADER_BYTES", cls.max_header_bytes)),
            max_body_bytes=settings().max_body_bytes,
            waiting_threads=int(env.get("EDGE_WAITING_THREADS", cls.waiting_threads)),
        )
