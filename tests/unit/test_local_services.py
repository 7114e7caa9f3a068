"""What the local emulation's supervisor starts: the HTTP server's command lines and how many
projector consumers."""

from __future__ import annotations

import io

import pytest

import infra.local.__main__ as local
from infra.local import gateway, http_server
from shopcore import jsonio
from shopcore.config import settings
from tests.unit.test_compose import env_example


@pytest.mark.parametrize(("count", "names"), [
    ("1", ["projector queue trigger"]),
    ("3", ["projector queue trigger", "projector queue trigger #2", "projector queue trigger #3"]),
])  # fmt: skip
def test_projector_consumers_are_numbered_services(
    monkeypatch: pytest.MonkeyPatch, count: str, names: list[str]
) -> None:
    monkeypatch.setenv("PROJECTOR_CONSUMERS", count)
    projectors = [s for s in local.services() if s.name.startswith("projector")]
    assert [s.name for s in projectors] == names
    assert all(s.argv[-3:-1] == ["infra.local.queue_trigger", "--priority"] for s in projectors)
    # the first has the highest priority: the broker feeds the others only under a backlog
    assert [int(s.argv[-1]) for s in projectors] == list(range(len(names) - 1, -1, -1))


def test_two_projector_consumers_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROJECTOR_CONSUMERS", raising=False)
    assert sum(s.name.startswith("projector") for s in local.services()) == 2


@pytest.mark.parametrize("server", http_server.SERVERS)
def test_both_servers_bind_the_port_with_the_threads_asked_for(server: str) -> None:
    argv = http_server.argv(
        "infra.local.gateway:query_port", host="0.0.0.0", port=8081, workers=3, threads=5,
        server=server,
    )  # fmt: skip
    text = " ".join(argv)
    assert "-m " + server in text
    assert ("0.0.0.0:8081" in text) or ("--host 0.0.0.0" in text and "--port 8081" in text)
    assert "--workers 3" in text
    assert ("--threads 5" in text) or ("--blocking-threads 5" in text)


def test_an_unknown_server_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_SERVER", "waitress")
    with pytest.raises(SystemExit, match="HTTP_SERVER must be one of"):
        http_server.chosen()


@pytest.mark.parametrize("port", ["command", "query"])
def test_port_sizing_defaults_match_env_example(port: str) -> None:
    example = env_example()
    variables = http_server.SIZING_VARIABLES[port]
    assert tuple(int(example[v]) for v in variables) == http_server.DEFAULT_SIZING[port]
    assert http_server.sizing(port, {}) == http_server.DEFAULT_SIZING[port]
    assert http_server.sizing(port, {variables[0]: "3", variables[1]: "5"}) == (3, 5)


def test_the_gateway_refuses_a_declared_oversized_body_without_calling_the_function(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MAX_BODY_BYTES", "100")
    settings.cache_clear()
    try:
        statuses: list[str] = []
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/api/products",
            "CONTENT_LENGTH": "101",
            "wsgi.input": io.BytesIO(b"x" * 101),
        }
        answer = gateway._over_the_body_limit(environ, lambda s, h: statuses.append(s))
        assert statuses == ["413 Payload Too Large"]
        assert jsonio.loads(b"".join(answer or [])) == {
            "error": "request body is larger than 100 bytes",
            "limit": 100,
        }
        environ["CONTENT_LENGTH"] = "100"
        assert gateway._over_the_body_limit(environ, lambda s, h: statuses.append(s)) is None
    finally:
        settings.cache_clear()


def test_a_chunked_body_is_cut_one_byte_past_the_limit() -> None:
    capped = gateway._CappedInput(io.BytesIO(b"a\nbc\n" + b"x" * 50), 8)
    assert capped.readline() == b"a\n"
    assert capped.read(3) == b"bc\n"
    assert capped.read() == b"xxx"  # 8 bytes in all
    assert capped.read() == b""
    assert gateway._CappedInput(io.BytesIO(b"short"), 8).read() == b"short"
