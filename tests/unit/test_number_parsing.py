"""Property tests: every number and id a client writes is read or refused with a 400, never a 5xx.

Issue 9 ("No 5xx from any input"). The texts below are JSON numbers of any exponent (up to
±10**30) and any digit count (up to ~10,000), with signs, NaN/Infinity spellings and other
scripts' digits; path ids and ISO-8601 timestamps of the same kinds. Whatever the input, the
parsers either give a value within the contract's range or raise `errors.InvalidInput` naming
the field: any other exception would be a 500.
"""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any

import flask
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from werkzeug.test import EnvironBuilder

from shopcore import errors
from shopcore.pipeline.messages import QueueMessage
from shopcore.platform import http, jsonio
from shopcore.read import query_api
from shopcore.write import schemas

PROPERTY = settings(max_examples=300, deadline=None)
HUGE_EXPONENT = "1e99999999999999999999"  # beyond Decimal's exponent range: InvalidOperation
INT_DIGITS = sys.get_int_max_str_digits()  # int() refuses longer strings (4300 by default)

# --- number texts ------------------------------------------------------------------------------

ascii_digits = st.text(alphabet="0123456789", min_size=1, max_size=40)
long_digits = st.integers(1, 10_000).flatmap(
    lambda n: st.sampled_from(["1", "9", "0"]).map(lambda d: d * n)
)
# other scripts' digits, superscripts and fractions: str.isdigit() or int() take some of them
odd_digits = st.text(
    alphabet=st.characters(categories=("Nd", "No", "Nl"), exclude_characters="0123456789"),
    min_size=1,
    max_size=6,
)
exponents = (
    st.integers(-400, 400)
    | st.integers(-(10**30), 10**30)
    | st.sampled_from([999_999, 1_000_000, -999_999, -1_000_000, 10**18, -(10**18), 10**20])
).map(str)


@st.composite
def json_number_texts(draw: st.DrawFn) -> str:
    """A number as JSON spells it: -?int(.frac)?([eE][+-]?exp)?, of any size."""
    sign = draw(st.sampled_from(["", "-"]))
    whole = draw(st.just("0") | ascii_digits.map(lambda d: d.lstrip("0") or "0") | long_digits)
    if len(whole) > 1:
        whole = whole.lstrip("0") or "0"
    fraction = draw(st.none() | ascii_digits | long_digits)
    exponent = draw(st.none() | exponents)
    text = sign + whole
    if fraction is not None:
        text += "." + fraction
    if exponent is not None:
        marker = draw(st.sampled_from(["e", "E"]))
        plus = "+" if not exponent.startswith("-") and draw(st.booleans()) else ""
        text += marker + plus + exponent
    return text


non_finite = st.sampled_from(
    ["NaN", "-NaN", "Infinity", "-Infinity", "+Infinity", "nan", "inf", "-inf", "Inf", "sNaN"]
)
malformed_numbers = st.sampled_from(
    ["+1", "01", "-", "1.", ".5", "1e", "1e+", "0x10", "1_000", "١٢", "²", "1.5.5", "--1"]
) | st.tuples(st.sampled_from(["", "-", "+"]), odd_digits).map("".join)
# numbers near the contract's ranges, so that acceptance gets exercised as much as refusal
in_range_numbers = (
    st.integers(-2, schemas.MAX_INT + 2).map(str)
    | st.sampled_from([0, 1, schemas.MAX_QUANTITY, schemas.MAX_INT, schemas.MAX_BIGINT]).map(str)
    | st.decimals(0, schemas.MAX_PRICE, places=2).map(str)
    | st.decimals(0, schemas.MAX_PRICE, places=5).map(str)
)
number_texts = in_range_numbers | json_number_texts() | non_finite | malformed_numbers


def is_json_number(text: str) -> bool:
    return re.fullmatch(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?", text) is not None


def exact_value(text: str) -> Decimal | None:
    """The number `text` means, when Decimal can hold it; None when it cannot."""
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def readable(text: str) -> bool:
    """Whether jsonio.loads can hold this JSON number: a Decimal exponent in range, an integer
    of at most INT_DIGITS digits."""
    if not is_json_number(text) or exact_value(text) is None:
        return False
    return not re.fullmatch(r"-?[0-9]+", text) or len(text.lstrip("-")) <= INT_DIGITS


# --- the body, as the command API reads it -----------------------------------------------------


def body_request(raw: str) -> flask.Request:
    data = raw.encode("utf-8", "surrogatepass")
    return flask.Request(
        EnvironBuilder(method="POST", data=data, content_type="application/json").get_environ()
    )


def read_body(raw: str) -> Any:
    """The body as both POST functions read it (`http.read_json`)."""
    return http.read_json(body_request(raw))


PRODUCT = schemas.CreateProductSchema()
ORDER = schemas.CreateOrderSchema()


def product_body(field: str, number: str) -> str:
    fields = {"name": '"Lamp"', "category": '"Home"', "price": "1", "stock": "1", field: number}
    return "{" + ",".join(f'"{k}": {v}' for k, v in fields.items()) + "}"


def order_body(field: str, number: str) -> str:
    item = {"productId": "1", "quantity": "1", "price": "1"}
    top = {"customerId": "1"}
    (item if field in item else top)[field] = number
    items = ",".join(f'"{k}": {v}' for k, v in item.items())
    return "{" + ",".join(f'"{k}": {v}' for k, v in top.items()) + f', "items": [{{{items}}}]}}'


RANGES = {
    "stock": (0, schemas.MAX_INT),
    "productId": (1, schemas.MAX_BIGINT),
    "quantity": (1, schemas.MAX_QUANTITY),
    "customerId": (1, schemas.MAX_BIGINT),
}


def check_accepted(field: str, text: str, value: Any) -> None:
    """A number the schemas took is what the text says, and within the contract's range."""
    exact = exact_value(text)
    assert exact is not None, (field, text)
    if field == "price":
        assert type(value) is Decimal
        assert value == exact
        assert value.as_tuple().exponent == -2
        assert Decimal(0) <= value <= schemas.MAX_PRICE
        assert not value.is_signed()
    else:
        low, high = RANGES[field]
        assert type(value) is int
        assert re.fullmatch(r"-?[0-9]+", text)  # JSON integers only: not 1.0, not 1e1
        assert value == exact
        assert low <= value <= high


def through_the_edge(raw: str, schema: schemas.Schema) -> dict[str, Any] | errors.InvalidInput:
    """Read and validate a body as a POST function does: a value, or the InvalidInput (400).
    Anything else raised is a 500 and fails the test."""
    try:
        return schemas.load(schema, read_body(raw))
    except errors.InvalidInput as exc:
        return exc


@PROPERTY
@given(
    field=st.sampled_from(["price", "stock"]),
    text=number_texts,
)
@example(field="price", text=HUGE_EXPONENT)
@example(field="price", text="-" + HUGE_EXPONENT)
@example(field="price", text="1e-99999999999999999999")
@example(field="stock", text=HUGE_EXPONENT)
@example(field="price", text="1e999999")
@example(field="price", text="1e-999999")
@example(field="price", text="1e999999999999999999")
@example(field="price", text="0e99999999999999999999")
@example(field="price", text="9" * 5000)
@example(field="stock", text="9" * 5000)
@example(field="price", text="0." + "0" * 9000 + "1")
@example(field="price", text="999999999.99" + "0" * 9000)
@example(field="price", text="NaN")
@example(field="stock", text="-Infinity")
def test_product_numbers_are_read_or_refused_naming_the_field(field, text):
    outcome = through_the_edge(product_body(field, text), PRODUCT)

    if isinstance(outcome, errors.InvalidInput):
        assert outcome.status == 400
        if readable(text):  # the schema refused it, naming the field
            assert outcome.details["field"] == field
            assert outcome.message.startswith(f"{field}: ")
        elif is_json_number(text):  # the parser refused it, naming where it is
            assert outcome.details["field"] == field
            assert f"{field}: " in outcome.message
        else:
            assert "JSON" in outcome.message
    else:
        assert readable(text)
        check_accepted(field, text, outcome[field])


@PROPERTY
@given(
    field=st.sampled_from(["customerId", "productId", "quantity", "price"]),
    text=number_texts,
)
@example(field="price", text=HUGE_EXPONENT)
@example(field="customerId", text="1" * 5000)
@example(field="productId", text="-" + "1" * 10_000)
@example(field="quantity", text="1e-99999999999999999999")
def test_order_numbers_are_read_or_refused_naming_the_field(field, text):
    outcome = through_the_edge(order_body(field, text), ORDER)
    where = field if field == "customerId" else f"items[0].{field}"

    if isinstance(outcome, errors.InvalidInput):
        assert outcome.status == 400
        if readable(text):
            assert outcome.details["field"] == where
        elif is_json_number(text):
            assert outcome.details["field"] == where
            assert f"{where}: " in outcome.message
        else:
            assert "JSON" in outcome.message
    else:
        assert readable(text)
        value = outcome[field] if field == "customerId" else outcome["items"][0][field]
        check_accepted(field, text, value)


# --- jsonio.loads on its own -------------------------------------------------------------------


@PROPERTY
@given(text=json_number_texts(), nest=st.sampled_from(["bare", "object", "array", "deep"]))
@example(text=HUGE_EXPONENT, nest="deep")
@example(text="1" * (INT_DIGITS + 1), nest="object")
@example(text="-" + "1" * INT_DIGITS, nest="array")
@example(text="1" * (INT_DIGITS + 1) + ".5", nest="object")
@example(text="-1e-1000000000000000000", nest="bare")
def test_loads_gives_the_exact_number_or_a_value_error_saying_where(text, nest):
    raw, path = {
        "bare": (text, None),
        "object": (f'{{"price": {text}}}', "price"),
        "array": (f"[0, {text}]", "[1]"),
        "deep": (f'{{"a": 1, "items": [{{"x": 2}}, {{"price": {text}}}]}}', "items[1].price"),
    }[nest]
    try:
        data = jsonio.loads(raw)
    except jsonio.UnreadableNumber as exc:  # a ValueError: read_json makes it a 400
        assert isinstance(exc, ValueError)
        assert exc.path == path
        assert path is None or str(exc).startswith(f"{path}: ")
        assert not readable(text)
        return
    assert readable(text)
    value = data if nest == "bare" else data["price"] if nest == "object" else None
    if nest == "array":
        value = data[1]
    if nest == "deep":
        value = data["items"][1]["price"]
    assert value == exact_value(text)
    if re.fullmatch(r"-?[0-9]+", text):
        assert type(value) is int
    else:
        assert type(value) is Decimal


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (f'{{"price": {HUGE_EXPONENT}}}', "price: number 1e99999999999999999999 is out of range"),
        ('{"items": [{"price": -1e-99999999999999999999}]}', r"items\[0\]\.price: number"),
        ('{"stock": ' + "9" * 5000 + "}", "stock: integer of 5000 digits is too long"),
        ('{"price": NaN}', "price: NaN is not a valid JSON number"),
        ("[1, -Infinity]", r"\[1\]: -Infinity is not a valid JSON number"),
        # duplicate keys: the unreadable one is still the one named
        (f'{{"price": {HUGE_EXPONENT}, "price": 1}}', "price: number"),
    ],
)
def test_unreadable_numbers_are_value_errors_naming_their_place(raw, message):
    with pytest.raises(jsonio.UnreadableNumber, match=message):
        jsonio.loads(raw)


def test_malformed_json_after_an_unreadable_number_is_still_a_value_error():
    with pytest.raises(ValueError):
        jsonio.loads(f'{{"price": {HUGE_EXPONENT}, ')


# --- the schemas on their own, with values beyond what JSON can spell --------------------------

extreme_decimals = st.builds(
    lambda sign, digits, exponent: Decimal((sign, tuple(digits), exponent)),
    st.integers(0, 1),
    st.lists(st.integers(0, 9), min_size=1, max_size=60),
    st.integers(-(10**18), 10**18 - 60),
) | st.decimals(allow_nan=True, allow_infinity=True)


@PROPERTY
@given(value=extreme_decimals | st.integers(-(10**4000), 10**4000))
@example(value=Decimal("sNaN"))
@example(value=Decimal("-Infinity"))
@example(value=Decimal("1E+999999999999999999"))
@example(value=Decimal("1E-1000000000000000000"))
@example(value=Decimal("-0E-1000000000000000000"))
@example(value=10**4299)
def test_money_takes_any_python_number_without_raising_anything_but_invalid_input(value):
    body = {"name": "a", "category": "b", "price": value, "stock": value}
    try:
        loaded = schemas.load(PRODUCT, body)
    except errors.InvalidInput as exc:
        assert exc.details["field"] in ("price", "stock")
        return
    assert Decimal(0) <= loaded["price"] <= schemas.MAX_PRICE
    assert 0 <= loaded["stock"] <= schemas.MAX_INT


def test_money_does_not_depend_on_the_threads_decimal_context():
    body = {"name": "a", "category": "b", "price": Decimal("999999999.99"), "stock": 1}
    with localcontext(prec=5) as context:
        context.traps[InvalidOperation] = True
        assert schemas.load(PRODUCT, body)["price"] == Decimal("999999999.99")


@pytest.mark.parametrize(
    ("price", "message"),
    [
        (Decimal("1E+999999"), "price: must be at most 1000000000"),
        (Decimal("1E+999999999999999999"), "price: must be at most 1000000000"),
        (10**4000, "price: must be at most 1000000000"),
        (Decimal("1E-999999999999999999"), "price: must have at most 2 decimal places"),
        (Decimal("-1E+999999"), "price: must be a number >= 0"),
    ],
)
def test_money_refuses_extremes_naming_the_field(price, message):
    with pytest.raises(errors.InvalidInput, match=re.escape(message)) as caught:
        schemas.load(PRODUCT, {"name": "a", "category": "b", "price": price, "stock": 1})
    assert caught.value.details["field"] == "price"


# --- path ids ----------------------------------------------------------------------------------

id_texts = (
    ascii_digits
    | long_digits
    | st.tuples(st.text(alphabet="0", max_size=30), ascii_digits).map("".join)
    | st.tuples(
        st.sampled_from(["+", "-", " ", "\t", "\n", "_", "0x", "\u00a0"]), ascii_digits
    ).map("".join)
    | st.tuples(ascii_digits, st.sampled_from([" ", "\n", ".0", "e3", "_1", "\x00"])).map("".join)
    | odd_digits
    | st.text(max_size=30)
)


@PROPERTY
@given(text=id_texts, name=st.sampled_from(["productId", "customerId"]))
@example(text="1" * 5000, name="productId")
@example(text="0" * 5000 + "1", name="productId")
@example(text="١٢", name="customerId")
@example(text="²", name="customerId")
@example(text="+1", name="productId")
@example(text="-1", name="productId")
@example(text=" 1", name="productId")
@example(text="1 ", name="productId")
@example(text="1_0", name="productId")
@example(text="0", name="productId")
@example(text=str(schemas.MAX_BIGINT), name="productId")
@example(text=str(schemas.MAX_BIGINT + 1), name="productId")
def test_path_ids_are_positive_ascii_integers_or_400(text, name):
    plain = re.fullmatch(r"[0-9]+", text) is not None
    try:
        value = query_api.parse_id(text, name)
    except errors.InvalidInput as exc:
        assert exc.details == {"field": name}
        assert exc.message.startswith(f"{name}: ")
        assert len(exc.message) < 200  # never echoes 5,000 digits
        assert not plain or not 1 <= Decimal(text) <= schemas.MAX_BIGINT
        return
    assert plain
    assert type(value) is int
    assert value == Decimal(text)
    assert 1 <= value <= schemas.MAX_BIGINT


# --- timestamps in query parameters ------------------------------------------------------------


@st.composite
def iso_texts(draw: st.DrawFn) -> str:
    """ISO-8601-like text with any year, fields out of range, odd offsets and digits."""
    year = draw(
        st.integers(0, 99_999).map(lambda y: f"{y:04d}") | st.sampled_from(["0001", "9999"])
    )
    month, day = draw(st.integers(0, 13)), draw(st.integers(0, 32))
    hour, minute, second = (
        draw(st.integers(0, 25)),
        draw(st.integers(0, 61)),
        draw(st.integers(0, 61)),
    )
    text = f"{year}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}"
    text += draw(st.sampled_from(["", ".5", ".123456", ".1234567890123", "," + "9" * 50]))
    offset = draw(
        st.sampled_from(["Z", "", "+00:00", "-00:00", "+23:59", "-23:59", "+24:00", "+99:99"])
        | st.tuples(st.sampled_from("+-"), st.integers(0, 30), st.integers(0, 70)).map(
            lambda t: f"{t[0]}{t[1]:02d}:{t[2]:02d}"
        )
    )
    return text + offset


timestamp_texts = (
    iso_texts()
    | st.text(max_size=40)
    | st.tuples(iso_texts(), st.sampled_from(["\x00", "\x00junk", " ", "Z", "\n"])).map("".join)
    | odd_digits.map(lambda d: f"{d}-01-01T00:00:00Z")
    | long_digits.map(lambda d: f"{d}-01-01T00:00:00Z")
)


def query_request(**params: str) -> flask.Request:
    return flask.Request(EnvironBuilder(path="/", query_string=params).get_environ())


@PROPERTY
@given(text=timestamp_texts, name=st.sampled_from(["from", "to"]))
@example(text="0001-01-01T00:00:00+01:00", name="from")
@example(text="9999-12-31T23:00:00-01:00", name="to")
@example(text="2026-01-01T00:00:00\x00Z", name="from")
@example(text="2026-01-01T00:00:00Z\x00junk", name="from")
@example(text="٢٠٢٦-01-01T00:00:00Z", name="to")
@example(text="2026-01-01T00:00:00+24:00", name="to")
def test_timestamps_are_utc_datetimes_or_400(text, name):
    try:
        moment = query_api.parse_moment(query_request(**{name: text}), name)
    except errors.InvalidInput as exc:
        assert exc.details == {"field": name}
        return
    assert isinstance(moment, datetime)
    assert moment.tzinfo is UTC
    assert text.isascii() and text.isprintable()


@PROPERTY
@given(start=st.none() | timestamp_texts, end=st.none() | timestamp_texts)
@example(start=None, end="0001-01-01T10:00:00Z")
@example(start="9999-12-31T23:00:00Z", end="0001-01-01T00:00:00Z")
def test_hourly_range_is_read_or_400(start, end):
    params = {k: v for k, v in (("from", start), ("to", end)) if v is not None}
    try:
        low, high = query_api.hourly_range(query_request(**params))
    except errors.InvalidInput as exc:
        assert exc.details["field"] in ("from", "to")
        return
    assert low <= high


# --- the relay's outbox id header on queue messages --------------------------------------------


@settings(max_examples=200, deadline=None)
@given(text=id_texts)
@example(text="1" * 5000)
@example(text="²")
@example(text="١٢")
@example(text=str(schemas.MAX_BIGINT + 1))
def test_outbox_id_header_is_an_id_or_none(text):
    message = QueueMessage(
        queue="order-events", body=b"", properties={"headers": {"ce-sequence": text}}
    )
    value = message.outbox_id
    if value is None:
        assert (
            not re.fullmatch(r"[0-9]+", text)
            or Decimal(text) > schemas.MAX_BIGINT
            or len(text) > 19
        )
    else:
        assert re.fullmatch(r"[0-9]+", text) and value == int(text) <= schemas.MAX_BIGINT
