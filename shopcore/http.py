"""What every HTTP function shares: JSON bodies in, JSON answers out, one error shape.

A function's entry point is `respond(request, handler, function)`: it answers GET .../health and
GET .../openapi.json (its API's document) itself, turns every ShopError into its status and
`{"error": ...}`, and never lets a stack trace reach a client.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from typing import Any

import flask
import psycopg
from werkzeug.exceptions import HTTPException

from shopcore import errors, jsonio, logs, openapi
from shopcore.config import settings

log = logging.getLogger("shopcore.http")

Handler = Callable[[flask.Request], tuple[int, Any]]


def json_response(status: int, body: Any) -> flask.Response:
    return flask.Response(jsonio.dumps(body), status=status, mimetype="application/json")


def too_large(limit: int) -> errors.PayloadTooLarge:
    """The 413 for a body over `limit` bytes (the functions' and the local gateway's)."""
    return errors.PayloadTooLarge(f"request body is larger than {limit} bytes", limit=limit)


def read_json(request: flask.Request) -> Any:
    """The request body as JSON (numbers as Decimal), within the size limit."""
    limit = settings().max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise too_large(limit)
    # Read one byte past the limit so a body without Content-Length cannot stream forever.
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        raise too_large(limit)
    if not raw.strip():
        raise errors.InvalidInput("request body is empty; expected a JSON object")
    try:
        return jsonio.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.InvalidInput(f"request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise errors.InvalidInput("request body is nested too deeply") from None


def respond(request: flask.Request, handler: Handler, function: str) -> flask.Response:
    """Run `handler(request) -> (status, body)`, shape every outcome as JSON, log one line:
    at DEBUG for a success (the hot path: formatting a line cost ~15 % of an analytics GET's
    CPU, and platforms log every request themselves), INFO for a 4xx, ERROR for a 5xx."""
    with logs.invocation(function, method=request.method, path=request.path) as record:
        response = _answer(request, handler, function)
        status = response.status_code
        record["status"] = status
        record["outcome"] = "ok" if status < 500 else "error"
        if status < 400:
            record["level"] = logging.DEBUG
        return response


def _answer(request: flask.Request, handler: Handler, function: str) -> flask.Response:
    try:
        if request.method == "GET" and request.path.rstrip("/").endswith("/health"):
            return json_response(200, {"status": "ok"})
        if request.method == "GET" and request.path.endswith("/openapi.json"):
            return json_response(200, openapi.document(openapi.API_OF[function]))
        status, body = handler(request)
        return json_response(status, body)
    except errors.ShopError as exc:
        return json_response(exc.status, exc.body())
    except psycopg.OperationalError as exc:
        log.warning("database unavailable: %s", exc)
        return json_response(503, {"error": "the database is unavailable; retry later"})
    except HTTPException as exc:
        return json_response(exc.code or 400, {"error": exc.description})
    except Exception:
        log.exception("unhandled error serving %s %s", request.method, request.path)
        return json_response(500, {"error": "internal error"})


def json_errors(errorhandler: Callable[[type[Exception]], Callable[[Any], Any]]) -> None:
    """Make the framework's own errors JSON too (e.g. the 404 Flask gives a path its routing
    cannot match, such as one with a newline), via functions-framework's `errorhandler`."""
    errorhandler(HTTPException)(
        lambda exc: json_response(exc.code or 500, {"error": exc.description or exc.name})
    )


def require_api_key(request: flask.Request) -> None:
    """When COMMAND_API_KEYS is set, the request must carry one of its keys, as
    `X-API-Key: <key>` or `Authorization: Bearer <key>`; otherwise 401 and nothing happens."""
    accepted = settings().command_api_keys
    if not accepted:
        return
    offered = request.headers.get("X-API-Key", "")
    authorization = request.headers.get("Authorization", "")
    if not offered and authorization.lower().startswith("bearer "):
        offered = authorization[7:].strip()
    # compare against every key, in constant time, so timing does not reveal a prefix
    matches = [hmac.compare_digest(offered.encode(), key.encode()) for key in accepted]
    if not offered or not any(matches):
        raise errors.Unauthorized(
            "a valid API key is required (X-API-Key header or Authorization: Bearer)"
        )


def require_method(request: flask.Request, *allowed: str) -> None:
    if request.method not in allowed:
        raise errors.MethodNotAllowed(
            f"method {request.method} is not allowed here", allowed=list(allowed)
        )
