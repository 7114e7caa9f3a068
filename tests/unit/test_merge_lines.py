"""merge_lines: repeated (productId, price) lines fold into one; what was paid stays visible."""

from __future__ import annotations

import copy
from decimal import Decimal

from shopcore.write.commands import merge_lines


def line(product_id: int, quantity: int, price: str) -> dict:
    return {"productId": product_id, "quantity": quantity, "price": Decimal(price)}


def test_identical_product_and_price_fold_into_one_line():
    merged = merge_lines([line(1, 2, "9.99"), line(1, 3, "9.99")])

    assert merged == [line(1, 5, "9.99")]


def test_same_product_at_different_prices_stays_separate():
    merged = merge_lines([line(1, 2, "9.99"), line(1, 1, "8.00"), line(1, 4, "9.99")])

    assert merged == [line(1, 6, "9.99"), line(1, 1, "8.00")]


def test_different_products_at_the_same_price_stay_separate():
    merged = merge_lines([line(1, 1, "5.00"), line(2, 1, "5.00")])

    assert merged == [line(1, 1, "5.00"), line(2, 1, "5.00")]


def test_order_of_first_appearance_is_kept():
    items = [
        line(3, 1, "1.00"),
        line(1, 1, "1.00"),
        line(2, 1, "1.00"),
        line(1, 1, "1.00"),
        line(3, 2, "1.00"),
    ]

    merged = merge_lines(items)

    assert [m["productId"] for m in merged] == [3, 1, 2]
    assert [m["quantity"] for m in merged] == [3, 2, 1]


def test_total_quantity_and_revenue_are_preserved():
    items = [line(1, 2, "9.99"), line(2, 1, "0.50"), line(1, 7, "9.99"), line(1, 1, "1.00")]

    merged = merge_lines(items)

    assert sum(m["quantity"] for m in merged) == sum(i["quantity"] for i in items)
    assert sum(m["quantity"] * m["price"] for m in merged) == sum(
        i["quantity"] * i["price"] for i in items
    )


def test_input_lines_are_not_mutated():
    items = [line(1, 2, "9.99"), line(1, 3, "9.99")]
    before = copy.deepcopy(items)

    merge_lines(items)

    assert items == before


def test_no_lines_merge_to_no_lines():
    assert merge_lines([]) == []
