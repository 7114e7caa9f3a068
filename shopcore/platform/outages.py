"""Failures that mean "a dependency is down", not "this input is bad".

Event-triggered functions answer them with 503 so their trigger retries the same work later
instead of counting a failed delivery against it (and without a stack trace in the log).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pika.exceptions
import psycopg

# Errors that mean "the broker is unreachable or dropped us": retry later, on a new connection.
BROKER_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    pika.exceptions.AMQPConnectionError,
    pika.exceptions.AMQPChannelError,
    pika.exceptions.StreamLostError,
    ConnectionError,
    OSError,
)
UNAVAILABLE: tuple[type[BaseException], ...] = (
    psycopg.OperationalError,
    *BROKER_CONNECTION_ERRORS,
)


def answer_503(errorhandler: Callable[[type[BaseException]], Callable[[Any], Any]]) -> None:
    """Register, with functions-framework's `errorhandler`, a 503 answer for every outage."""
    for exception in UNAVAILABLE:
        errorhandler(exception)(lambda exc: ("dependency unavailable", 503))
