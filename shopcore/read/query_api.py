"""The query API: path -> parameter checks -> a read-model query.

Its routes are declared in shopcore/openapi/routes.py (ANALYTICS); the router is built from
them, and each route's endpoint names its handler below.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import flask
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule

from shopcore import errors
from shopcore.events.model import MAX_ID as MAX_BIGINT
from shopcore.openapi import routes
from shopcore.platform import http, jsonio
from shopcore.read import consistency, queries

# Path parameters that may hold a slash (a category name may): matched up to the path's fixed
# tail instead of up to the next slash.
_MAY_HOLD_SLASHES = frozenset({"category"})


def _rule(path: str) -> str:
    """A route's path as a werkzeug rule: `{name}` -> `<name>` (or `<path:name>`)."""
    return re.sub(
        r"\{(\w+)\}",
        lambda m: f"<path:{m[1]}>" if m[1] in _MAY_HOLD_SLASHES else f"<{m[1]}>",
        path,
    )


_routes = Map(
    [Rule(_rule(route.path), endpoint=route.endpoint) for route in routes.ANALYTICS.routes],
    strict_slashes=False,
)


_MAX_ID_DIGITS = len(str(MAX_BIGINT))


def parse_id(value: str, name: str) -> int:
    """A path id: ASCII digits only (no sign, space, underscore or other script's digits),
    1..MAX_BIGINT; leading zeros allowed. Its length is checked before int() reads it: int()
    refuses more than 4300 digits with a ValueError and takes other scripts' digits."""
    digits = value.lstrip("0")
    if (
        not 1 <= len(digits) <= _MAX_ID_DIGITS
        or not digits.isascii()
        or not digits.isdigit()
        or int(digits) > MAX_BIGINT
    ):
        raise errors.InvalidInput(
            f"{name}: must be a positive integer at most {MAX_BIGINT}, got {value[:50]!r}",
            field=name,
        )
    return int(digits)


def _category(value: str) -> str:
    if not value.strip() or len(value) > 255 or "\x00" in value:
        raise errors.InvalidInput(
            "category: must be a non-empty name of at most 255 characters", field="category"
        )
    return value


def parse_moment(request: flask.Request, name: str) -> datetime | None:
    """An ISO-8601 query parameter as a UTC datetime (None when absent)."""
    text = request.args.get(name)
    if text is None:
        return None
    try:
        return jsonio.parse_iso(text).astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: outside years 1-9999 once in UTC
        raise errors.InvalidInput(
            f"{name}: must be an ISO-8601 timestamp with offset, e.g. 2026-01-31T10:00:00Z",
            field=name,
        ) from None


def hourly_range(request: flask.Request) -> tuple[datetime, datetime]:
    """The hourly endpoint's `from` and `to` (default: the 24 hours up to now)."""
    end = parse_moment(request, "to") or datetime.now(UTC)
    start = parse_moment(request, "from")
    if start is None:
        try:
            start = end - timedelta(hours=24)
        except OverflowError:
            raise errors.InvalidInput("to: too early to look 24 hours back", field="to") from None
    if start > end:
        raise errors.InvalidInput("from: must not be after to", field="from")
    return start, end


# Each route's endpoint (shopcore/openapi/routes.py) -> its handler: it checks the request's
# parameters (400s come before any wait for a consistency token) and returns the query to run.
Query = Callable[[], dict[str, Any]]
HANDLERS: dict[str, Callable[[flask.Request, Mapping[str, Any]], Query]] = {
    "product_sales": lambda r, a: partial(
        queries.product_sales, parse_id(a["productId"], "productId")
    ),
    "category_revenue": lambda r, a: partial(queries.category_revenue, _category(a["category"])),
    "customer_ltv": lambda r, a: partial(
        queries.customer_lifetime_value, parse_id(a["customerId"], "customerId")
    ),
    "hourly_sales": lambda r, a: partial(queries.hourly_sales, *hourly_range(r)),
    "sync_status": lambda r, a: queries.sync_status,
}


def match(path: str) -> tuple[str, Mapping[str, Any]]:
    """The endpoint `path` asks for and its path parameters; NotFound (404) for none."""
    try:
        endpoint, args = _routes.bind("").match(path)
    except (NotFound, MethodNotAllowed):
        raise errors.NotFound(f"no such endpoint: {path}") from None
    return str(endpoint), args


def dispatch(request: flask.Request) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Answer a query: after the read models include the write of the request's consistency
    token (if any), with the token of what the answer reflects."""
    endpoint, args = match(request.path)
    query = HANDLERS[endpoint](request, args)
    reflects = consistency.read_after(
        request.headers.get(consistency.TOKEN_HEADER),
        request.headers.get("Prefer"),
        http.seconds_left(request),
        http.stop_waiting(request),
    )
    return 200, query(), {consistency.TOKEN_HEADER: reflects}
