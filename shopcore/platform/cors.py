"""Cross-origin requests from browsers: closed unless CORS_ALLOWED_ORIGINS lists the origin.

Closed by default means no `Access-Control-Allow-Origin` on any answer, so a page on another
site can neither read an answer nor pass a preflight; with JSON-only bodies (shopcore/admission)
it cannot send a command without one either.
"""

from __future__ import annotations

import flask

from shopcore import errors
from shopcore.platform.config import settings

# Request headers a browser page may send (the contract's, and W3C trace context).
ALLOWED_HEADERS = (
    "Content-Type, Authorization, X-API-Key, Idempotency-Key, X-Consistency-Token, Prefer, "
    "traceparent, tracestate"
)
# Answer headers a browser page may read besides the CORS-safelisted ones.
EXPOSED_HEADERS = "X-Consistency-Token, Idempotent-Replayed, Retry-After"
PREFLIGHT_MAX_AGE_SECONDS = 600


def allowed_origin(request: flask.Request) -> str | None:
    """The request's Origin when CORS_ALLOWED_ORIGINS lists it (letter case aside)."""
    origin = request.headers.get("Origin")
    if not origin:
        return None
    listed = {o.lower() for o in settings().cors_allowed_origins}
    return origin if origin.rstrip("/").lower() in listed else None


def is_preflight(request: flask.Request) -> bool:
    return (
        request.method == "OPTIONS"
        and "Origin" in request.headers
        and "Access-Control-Request-Method" in request.headers
    )


def preflight(request: flask.Request, methods: tuple[str, ...]) -> dict[str, str]:
    """The headers of a 204 that lets the browser send the real request; 403 when the origin
    or the method it asks for is not allowed. Any other OPTIONS is a 405 (with `Allow`)."""
    if not is_preflight(request):
        raise errors.MethodNotAllowed("method OPTIONS is not allowed here", allowed=list(methods))
    origin = allowed_origin(request)
    if origin is None:
        raise errors.Forbidden(
            f"cross-origin requests from {request.headers['Origin'][:200]!r} are not allowed"
            " (CORS_ALLOWED_ORIGINS)"
        )
    asked = request.headers["Access-Control-Request-Method"]
    if asked not in methods:
        raise errors.Forbidden(f"method {asked[:20]!r} is not allowed here")
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": ", ".join(methods),
        "Access-Control-Allow-Headers": ALLOWED_HEADERS,
        "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_SECONDS),
        "Vary": "Origin",
    }


def decorate(request: flask.Request, response: flask.Response) -> None:
    """Let an allowed origin's page read this answer. When any origin is configured the
    answer depends on Origin, which caches must know (Vary)."""
    if not settings().cors_allowed_origins:
        return
    response.vary.add("Origin")
    origin = allowed_origin(request)
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
