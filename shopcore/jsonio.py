"""JSON in and out with money kept exact: numbers parse to Decimal, Decimal prints as a number.

The standard encoder can only print a Decimal through float (losing digits) or as a string
(breaking the contract's "JSON numbers"), so `dumps` walks the value itself.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

# ASCII-only output: a lone surrogate echoed from bad input is escaped instead of failing to
# encode as UTF-8 (which would turn a 400 into a 500).
_plain = json.JSONEncoder(ensure_ascii=True, allow_nan=False)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a valid JSON number")


def loads(text: str | bytes) -> Any:
    """Parse JSON; non-integer numbers become Decimal; NaN and Infinity are rejected."""
    return json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)


def dumps(value: Any) -> str:
    """Compact JSON; Decimal as an exact number, datetime as ISO-8601 UTC."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{_plain.encode(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} cannot be written as JSON")
        return format(value, "f")
    if isinstance(value, datetime):
        return _plain.encode(iso_utc(value))
    return _plain.encode(value)


def storable(text: str) -> bool:
    """Whether Postgres can store `text`: no NUL character, no lone surrogate (JSON allows
    both as escapes, Postgres text and UTF-8 do not)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def iso_utc(moment: datetime) -> str:
    """ISO-8601 in UTC with millisecond precision and a Z suffix."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    """Parse an ISO-8601 timestamp that carries its offset (Z accepted)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no UTC offset")
    return moment
