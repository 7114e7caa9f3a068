"""What every HTTP function shares: JSON bodies in, JSON answers out, one error shape.

A function's entry point is `respond(request, handler, function)`, `function` its routes
(shopcore/openapi/routes.py): it answers
GET .../health and GET .../openapi.json (its API's document) and CORS preflights itself,
refuses what shopcore/admission refuses before the body is read, turns every ShopError into its
status and `{"error": ...}`, and never lets a stack trace reach a client.
"""

from __future__ import annotations

import hmac
import io
import logging
import threading
from collections.abc import Callable
from typing import Any

import flask
import psycopg
from werkzeug.exceptions import ClientDisconnected, HTTPException

from shopcore import errors, openapi
from shopcore.openapi.routes import HttpFunction
from shopcore.platform import admission, cors, jsonio, logs
from shopcore.platform.config import settings

log = logging.getLogger("shopcore.platform.http")

# A handler's answer: status and JSON body, and the headers it must carry, if any.
Answer = tuple[int, Any] | tuple[int, Any, dict[str, str]]
Handler = Callable[[flask.Request], Answer]


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> flask.Response:
    return flask.Response(
        jsonio.dumps(body), status=status, mimetype="application/json", headers=headers
    )


def read_json(request: flask.Request) -> Any:
    """The request body as JSON (numbers as Decimal), within the size limit. The media type
    and the declared length were checked before (`respond`, shopcore/admission)."""
    limit = settings().max_body_bytes
    declared = request.content_length
    raw = _declared_body(request, declared) if declared is not None else _streamed_body(request)
    if len(raw) > limit:
        raise admission.too_large(limit)
    if declared is not None and len(raw) < declared:
        # the client stopped sending (or closed) before the end: never act on part of a body
        raise errors.InvalidInput(
            f"request body ended before its Content-Length ({declared} bytes)"
        )
    if not raw.strip():
        raise errors.InvalidInput("request body is empty; expected a JSON object")
    try:
        return jsonio.loads(raw)
    except jsonio.UnreadableNumber as exc:
        located = {"field": exc.path} if exc.path else {}
        raise errors.InvalidInput(str(exc), **located) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.InvalidInput(f"request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise errors.InvalidInput("request body is nested too deeply") from None


def _declared_body(request: flask.Request, declared: int) -> bytes:
    """A body of declared length (admission has held it to the limit), read straight from the
    WSGI input, which is then left empty. Through werkzeug's stream, a body shorter than its
    Content-Length raises when functions-framework drains the request after the answer (its
    `read_request` hook), turning our 400 into a 500."""
    stream, raw = request.environ["wsgi.input"], b""
    while len(raw) < declared:
        chunk = stream.read(declared - len(raw))
        if not chunk:
            break
        raw += chunk
    request.environ["wsgi.input"] = io.BytesIO()
    request.environ["CONTENT_LENGTH"] = "0"
    return raw


def _streamed_body(request: flask.Request) -> bytes:
    """A body without Content-Length (chunked): one byte past the limit at most, so it cannot
    stream forever."""
    try:
        return request.stream.read(settings().max_body_bytes + 1)
    except ClientDisconnected:
        return b""


def respond(request: flask.Request, handler: Handler, function: HttpFunction) -> flask.Response:
    """Run `handler(request) -> (status, body)` for a request to one of the function's methods
    (HEAD is answered wherever GET is), shape every outcome as JSON, log one line: at DEBUG for
    a success (the hot path: formatting a line is a measurable share of a GET's CPU,
    BENCHMARKS.md#success-log-level, and platforms log every request themselves), INFO for a
    4xx, ERROR for a 5xx."""
    with logs.invocation(function.name, method=request.method, path=request.path) as record:
        response = _answer(request, handler, function)
        cors.decorate(request, response)
        status = response.status_code
        record["status"] = status
        record["outcome"] = "ok" if status < 500 else "error"
        if status < 400:
            record["level"] = logging.DEBUG
        return response


def _answer(request: flask.Request, handler: Handler, function: HttpFunction) -> flask.Response:
    try:
        meta = _meta_document(request, function)
        methods = ("GET",) if meta is not None else function.methods
        admission.admit(
            request.method,
            methods,
            request.headers.get("Content-Type"),
            request.headers.get("Content-Length"),
            settings().max_body_bytes,
        )
        if request.method == "OPTIONS":
            return flask.Response(status=204, headers=cors.preflight(request, methods))
        if meta is not None:
            return json_response(200, meta())
        return json_response(*handler(request))
    except errors.ShopError as exc:
        return json_response(exc.status, exc.body(), exc.headers())
    except psycopg.OperationalError as exc:
        log.warning("database unavailable: %s", exc)
        return json_response(
            503, {"error": "the database is unavailable; retry later"}, {"Retry-After": "1"}
        )
    except HTTPException as exc:
        return json_response(exc.code or 400, {"error": exc.description})
    except Exception:
        log.exception("unhandled error serving %s %s", request.method, request.path)
        return json_response(500, {"error": "internal error"})


def _meta_document(request: flask.Request, function: HttpFunction) -> Callable[[], Any] | None:
    """What every function answers besides its own routes: .../health and .../openapi.json
    (its API's document)."""
    meta = admission.meta_document(request.path)
    if meta == "health":
        return lambda: {"status": "ok"}
    if meta == "openapi":
        return lambda: openapi.document(function.api)
    return None


def json_errors(errorhandler: Callable[[type[Exception]], Callable[[Any], Any]]) -> None:
    """Make the framework's own errors JSON too (e.g. the 404 Flask gives a path its routing
    cannot match, such as one with a newline), via functions-framework's `errorhandler`."""
    errorhandler(HTTPException)(
        lambda exc: json_response(exc.code or 500, {"error": exc.description or exc.name})
    )


def require_api_key(request: flask.Request) -> str | None:
    """When COMMAND_API_KEYS is set, the request must carry one of its keys, as
    `X-API-Key: <key>` or `Authorization: Bearer <key>`; otherwise 401 and nothing happens.
    Returns the key it carried (None when the API has no keys)."""
    accepted = settings().command_api_keys
    if not accepted:
        return None
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
    return offered


# A WSGI environ key a server may set to a threading.Event it sets when a request that waits
# should stop waiting: its client has gone, or the server is stopping (infra/local/edge does).
STOP_WAITING = "shop.stop_waiting"


def stop_waiting(request: flask.Request) -> threading.Event | None:
    """The event that ends this request's waits early, when its server provides one."""
    event = request.environ.get(STOP_WAITING)
    return event if isinstance(event, threading.Event) else None


# Kept for answering after a wait ends (the query, the answer): a request that would wait past
# its platform's limit (Lambda's time and API Gateway's 30 s; Cloud Run's timeout) waits this
# much less.
ANSWER_MARGIN_SECONDS = 2.0


def seconds_left(request: flask.Request) -> float | None:
    """How long the request may still wait before it must answer: on AWS Lambda (behind
    apig-wsgi, shopcore/platform/aws_lambda.py) what the invocation has left, elsewhere the
    platform's request timeout when the environment gives one (CLOUD_RUN_TIMEOUT_SECONDS),
    less a margin; None where no limit is known."""
    context = request.environ.get("apig_wsgi.context")
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        remaining_ms: int = context.get_remaining_time_in_millis()
        return max(0.0, remaining_ms / 1000 - ANSWER_MARGIN_SECONDS)
    limit = settings().request_timeout_seconds
    return None if limit is None else max(0.0, limit - ANSWER_MARGIN_SECONDS)
