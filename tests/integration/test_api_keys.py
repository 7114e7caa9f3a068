"""Optional API keys for the command API."""

from __future__ import annotations

import pytest

from shopcore.platform import runtime
from shopcore.platform.config import SETTINGS
from tests.support.functions import http_client, write_rows

PRODUCT = {"name": "Key", "category": "Keys", "price": 1, "stock": 1}


@pytest.fixture
def keys(monkeypatch):
    monkeypatch.setenv("COMMAND_API_KEYS", "alpha-key, beta-key")
    runtime.current().reset(SETTINGS)
    yield
    monkeypatch.delenv("COMMAND_API_KEYS")
    runtime.current().reset(SETTINGS)


def product_count() -> int:
    return write_rows("SELECT count(*) FROM products")[0][0]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-API-Key": "wrong"},
        {"Authorization": "Bearer wrong"},
        {"X-API-Key": ""},
        {"Authorization": "Basic alpha-key"},
        {"X-API-Key": "alpha-key, beta-key"},
    ],
)
@pytest.mark.parametrize("function", ["create_product", "create_order"])
def test_without_a_valid_key_is_401_and_writes_nothing(keys, headers, function):
    before = product_count()
    response = http_client(function).post("/", json=PRODUCT, headers=headers)
    assert response.status_code == 401
    assert "API key" in response.json["error"]
    assert product_count() == before


@pytest.mark.parametrize(
    "headers", [{"X-API-Key": "alpha-key"}, {"Authorization": "Bearer beta-key"}]
)
def test_any_listed_key_is_accepted(keys, headers):
    response = http_client("create_product").post("/", json=PRODUCT, headers=headers)
    assert response.status_code == 201


def test_health_needs_no_key(keys):
    assert http_client("create_order").get("/health").status_code == 200


def test_no_keys_configured_means_open():
    assert http_client("create_product").post("/", json=PRODUCT).status_code == 201
