"""The events of CONTRACT.md: one owner for how they are built and how they are read back.

An event is a JSON object with `eventId` and `eventType` at its top level, stored in the
outbox under its type's topic and published as it is stored. Three jobs, one module each:
- `builders`: the write side builds every event here, whole (ids, items, topic);
- `schemas`: consumers validate with marshmallow; anything that does not fit is malformed and
  gets dead-lettered;
- `fast_path`: plain checks that read events in exactly the shape the builders write without
  marshmallow, falling through to the schemas for anything else.
`model` holds what a consumer gets back.
"""

from __future__ import annotations

from shopcore.events import fast_path, schemas
from shopcore.events.builders import (
    ORDER_EVENTS,
    PRODUCT_EVENTS,
    TOPICS,
    now,
    order_created,
    product_created,
    topic_of,
)
from shopcore.events.model import Event, MalformedEvent, OrderCreated, OrderLine, ProductCreated
from shopcore.platform import jsonio

__all__ = [
    "ORDER_EVENTS",
    "PRODUCT_EVENTS",
    "TOPICS",
    "Event",
    "MalformedEvent",
    "OrderCreated",
    "OrderLine",
    "ProductCreated",
    "now",
    "order_created",
    "parse",
    "product_created",
    "topic_of",
]


def parse(body: bytes | str) -> Event:
    """Read one event from its JSON form; raise MalformedEvent saying what is wrong."""
    try:
        data = jsonio.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedEvent(f"not JSON: {exc}") from None
    except RecursionError:
        raise MalformedEvent("not JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise MalformedEvent("not a JSON object")
    return fast_path.read(data) or schemas.read(data)
