"""One structured (JSON) log line per invocation: function, duration, outcome, and counts."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from shopcore.platform import jsonio

_logger = logging.getLogger("shop.invocations")


def configure() -> None:
    """Plain lines to stderr at LOG_LEVEL (default INFO); idempotent."""
    root = logging.getLogger()
    # AWS Lambda's runtime already puts a handler on the root logger: a second would print
    # every line twice.
    on_lambda = "AWS_LAMBDA_FUNCTION_NAME" in os.environ and root.handlers
    if not on_lambda and not any(getattr(h, "_shop", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._shop = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    level = os.environ.get("LOG_LEVEL", "INFO").upper()
    root.setLevel(level if level in logging.getLevelNamesMapping() else "INFO")
    logging.getLogger("pika").setLevel(logging.WARNING)


def emit(level: int, **fields: Any) -> None:
    if _logger.isEnabledFor(level):
        _logger.log(level, jsonio.dumps(fields))


@contextmanager
def invocation(function: str, **fields: Any) -> Iterator[dict[str, Any]]:
    """Time the block and log it (INFO, ERROR for an error outcome); the block may add fields
    to the yielded dict and lower the level by setting `record["level"]`."""
    record: dict[str, Any] = {"function": function, **fields}
    started = time.perf_counter()
    try:
        yield record
    except Exception as exc:
        record.setdefault("outcome", "error")
        record["error"] = f"{type(exc).__name__}: {exc}"[:500]
        raise
    finally:
        record.setdefault("outcome", "ok")
        record["durationMs"] = round((time.perf_counter() - started) * 1000, 2)
        level = record.pop("level", logging.INFO)
        emit(logging.ERROR if record["outcome"] == "error" else level, **record)
