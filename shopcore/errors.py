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


class InvalidInput(ShopError):
    """Malformed request: not JSON, wrong types, missing fields, out of range."""

    status = 400


class UnknownProduct(ShopError):
    status = 400


class InsufficientStock(ShopError):
    status = 409


class NotFound(ShopError):
    status = 404


class MethodNotAllowed(ShopError):
    status = 405


class PayloadTooLarge(ShopError):
    status = 413


class Unauthorized(ShopError):
    status = 401
