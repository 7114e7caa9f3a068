"""JSON in and out with money kept exact: numbers parse to Decimal, Decimal prints as a number.

The standard encoder can only print a Decimal through float (losing digits) or as a string
(breaking the contract's "JSON numbers"), so `dumps` walks the value itself.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

# ASCII-only output: a lone surrogate echoed from bad input is escaped instead of failing to
# encode as UTF-8 (which would turn a 400 into a 500).
_plain = json.JSONEncoder(ensure_ascii=True, allow_nan=False)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a valid JSON number")


class UnreadableNumber(ValueError):
    """A number `loads` cannot represent (an exponent beyond Decimal's range, an integer of more
    digits than int() reads) or a NaN/Infinity. `path` is where it sits, in the form the schemas
    name fields (`items[0].price`); None for a bare top-level value."""

    def __init__(self, path: str | None, problem: str) -> None:
        super().__init__(problem if path is None else f"{_shorten(path, 100)}: {problem}")
        self.path = path


def loads(text: str | bytes) -> Any:
    """Parse JSON; non-integer numbers become Decimal; NaN and Infinity are rejected.

    Every failure is a ValueError: besides malformed JSON, UnreadableNumber for a number that
    cannot be represented, such as `1e99999999999999999999` (Decimal raises InvalidOperation,
    an ArithmeticError) or an integer of more than 4300 digits.
    """
    try:
        return json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise
    except (ValueError, ArithmeticError) as exc:
        # Rare: parse again, marking each unreadable number instead of raising, to say where
        # it is. The common path keeps the C scanner's own int and the bare Decimal type.
        raise _locate(text) or ValueError(f"unreadable number: {exc}") from None


class _Unreadable:
    def __init__(self, problem: str) -> None:
        self.problem = problem


class _Pairs(list[tuple[str, Any]]):  # an object's members in order, duplicates kept
    pass


def _shorten(text: str, limit: int = 24) -> str:
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _lenient_decimal(text: str) -> Decimal | _Unreadable:
    try:
        return Decimal(text)
    except ArithmeticError:
        return _Unreadable(f"number {_shorten(text)} is out of range (exponent too large or small)")


def _lenient_int(text: str) -> int | _Unreadable:
    try:
        return int(text)
    except ValueError:
        digits = len(text.lstrip("-"))
        limit = sys.get_int_max_str_digits()
        return _Unreadable(f"integer of {digits} digits is too long (at most {limit} digits)")


def _locate(text: str | bytes) -> UnreadableNumber | None:
    """The first unreadable number of `text`, in document order, with its path."""
    tree = json.loads(  # malformed JSON after the number: its JSONDecodeError propagates
        text,
        parse_float=_lenient_decimal,
        parse_int=_lenient_int,
        parse_constant=lambda name: _Unreadable(f"{name} is not a valid JSON number"),
        object_pairs_hook=_Pairs,
    )
    stack: list[tuple[Any, str | None]] = [(tree, None)]
    while stack:
        node, path = stack.pop()
        if isinstance(node, _Unreadable):
            return UnreadableNumber(path, node.problem)
        if isinstance(node, _Pairs):
            children = [(v, k if path is None else f"{path}.{k}") for k, v in node]
        elif isinstance(node, list):
            children = [(v, f"{path or ''}[{i}]") for i, v in enumerate(node)]
        else:
            continue
        stack.extend(reversed(children))
    return None


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
    """Parse an ISO-8601 timestamp that carries its offset (Z accepted).

    Raises ValueError for anything else, including text that is not printable ASCII
    (fromisoformat reads a C string: it stops at a NUL and ignores what follows).
    """
    if len(text) > 64 or not text.isascii() or not text.isprintable():
        raise ValueError(f"timestamp {_shorten(text, 50)!r} is not ISO-8601")
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no UTC offset")
    return moment
