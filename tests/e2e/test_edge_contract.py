"""The contract's rules at the edge ("Content types and errors at the edge"), on the real local
emulation: both ports, real sockets, the real functions behind them.

The system here runs with short deadlines (2 s) and an allowed CORS origin, so 408s come
quickly and both sides of CORS can be seen; everything else is the default configuration.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import psycopg
import pytest
import requests

from tests.e2e.test_edge_server import Client, json_error
from tests.support import stack as stacks
from tests.support.local_system import LocalSystem

ALLOWED_ORIGIN = "https://dashboard.shop.example"
DEADLINE_SECONDS = 2
PRODUCT = {"name": "Lamp", "category": "Home", "price": 12.5, "stock": 10}


@pytest.fixture(scope="module")
def system(tmp_path_factory, run_stack) -> Iterator[LocalSystem]:
    with stacks.isolated() as stack:
        local = LocalSystem(
            stack,
            tmp_path_factory.mktemp("edge") / "local.log",
            CORS_ALLOWED_ORIGINS=ALLOWED_ORIGIN,
            REQUEST_HEADER_TIMEOUT_SECONDS=str(DEADLINE_SECONDS),
            REQUEST_BODY_TIMEOUT_SECONDS=str(DEADLINE_SECONDS),
        )
        local.start()
        try:
            yield local
        finally:
            assert local.stop() == 0, local.log()[-3000:]
    stacks.activate(run_stack)


def written(system: LocalSystem) -> tuple[int, int, int]:
    """(products, orders, outbox rows) on the write side."""
    with psycopg.connect(system.stack.database_url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM products), (SELECT count(*) FROM orders),"
            " (SELECT count(*) FROM outbox)"
        ).fetchone()
    assert row is not None
    return row


def port_of(system: LocalSystem, url: str) -> int:
    return system.command_port if url == system.command_url else system.query_port


# --- media types ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
     "application/merge-patch+json", "application/jsonx", "text/json"],
)  # fmt: skip
@pytest.mark.parametrize("path", ["/api/products", "/api/orders"])
def test_a_post_that_is_not_json_is_415_and_writes_nothing(system, path, content_type):
    body = b'{"name": "Lamp", "category": "Home", "price": 1, "stock": 1}'
    headers = {"Content-Type": content_type} if content_type else {}
    before = written(system)
    r = requests.post(system.command_url + path, data=body, headers=headers, timeout=10)
    assert r.status_code == 415, r.text
    assert r.headers["Content-Type"] == "application/json"
    assert "application/json" in r.json()["error"]
    assert written(system) == before


@pytest.mark.parametrize(
    "content_type", ["application/json", "APPLICATION/JSON", "application/json; charset=utf-8",
                     "Application/Json ;charset=UTF-8"],
)  # fmt: skip
def test_json_in_any_letter_case_with_parameters_is_accepted(system, content_type):
    r = requests.post(
        f"{system.command_url}/api/products",
        data=b'{"name": "Lamp", "category": "Home", "price": 1, "stock": 1}',
        headers={"Content-Type": content_type},
        timeout=10,
    )
    assert r.status_code == 201, r.text


def test_refusals_come_in_the_contract_order(system):
    """404, then 405 (with Allow), then 415, then 413, then the body's 400."""
    huge = {"Content-Length": "10000000"}
    cases = [
        ("POST", "/api/nowhere", {"Content-Type": "text/plain", **huge}, 404),
        ("GET", "/api/products", {"Content-Type": "text/plain", **huge}, 405),
        ("POST", "/api/products", {"Content-Type": "text/plain", **huge}, 415),
        ("POST", "/api/products", {"Content-Type": "application/json", **huge}, 413),
    ]
    for method, path, headers, status in cases:
        with Client(system.command_port) as client:
            head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            client.send(f"{method} {path} HTTP/1.1\r\nHost: t\r\n{head}\r\n".encode())
            json_error(client.answer(), status)
    r = requests.post(f"{system.command_url}/api/products", json={"name": ""}, timeout=10)
    assert r.status_code == 400


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [("GET", "/api/products", "POST"), ("DELETE", "/api/orders", "POST"),
     ("POST", "/health", "GET, HEAD")],
)  # fmt: skip
def test_another_method_is_405_with_allow_on_the_command_port(system, method, path, allowed):
    r = requests.request(method, system.command_url + path, timeout=10)
    assert r.status_code == 405
    assert r.headers["Allow"] == allowed
    assert r.headers["Content-Type"] == "application/json"


def test_another_method_is_405_with_allow_on_the_query_port(system):
    r = requests.post(f"{system.query_url}/api/analytics/sync-status", json={}, timeout=10)
    assert r.status_code == 405
    assert r.headers["Allow"] == "GET, HEAD"


# --- HEAD ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("port", "path"),
    [("command", "/health"), ("command", "/openapi.json"), ("query", "/health"),
     ("query", "/openapi.json"), ("query", "/api/analytics/sync-status"),
     ("query", "/api/analytics/products/1/sales"),
     ("query", "/api/analytics/categories/Home/revenue"),
     ("query", "/api/analytics/customers/1/lifetime-value"),
     ("query", "/api/analytics/sales/hourly"),
     ("query", "/api/analytics/products/abc/sales")],
)  # fmt: skip
def test_head_answers_every_get_route_like_get_without_a_body(system, port, path):
    url = (system.command_url if port == "command" else system.query_url) + path
    got = requests.get(url, timeout=10)
    with Client(port_of(system, url.split(path)[0])) as client:
        client.send(f"HEAD {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        status, headers, body = client.answer(head=True)
        # nothing follows the headers: the next answer on this connection parses cleanly
        client.send(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        assert client.answer()[0] == 200
    assert status == got.status_code
    assert body == b""
    assert headers["content-type"] == got.headers["Content-Type"]
    if "sync-status" not in path:  # its figures move between the two requests
        assert int(headers["content-length"]) == len(got.content)


# --- every error is our JSON ---------------------------------------------------------------------


@pytest.mark.parametrize("url_of", ["command_url", "query_url"])
def test_errors_the_server_gives_itself_are_json(system, url_of):
    url = getattr(system, url_of)
    port = port_of(system, url)
    json_error(_raw(port, b"GET /no/such/thing HTTP/1.1\r\nHost: t\r\n\r\n"), 404)
    json_error(_raw(port, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n"), 414)
    json_error(_raw(port, b"GET /health HTTP/1.1\r\nX-Big: " + b"b" * 20000 + b"\r\n\r\n"), 431)
    json_error(_raw(port, b"NOT HTTP AT ALL\r\n\r\n"), 400)


def _raw(port: int, data: bytes) -> tuple[int, dict[str, str], bytes]:
    with Client(port) as client:
        client.send(data)
        return client.answer()


# --- slow and broken clients ----------------------------------------------------------------------


def test_a_body_that_never_completes_is_408_and_writes_nothing(system):
    before = written(system)
    with Client(system.command_port, timeout=DEADLINE_SECONDS + 10) as client:
        client.send(
            b"POST /api/products HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n"
            b'{"name": "Lamp", "category": "Home", "price": 1, "stock": 1}'
        )
        error = json_error(client.answer(), 408)
        assert f"within {DEADLINE_SECONDS} s" in error
    assert written(system) == before


def test_a_truncated_body_is_400_and_never_applied(system):
    """The client declares more than it sends, then closes its side: the complete JSON it did
    send must not be written."""
    body = b'{"name": "Lamp", "category": "Home", "price": 1, "stock": 1}'
    before = written(system)
    with Client(system.command_port) as client:
        client.send(
            b"POST /api/products HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body) + 10}\r\n\r\n".encode()
            + body
        )
        client.sock.shutdown(socket.SHUT_WR)
        json_error(client.answer(), 400)
    assert written(system) == before


def test_a_thousand_slow_clients_starve_no_one(system):
    """Far more trickling clients than serving threads on both ports (16 on the command
    port, 4 on the query port), half stuck in their headers and half in their bodies: while
    they hold their connections, ordinary requests on both ports are answered, each well
    before the deadline that would free anything; then every slow client gets its 408, and
    none of their requests wrote anything."""
    before = written(system)
    slow = []
    try:
        for k in range(1000):
            command = k % 5 != 0  # four in five on the command port
            client = Client(
                system.command_port if command else system.query_port,
                timeout=DEADLINE_SECONDS + 20,
            )
            line = b"POST /api/products" if command else b"GET /api/analytics/sync-status"
            if k % 2:  # stuck in its headers
                client.send(line + b" HTTP/1.1\r\nHost: t\r\nX-Slow: ")
            else:  # stuck in its body
                client.send(
                    line + b" HTTP/1.1\r\nHost: t\r\nContent-Type: application/json"
                    b'\r\nContent-Length: 100\r\n\r\n{"name": "slow",'
                )
            slow.append(client)
        with requests.Session() as session:
            for _ in range(3):
                # each answered within a second: the trickles are still held meanwhile
                assert session.get(f"{system.command_url}/health", timeout=1).status_code == 200
                assert session.get(f"{system.query_url}/health", timeout=1).status_code == 200
                r = session.get(f"{system.query_url}/api/analytics/sync-status", timeout=1)
                assert r.status_code == 200
            created = session.post(f"{system.command_url}/api/products", json=PRODUCT, timeout=1)
            assert created.status_code == 201
        for client in slow:
            json_error(client.answer(), 408)
    finally:
        for client in slow:
            client.close()
    products, orders, outbox = before
    assert written(system) == (products + 1, orders, outbox + 1)  # only the ordinary one


# --- CORS ---------------------------------------------------------------------------------------


def test_an_allowed_origin_may_read_answers_and_pass_preflights(system):
    headers = {"Origin": ALLOWED_ORIGIN}
    r = requests.get(f"{system.query_url}/api/analytics/sync-status", headers=headers, timeout=10)
    assert r.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert "Origin" in r.headers["Vary"]
    assert "X-Consistency-Token" in r.headers["Access-Control-Expose-Headers"]
    preflight = requests.options(
        f"{system.command_url}/api/orders",
        headers={**headers, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type, idempotency-key"},
        timeout=10,
    )  # fmt: skip
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert preflight.headers["Access-Control-Allow-Methods"] == "POST"
    assert "Idempotency-Key" in preflight.headers["Access-Control-Allow-Headers"]


@pytest.mark.parametrize("origin", ["https://evil.example", "null", ALLOWED_ORIGIN + ".evil"])
def test_any_other_origin_gets_no_cors_and_its_preflight_is_refused(system, origin):
    r = requests.get(
        f"{system.query_url}/api/analytics/sync-status", headers={"Origin": origin}, timeout=10
    )
    assert r.status_code == 200
    assert "Access-Control-Allow-Origin" not in r.headers
    preflight = requests.options(
        f"{system.command_url}/api/products",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert preflight.status_code == 403
    assert "Access-Control-Allow-Origin" not in preflight.headers
    assert "not allowed" in preflight.json()["error"]


def test_a_preflight_for_a_method_the_route_does_not_answer_is_refused(system):
    preflight = requests.options(
        f"{system.command_url}/api/products",
        headers={"Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "DELETE"},
        timeout=10,
    )
    assert preflight.status_code == 403


def test_options_that_is_no_preflight_is_405(system):
    r = requests.options(f"{system.command_url}/api/products", timeout=10)
    assert r.status_code == 405
    assert r.headers["Allow"] == "POST"
