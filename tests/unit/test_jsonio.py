"""JSON with exact money: Decimal in, Decimal out as a JSON number, timestamps in UTC with Z."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from shopcore.platform import jsonio

# --- loads ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.1", Decimal("0.1")),
        ("999.99", Decimal("999.99")),
        ("-12.50", Decimal("-12.50")),
        ("1e2", Decimal("1E+2")),
        ("12345678901234567.89", Decimal("12345678901234567.89")),
    ],
)
def test_loads_gives_decimal_for_non_integers(text, expected):
    value = jsonio.loads(text)

    assert type(value) is Decimal
    assert value == expected
    assert str(value) == str(expected)  # same digits, not a float's approximation


def test_loads_keeps_integers_as_int():
    value = jsonio.loads('{"id": 12345678901234567890, "neg": -3}')

    assert value == {"id": 12345678901234567890, "neg": -3}
    assert type(value["id"]) is int


def test_loads_accepts_bytes():
    assert jsonio.loads(b'{"price": 1.10}') == {"price": Decimal("1.10")}


@pytest.mark.parametrize(
    "text", ["NaN", "Infinity", "-Infinity", '{"price": NaN}', "[1, Infinity]"]
)
def test_loads_rejects_non_finite_numbers(text):
    with pytest.raises(ValueError, match="not a valid JSON number"):
        jsonio.loads(text)


@pytest.mark.parametrize("text", ["", "{", "{'a': 1}", "[1,]"])
def test_loads_rejects_invalid_json(text):
    with pytest.raises(ValueError):
        jsonio.loads(text)


# --- dumps ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("12345678901234567.89"), "12345678901234567.89"),
        (Decimal("999.00"), "999.00"),
        (Decimal("0.10"), "0.10"),
        (Decimal("-5.25"), "-5.25"),
        (Decimal("1E+2"), "100"),
        (Decimal("1E-7"), "0.0000001"),
        (Decimal("0"), "0"),
    ],
)
def test_dumps_writes_decimal_as_an_exact_number(value, text):
    assert jsonio.dumps(value) == text


@pytest.mark.parametrize(
    "value",
    [
        Decimal("12345678901234567.89"),
        Decimal("0.01"),
        Decimal("99999999999999999999999.99"),
        Decimal("-0.5"),
    ],
)
def test_decimal_round_trips_exactly(value):
    back = jsonio.loads(jsonio.dumps({"total": value}))["total"]

    assert type(back) is Decimal
    assert back == value
    assert str(back) == str(value)


def test_dumps_output_is_standard_json():
    value = {"total": Decimal("12345678901234567.89"), "items": [Decimal("1.50"), 2]}

    parsed = json.loads(jsonio.dumps(value))

    assert parsed["items"] == [1.5, 2]
    assert isinstance(parsed["total"], float)  # a number, not a string


def test_dumps_is_compact_and_keeps_key_order():
    value = {"b": 1, "a": [True, None, "x"], "c": {"d": Decimal("2.50")}}

    assert jsonio.dumps(value) == '{"b":1,"a":[true,null,"x"],"c":{"d":2.50}}'


def test_dumps_escapes_strings_and_non_ascii():
    value = {'we"ird\nkey': 'café "quoted" \\ back', "lone": "\ud800"}

    text = jsonio.dumps(value)

    assert "caf\\u00e9" in text  # ASCII only: always encodable, even a lone surrogate
    assert text.encode("ascii")
    assert json.loads(text) == value


def test_dumps_writes_tuples_as_arrays():
    assert jsonio.dumps((1, Decimal("2.0"))) == "[1,2.0]"


def test_dumps_writes_utc_datetime_with_z_and_milliseconds():
    moment = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)

    assert jsonio.dumps(moment) == '"2024-01-02T03:04:05.678Z"'


def test_dumps_converts_other_offsets_to_utc():
    moment = datetime(2024, 1, 2, 1, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))

    assert jsonio.dumps({"at": moment}) == '{"at":"2024-01-01T20:00:00.000Z"}'


@pytest.mark.parametrize(
    "value",
    [
        Decimal("NaN"),
        Decimal("sNaN"),
        Decimal("Infinity"),
        Decimal("-Infinity"),
        {"total": Decimal("NaN")},
        [Decimal("Infinity")],
    ],
)
def test_dumps_rejects_non_finite_decimal(value):
    with pytest.raises(ValueError):
        jsonio.dumps(value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), {"x": float("-inf")}])
def test_dumps_rejects_non_finite_float(value):
    with pytest.raises(ValueError):
        jsonio.dumps(value)


# --- timestamps ----------------------------------------------------------------------------


def test_iso_utc_and_parse_iso_round_trip():
    moment = datetime(2024, 6, 30, 23, 59, 59, 999000, tzinfo=UTC)

    text = jsonio.iso_utc(moment)

    assert text == "2024-06-30T23:59:59.999Z"
    assert jsonio.parse_iso(text) == moment


def test_parse_iso_keeps_offsets():
    parsed = jsonio.parse_iso("2024-01-01T10:00:00+02:00")

    assert parsed == datetime(2024, 1, 1, 8, 0, tzinfo=UTC)


def test_parse_iso_rejects_naive_timestamps():
    with pytest.raises(ValueError, match="no UTC offset"):
        jsonio.parse_iso("2024-01-01T10:00:00")
