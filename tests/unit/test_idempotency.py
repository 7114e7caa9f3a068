"""Idempotency-Key parsing and request fingerprints (shopcore/write/idempotency.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shopcore import errors
from shopcore.platform import jsonio
from shopcore.write import idempotency, schemas

ORDER = schemas.CreateOrderSchema()


def loaded(text: str) -> dict:
    return schemas.load(ORDER, jsonio.loads(text))


def test_spelling_of_the_same_body_does_not_change_the_fingerprint():
    plain = loaded('{"customerId": 1, "items": [{"productId": 2, "quantity": 1, "price": 999}]}')
    respelled = loaded(
        '{ "items" : [ { "price" : 9.99E2 , "productId" : 2 , "quantity" : 1 } ] ,\n'
        ' "customerId" : 1 }'
    )
    with_cents = loaded(
        '{"customerId": 1, "items": [{"productId": 2, "quantity": 1, "price": 999.00}]}'
    )
    fingerprints = {
        idempotency.fingerprint("POST /api/orders", body) for body in (plain, respelled, with_cents)
    }
    assert len(fingerprints) == 1


@pytest.mark.parametrize(
    "changed",
    [
        '{"customerId": 2, "items": [{"productId": 2, "quantity": 1, "price": 999}]}',
        '{"customerId": 1, "items": [{"productId": 2, "quantity": 2, "price": 999}]}',
        '{"customerId": 1, "items": [{"productId": 2, "quantity": 1, "price": 999.01}]}',
    ],
)
def test_another_body_or_route_changes_the_fingerprint(changed):
    body = loaded('{"customerId": 1, "items": [{"productId": 2, "quantity": 1, "price": 999}]}')
    first = idempotency.fingerprint("POST /api/orders", body)
    assert idempotency.fingerprint("POST /api/orders", loaded(changed)) != first
    assert idempotency.fingerprint("POST /api/products", body) != first


@pytest.mark.parametrize("value", ["a", "!", "~" * 255, "550e8400-e29b-41d4-a716-446655440000"])
def test_visible_ascii_keys_of_1_to_255_characters_are_accepted(value):
    key = idempotency.from_header(value, None)
    assert key == idempotency.IdempotencyKey(value, "")


@pytest.mark.parametrize("value", ["", " ", "a b", "x" * 256, "caf\u00e9", "a\x7f", "\x00"])
def test_anything_else_is_a_400_naming_the_header(value):
    with pytest.raises(errors.InvalidInput) as refused:
        idempotency.from_header(value, None)
    assert refused.value.details["field"] == "Idempotency-Key"


def test_no_header_means_no_key():
    assert idempotency.from_header(None, "alpha") is None


def test_the_scope_is_a_digest_of_the_api_key_never_the_key():
    alpha = idempotency.from_header("k", "alpha-key")
    beta = idempotency.from_header("k", "beta-key")
    assert alpha is not None and beta is not None
    assert alpha.scope != beta.scope
    assert "alpha" not in alpha.scope and len(alpha.scope) == 32


def test_a_replay_with_another_fingerprint_is_422():
    body = {"customerId": 1, "items": [{"productId": 2, "quantity": 1, "price": Decimal("1.00")}]}
    stored = (
        "POST /api/orders",
        idempotency.fingerprint("POST /api/orders", body),
        201,
        {"orderId": 5, "consistencyToken": "c1.9"},
    )
    replayed = idempotency.replay(stored, "POST /api/orders", body)
    assert replayed.answer() == (
        201,
        {"orderId": 5, "consistencyToken": "c1.9"},
        {"X-Consistency-Token": "c1.9", "Idempotent-Replayed": "true"},
    )
    with pytest.raises(errors.KeyReused):
        idempotency.replay(stored, "POST /api/orders", {**body, "customerId": 2})
    with pytest.raises(errors.KeyReused):
        idempotency.replay(stored, "POST /api/products", body)
