"""Idempotency keys (CONTRACT.md, "Safe retries: Idempotency-Key"): what a command needs to be
retried safely.

The key is claimed in the command's own statement, before it locks or writes anything, and
stored with a fingerprint of the request and the answer it gets (infra/migrations/write/
0005_idempotency_keys.sql): so it commits exactly when the write does, and a refused request
stores nothing. This module checks the header, computes the fingerprint, and turns what the
database says about a held key into a replay or a 422.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from psycopg.types.json import Jsonb

from shopcore import errors
from shopcore.platform.config import settings

HEADER = "Idempotency-Key"
MAX_LENGTH = 255
# How long a request waits for another one in flight with its key before it is told 409.
WAIT_FOR_HOLDER = timedelta(seconds=10)
RETRY_AFTER_SECONDS = 1
CREATED = 201  # the one status a key is stored with: refusals store nothing


@dataclass(frozen=True)
class IdempotencyKey:
    value: str
    scope: str = ""  # a digest of the caller's API key when the API has keys


@dataclass(frozen=True)
class Accepted:
    """A command's successful answer: first time, or replayed from its key."""

    body: dict[str, Any]
    token: str
    replayed: bool = False
    status: int = 201
    headers: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        headers = {"X-Consistency-Token": self.token}
        if self.replayed:
            headers["Idempotent-Replayed"] = "true"
        object.__setattr__(self, "headers", headers)

    def answer(self) -> tuple[int, dict[str, Any], dict[str, str]]:
        """As an HTTP function's handler returns it (shopcore/platform/http.py)."""
        return self.status, self.body, self.headers


def from_header(value: str | None, api_key: str | None) -> IdempotencyKey | None:
    """The request's key (None without the header): 1 to 255 visible ASCII characters, no
    spaces; anything else is InvalidInput (400). With API keys on, keys are per API key."""
    if value is None:
        return None
    if not 1 <= len(value) <= MAX_LENGTH or not all("\x21" <= c <= "\x7e" for c in value):
        raise errors.InvalidInput(
            f"{HEADER}: must be 1 to {MAX_LENGTH} visible ASCII characters without spaces",
            field=HEADER,
        )
    scope = hashlib.sha256(api_key.encode()).hexdigest()[:32] if api_key else ""
    return IdempotencyKey(value, scope)


def fingerprint(route: str, loaded: dict[str, Any]) -> bytes:
    """SHA-256 of the route and the body as the API read it (validated: money as cents, names
    trimmed), serialized canonically: whitespace, member order and number spelling (999,
    999.0, 9.99E2) of the request do not change it."""
    canonical = json.dumps([route, loaded], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).digest()


def statement_arguments(
    key: IdempotencyKey | None, route: str, loaded: dict[str, Any], answer: dict[str, Any]
) -> tuple[Any, ...]:
    """The key's arguments of store_product and place_order: scope, key, route, fingerprint,
    status, answer (the statement adds its consistency token), ttl, wait; all NULL without a
    key."""
    if key is None:
        return (None,) * 8
    return (
        key.scope,
        key.value,
        route,
        fingerprint(route, loaded),
        CREATED,
        Jsonb(answer),
        timedelta(seconds=settings().idempotency_ttl_seconds),
        WAIT_FOR_HOLDER,
    )


def replay(held: tuple[Any, ...], route: str, loaded: dict[str, Any]) -> Accepted:
    """The answer for a request whose key an earlier success holds: that success again, or
    KeyReused (422) when this request is another route or body."""
    held_route, held_fingerprint, status, body = held
    if held_route != route or bytes(held_fingerprint) != fingerprint(route, loaded):
        raise errors.KeyReused(
            f"{HEADER}: this key was already used for a different request "
            f"({held_route}, another body); use a new key for a new request",
            field=HEADER,
        )
    return Accepted(body=body, token=body["consistencyToken"], replayed=True, status=status)


def key_in_use() -> errors.RetryLater:
    """The answer when the request holding the key did not finish within WAIT_FOR_HOLDER."""
    return errors.RetryLater(
        409,
        f"{HEADER}: a request with this key is still in progress; retry later",
        retry_after=RETRY_AFTER_SECONDS,
        field=HEADER,
    )
