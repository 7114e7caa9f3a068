"""One exception type per failure a client can act on; each knows its HTTP status."""

from __future__ import annotations

from typing import Any


class ShopError(Exception):
    """A failure with a status code and a JSON body `{"error": message, **details}`."""

    status = 500

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def body(self) -> dict[str, Any]:
        return {"error": self.message, **self.details}

    def headers(self) -> dict[str, str]:
        """Headers the answer must carry besides its content type."""
        return {}


class InvalidInput(ShopError):
    """Malformed request: not JSON, wrong types, missing fields, out of range, cut short."""

    status = 400


class UnknownProduct(ShopError):
    status = 400


class InsufficientStock(ShopError):
    status = 409


class NotFound(ShopError):
    status = 404


class MethodNotAllowed(ShopError):
    status = 405

    def __init__(self, message: str, *, allowed: list[str]) -> None:
        super().__init__(message, allowed=allowed)

    def headers(self) -> dict[str, str]:
        return {"Allow": ", ".join(self.details["allowed"])}


class RequestTimeout(ShopError):
    """The client did not send its headers or body within the deadline."""

    status = 408


class PayloadTooLarge(ShopError):
    status = 413


class URITooLong(ShopError):
    status = 414


class UnsupportedMediaType(ShopError):
    status = 415


class HeaderFieldsTooLarge(ShopError):
    status = 431


class Forbidden(ShopError):
    """A cross-origin preflight from an origin (or for a method) that is not allowed."""

    status = 403


class Unauthorized(ShopError):
    status = 401


class KeyReused(ShopError):
    """An Idempotency-Key sent again with another route or body."""

    status = 422


class RetryLater(ShopError):
    """Try the same request again in `retry_after` seconds: an Idempotency-Key still held by a
    request in flight (409), a consistency token not yet reached by the read models (503)."""

    def __init__(self, status: int, message: str, *, retry_after: int, **details: Any) -> None:
        super().__init__(message, **details)
        self.status = status
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}
