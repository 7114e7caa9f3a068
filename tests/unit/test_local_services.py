"""What the local emulation's supervisor starts: the HTTP server's command lines and how many
projector consumers."""

from __future__ import annotations

import pytest

import infra.local.__main__ as local
from infra.local import http_server
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


def test_the_edge_serves_the_port_with_the_threads_asked_for() -> None:
    argv = http_server.argv(
        "infra.local.gateway:query_port", host="0.0.0.0", port=8081, workers=3, threads=5
    )
    text = " ".join(argv)
    assert "-m infra.local.edge infra.local.gateway:query_port" in text
    assert "--host 0.0.0.0 --port 8081 --workers 3 --threads 5" in text


@pytest.mark.parametrize("port", ["command", "query"])
def test_port_sizing_defaults_match_env_example(port: str) -> None:
    example = env_example()
    variables = http_server.SIZING_VARIABLES[port]
    assert tuple(int(example[v]) for v in variables) == http_server.DEFAULT_SIZING[port]
    assert http_server.sizing(port, {}) == http_server.DEFAULT_SIZING[port]
    assert http_server.sizing(port, {variables[0]: "3", variables[1]: "5"}) == (3, 5)
