"""The bridge's HTTP side against a local stand-in for the projector's URL: what it POSTs, the
statuses it gives QueueTrigger, the identity token and the health port. The whole bridge with
RabbitMQ and a real projector is tests/integration/test_gcp_bridge.py."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from infra.deploy.gcp import bridge
from infra.harness.local_system import free_port
from shopcore.pipeline import messages

BATCH = {"eventSource": "aws:rmq", "rmqMessagesByQueue": {"order-events::/": []}}


class Projector:
    """Records each request; answers with `status` after `delay` seconds."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status, self.delay = 200, 0.0
        projector = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                projector.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": body,
                    }
                )
                time.sleep(projector.delay)
                self.send_response(projector.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self._answer()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        serve = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        serve.start()


@pytest.fixture
def projector() -> Iterator[Projector]:
    stub = Projector()
    yield stub
    stub.server.shutdown()


def test_posts_the_batch_as_a_binary_mode_cloudevent(projector: Projector) -> None:
    assert bridge.HttpInvoker(projector.url)(BATCH) == 200
    [request] = projector.requests
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert request["method"] == "POST" and request["path"] == "/"
    assert headers["ce-specversion"] == "1.0"
    assert headers["ce-type"] == bridge.EVENT_TYPE and headers["ce-source"] == bridge.SOURCE
    assert headers["ce-id"] and headers["content-type"] == "application/json"
    assert "authorization" not in headers
    assert json.loads(request["body"]) == BATCH
    assert messages.from_batch(json.loads(request["body"])) == []


def test_sends_the_identity_token_when_configured(projector: Projector) -> None:
    assert bridge.HttpInvoker(projector.url, token=lambda: "id-token-1")(BATCH) == 200
    headers = {k.lower(): v for k, v in projector.requests[0]["headers"].items()}
    assert headers["authorization"] == "Bearer id-token-1"


@pytest.mark.parametrize(
    ("answered", "reported"),
    [(200, 200), (500, 500), (400, 400), (503, 503), (429, 503), (502, 503), (504, 504)],
)
def test_platform_busy_answers_become_503_so_the_batch_is_retried_in_place(
    projector: Projector, answered: int, reported: int
) -> None:
    projector.status = answered
    assert bridge.HttpInvoker(projector.url)(BATCH) == reported


def test_an_unreachable_projector_is_retried_in_place() -> None:
    assert bridge.HttpInvoker(f"http://127.0.0.1:{free_port()}")(BATCH) == 503


def test_no_token_means_retry_in_place(projector: Projector) -> None:
    def failing_token() -> str:
        raise OSError("metadata server unreachable")

    assert bridge.HttpInvoker(projector.url, token=failing_token)(BATCH) == 503
    assert projector.requests == []


def test_a_timeout_counts_as_a_failed_delivery(projector: Projector) -> None:
    projector.delay = 1.0
    assert bridge.HttpInvoker(projector.url, timeout=0.2)(BATCH) == 504


def test_identity_token_comes_from_the_metadata_server_and_is_reused(projector: Projector):
    token = bridge.IdentityToken("https://projector.example/run")
    assert token.url.startswith(bridge.METADATA_IDENTITY)
    token.url = f"{projector.url}/identity?audience=https%3A%2F%2Fprojector.example%2Frun"
    token()
    token()
    [request] = projector.requests  # the second call reuses the first token
    assert request["headers"]["Metadata-Flavor"] == "Google"
    assert request["path"].endswith("audience=https%3A%2F%2Fprojector.example%2Frun")


def test_health_port_answers_200() -> None:
    port = free_port()
    server = bridge.serve_health(port)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            assert response.status == 200
    finally:
        server.shutdown()
