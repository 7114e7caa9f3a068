"""The projector's fast path for canonical events must agree with the marshmallow schemas:
whatever it accepts, the schemas accept and read to the same event."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from shopcore import events
from shopcore.events import fast_path, schemas
from shopcore.platform import jsonio

ids = st.integers(min_value=1, max_value=2**63 - 1)
amounts = st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False)
texts = st.text(max_size=20)
# values that are wrong somewhere; each field gets every one of them in some example
ODD_VALUES = [
    None, True, False, 0, -1, Decimal("-0.01"), Decimal("1.5"), "", " ", "\ud800", "x\x00",
    "7", [], {}, "2026-11-25T02:04:08Z", "2026-11-25 02:04:08.952+00:00",
    "2026-11-25T02:04:08.952+01:00", "9a177923-4f7e-4844-a6a4-7abd8d8c5454",
    "9A177923-4F7E-4844-A6A4-7ABD8D8C545", "OrderCreated", "ProductCreated",
]  # fmt: skip
odd_values = st.sampled_from(ODD_VALUES)


@st.composite
def canonical_events(draw: st.DrawFn) -> dict[str, Any]:
    at = events.now()
    if draw(st.booleans()):
        items = [
            {
                "productId": draw(ids),
                "quantity": draw(ids),
                "price": draw(amounts),
                "name": draw(texts),
                "category": draw(texts.filter(bool)),
            }
            for _ in range(draw(st.integers(min_value=1, max_value=3)))
        ]
        event = events.order_created(draw(ids), draw(ids), draw(amounts), items, at)
    else:
        event = events.product_created(
            draw(ids), draw(texts), draw(texts.filter(bool)), draw(amounts),
            draw(st.integers(min_value=0, max_value=2**31)), at,
        )  # fmt: skip
    return event


@st.composite
def mutated_events(draw: st.DrawFn) -> dict[str, Any]:
    """A canonical event, sent through JSON, then corrupted in one place."""
    event = jsonio.loads(jsonio.dumps(draw(canonical_events())))
    target: dict[str, Any] = event
    if "items" in event and draw(st.booleans()):
        target = event["items"][draw(st.integers(0, len(event["items"]) - 1))]
    action = draw(st.sampled_from(["drop", "replace", "replace", "add"]))
    key = draw(st.sampled_from(sorted(target)))
    if action == "drop":
        del target[key]
    elif action == "replace":
        target[key] = draw(odd_values)
    else:
        target[draw(st.text(max_size=5))] = draw(odd_values)
    return event


@settings(max_examples=3000, deadline=None)
@given(mutated_events())
def test_whatever_the_fast_path_accepts_the_schemas_read_the_same(data):
    fast = fast_path.read(data)
    if fast is not None:
        assert schemas.read(data) == fast


@settings(max_examples=200, deadline=None)
@given(canonical_events())
def test_events_as_our_outbox_writes_them_take_the_fast_path(event):
    data = jsonio.loads(jsonio.dumps(event))
    fast = fast_path.read(data)
    if all(jsonio.storable(v) for v in _strings(data)):
        assert fast is not None
        assert fast == schemas.read(data)
        assert isinstance(fast.event_id.int, int) and fast.occurred_at.tzinfo is not None


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def test_a_money_amount_keeps_its_digits():
    at = events.now()
    event = events.order_created(
        1, 2, Decimal("0.10"), [{"productId": 3, "quantity": 1, "price": Decimal("0.10"),
                                 "name": "n", "category": "c"}], at,
    )  # fmt: skip
    parsed = fast_path.read(jsonio.loads(jsonio.dumps(event)))
    assert parsed is not None
    assert parsed.total == Decimal("0.10") and parsed.items[0].price == Decimal("0.10")


def _corruptions() -> list[tuple[str, dict[str, Any]]]:
    """Every field of both event types, dropped or set to every odd value."""
    at = events.now()
    order = events.order_created(
        7, 8, Decimal("3.50"),
        [{"productId": 9, "quantity": 1, "price": Decimal("3.50"), "name": "n", "category": "c"}],
        at,
    )  # fmt: skip
    product = events.product_created(9, "n", "c", Decimal("3.50"), 4, at)
    cases = []
    for base in (order, product):
        clean = jsonio.loads(jsonio.dumps(base))
        places = [(None, key) for key in clean] + [(0, key) for key in clean.get("items", [{}])[0]]
        for item, key in places:
            for value in [*ODD_VALUES, "<drop>"]:
                data = jsonio.loads(jsonio.dumps(clean))
                target = data if item is None else data["items"][item]
                if value == "<drop>":
                    del target[key]
                else:
                    target[key] = value
                where = key if item is None else f"items[0].{key}"
                cases.append((f"{clean['eventType']}.{where}={value!r}", data))
    return cases


def test_every_single_corruption_agrees_with_the_schemas():
    disagreements = []
    for name, data in _corruptions():
        fast = fast_path.read(data)
        if fast is None:
            continue
        try:
            slow = schemas.read(data)
        except events.MalformedEvent as exc:
            disagreements.append(f"{name}: fast path accepts, schemas say {exc}")
            continue
        if slow != fast:
            disagreements.append(f"{name}: {fast} != {slow}")
    assert disagreements == []
