"""The edge rules as each HTTP function applies them itself, through the entry point a platform
calls (no local gateway in front): on a platform nothing else refuses a form post, answers a
HEAD, or keeps CORS closed."""

from __future__ import annotations

import io

import pytest
from werkzeug.test import EnvironBuilder, run_wsgi_app

from infra.functions import by_name
from infra.triggers.invoke import load
from shopcore.platform import jsonio, runtime
from shopcore.platform.config import SETTINGS
from tests.support.functions import http_client, write_rows

COMMANDS = ("create_product", "create_order")
BODY = b'{"name": "Lamp", "category": "Home", "price": 1, "stock": 1}'


def outbox_rows() -> int:
    return write_rows("SELECT count(*) FROM outbox")[0][0]


@pytest.fixture
def cors(monkeypatch: pytest.MonkeyPatch):
    """Set CORS_ALLOWED_ORIGINS for one test."""

    def allow(origins: str) -> None:
        monkeypatch.setenv("CORS_ALLOWED_ORIGINS", origins)
        runtime.current().reset(SETTINGS)

    yield allow
    runtime.current().reset(SETTINGS)


@pytest.mark.parametrize("name", COMMANDS)
@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/ld+json"]
)
def test_a_command_not_sent_as_json_is_415_and_writes_nothing(services, name, content_type):
    before = outbox_rows()
    response = http_client(name).post("/", data=BODY, content_type=content_type)
    assert response.status_code == 415
    assert response.json["expected"] == "application/json"
    assert outbox_rows() == before


@pytest.mark.parametrize("name", COMMANDS)
def test_415_comes_before_401(services, monkeypatch, name):
    monkeypatch.setenv("COMMAND_API_KEYS", "k1")
    runtime.current().reset(SETTINGS)
    try:
        assert http_client(name).post("/", data=BODY, content_type="text/plain").status_code == 415
        assert http_client(name).post("/", json={}).status_code == 401
    finally:
        runtime.current().reset(SETTINGS)


def test_a_body_shorter_than_its_content_length_is_400_and_never_applied(services):
    before = outbox_rows()
    environ = EnvironBuilder(method="POST", content_type="application/json").get_environ()
    environ["wsgi.input"] = io.BytesIO(BODY)
    environ["CONTENT_LENGTH"] = str(len(BODY) + 5)  # the client stopped early
    # straight into the WSGI app: werkzeug's test client would correct the length
    body, status, _headers = run_wsgi_app(load(by_name("create_product")), environ)
    assert status.startswith("400")
    assert "ended before its Content-Length" in jsonio.loads(b"".join(body))["error"]
    assert outbox_rows() == before


@pytest.mark.parametrize(("name", "path"), [
    ("create_product", "/health"), ("create_order", "/openapi.json"), ("analytics", "/health"),
    ("analytics", "/api/analytics/sync-status"), ("analytics", "/api/analytics/products/1/sales"),
])  # fmt: skip
def test_head_is_answered_wherever_get_is(services, name, path):
    client = http_client(name)
    got, head = client.get(path), client.head(path)
    assert head.status_code == got.status_code
    assert head.data == b""
    assert head.headers["Content-Type"] == got.headers["Content-Type"]


@pytest.mark.parametrize(("name", "method", "allowed"), [
    ("create_product", "GET", "POST"), ("create_order", "PUT", "POST"),
    ("analytics", "POST", "GET, HEAD"), ("analytics", "DELETE", "GET, HEAD"),
])  # fmt: skip
def test_another_method_is_405_with_allow(services, name, method, allowed):
    response = http_client(name).open("/api/analytics/sync-status", method=method)
    assert response.status_code == 405
    assert response.headers["Allow"] == allowed
    assert response.json["allowed"] == allowed.split(", ")


def test_cors_is_closed_by_default(services, cors):
    cors("")
    client = http_client("analytics")
    origin = {"Origin": "https://anywhere.example"}
    response = client.get("/api/analytics/sync-status", headers=origin)
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Vary" not in response.headers
    preflight = client.options(
        "/api/analytics/sync-status", headers={**origin, "Access-Control-Request-Method": "GET"}
    )
    assert preflight.status_code == 403
    assert "Access-Control-Allow-Origin" not in preflight.headers


def test_cors_opens_for_listed_origins_only(services, cors):
    cors("https://a.example, https://B.example/")
    client = http_client("create_order")
    for origin in ("https://a.example", "https://b.example"):
        preflight = client.options(
            "/", headers={"Origin": origin, "Access-Control-Request-Method": "POST"}
        )
        assert preflight.status_code == 204, origin
        assert preflight.headers["Access-Control-Allow-Origin"] == origin
        assert preflight.headers["Vary"] == "Origin"
    refused = client.options(
        "/", headers={"Origin": "https://c.example", "Access-Control-Request-Method": "POST"}
    )
    assert refused.status_code == 403
    answer = client.post("/", json={}, headers={"Origin": "https://c.example"})
    assert "Access-Control-Allow-Origin" not in answer.headers
    assert answer.headers["Vary"] == "Origin"  # the answer depends on it, caches must know
