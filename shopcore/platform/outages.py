"""Failures that mean "a dependency is down", not "this input is bad".

Event-triggered functions answer them with 503 so their trigger retries the same work later
instead of counting a failed delivery against it (and without a stack trace in the log).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

from shopcore.pipeline.broker import CONNECTION_ERRORS

UNAVAILABLE: tuple[type[BaseException], ...] = (psycopg.OperationalError, *CONNECTION_ERRORS)


def answer_503(errorhandler: Callable[[type[BaseException]], Callable[[Any], Any]]) -> None:
    """Register, with functions-framework's `errorhandler`, a 503 answer for every outage."""
    for exception in UNAVAILABLE:
        errorhandler(exception)(lambda exc: ("dependency unavailable", 503))
