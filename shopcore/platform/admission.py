"""What a request must satisfy before its body is read: its method, its media type, its size.

Both the functions (on a platform nothing else checks) and the local gateway (before it reads
a body off the socket) call `admit`, so they refuse in the same order, the contract's: a known
path with another method 405 (with `Allow`), then 415, then 413. The body's own 400s come
later, from the function.
"""

from __future__ import annotations

from collections.abc import Iterable

from shopcore import errors
from shopcore.openapi import routes

JSON_MEDIA_TYPE = "application/json"
# Methods whose body the API reads: they must declare it as JSON.
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
# Digits enough for any body size; a longer Content-Length is refused before int() sees it.
_MAX_LENGTH_DIGITS = 18


def meta_document(path: str) -> str | None:
    """Which of the documents every function answers besides its own routes `path` asks for
    (shopcore/openapi/routes.py, META): "health" (.../health), "openapi" (.../openapi.json, its
    API's document), or None."""
    path = path.rstrip("/")
    return next((r.endpoint for r in routes.META if path.endswith(r.path)), None)


def methods(declared: Iterable[str]) -> tuple[str, ...]:
    """The methods a route answers: those declared, and HEAD wherever GET is."""
    answered = list(dict.fromkeys(declared))
    if "GET" in answered and "HEAD" not in answered:
        answered.insert(answered.index("GET") + 1, "HEAD")
    return tuple(answered)


def admit(
    method: str,
    allowed: Iterable[str],
    content_type: str | None,
    content_length: str | None,
    limit: int,
) -> None:
    """Raise the refusal a request earns from its request line and headers, or return.
    OPTIONS always passes: it is a CORS preflight, which the function answers (shopcore/cors)."""
    answered = methods(allowed)
    if method != "OPTIONS" and method not in answered:
        raise errors.MethodNotAllowed(
            f"method {method} is not allowed here", allowed=list(answered)
        )
    if method in _WITH_BODY and not is_json(content_type):
        sent = (content_type or "no Content-Type")[:100]
        raise errors.UnsupportedMediaType(
            f"request body must be sent as {JSON_MEDIA_TYPE}, not {sent!r}",
            expected=JSON_MEDIA_TYPE,
        )
    declared = declared_length(content_length)
    if declared is not None and declared > limit:
        raise too_large(limit)


def is_json(content_type: str | None) -> bool:
    """`application/json`, in any letter case, with or without parameters such as charset.
    Browsers send text/plain and form types cross-site without a preflight; refusing them is
    what keeps another site's page from posting to this API."""
    if not content_type:
        return False
    return content_type.split(";", 1)[0].strip().lower() == JSON_MEDIA_TYPE


def declared_length(content_length: str | None) -> int | None:
    """The body length a request declares (None when it declares none)."""
    if content_length is None or content_length == "":
        return None
    text = content_length.strip()
    if not text.isascii() or not text.isdigit():
        raise errors.InvalidInput("Content-Length must be a non-negative integer")
    if len(text.lstrip("0")) > _MAX_LENGTH_DIGITS:
        return int(10**_MAX_LENGTH_DIGITS)  # more than any limit
    return int(text)


def too_large(limit: int) -> errors.PayloadTooLarge:
    """The 413 for a body over `limit` bytes (the functions' and the local gateway's)."""
    return errors.PayloadTooLarge(f"request body is larger than {limit} bytes", limit=limit)
