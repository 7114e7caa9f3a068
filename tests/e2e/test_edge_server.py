"""The edge server (infra/local/edge) as a real process, driven through real sockets.

It serves a small echo app (tests/support/edge_apps.py) with short deadlines and limits, so
every refusal the server makes itself can be provoked in well under a second or two; the app
writes a line for every request it runs, so a test can tell a refused request never ran.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra.functions import REPO
from infra.harness.local_system import free_port
from tests.support.edge_apps import RAN_LOG

LIMITS = {
    "REQUEST_HEADER_TIMEOUT_SECONDS": "1",
    "REQUEST_BODY_TIMEOUT_SECONDS": "1",
    "KEEP_ALIVE_SECONDS": "3",
    "MAX_BODY_BYTES": "1000",
    "MAX_URL_BYTES": "200",
    "MAX_HEADER_BYTES": "500",
}
WORKERS, THREADS = 2, 2


@dataclass
class Edge:
    port: int
    process: subprocess.Popen[bytes]
    ran_log: Path

    def ran(self) -> list[str]:
        return self.ran_log.read_text().splitlines() if self.ran_log.exists() else []


def start_edge(tmp_path: Path, factory: str = "tests.support.edge_apps:echo", **env: str) -> Edge:
    port = free_port()
    ran_log = tmp_path / "ran.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.local.edge", factory, "--port", str(port),
         "--workers", str(WORKERS), "--threads", str(THREADS)],
        cwd=REPO,
        env={**os.environ, **LIMITS, RAN_LOG: str(ran_log), **env},
        stderr=open(tmp_path / "edge.log", "ab"),  # noqa: SIM115 - the child owns it
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            status, _headers, _body = request(port, b"GET /ready HTTP/1.1\r\nHost: t\r\n\r\n")
            if status == 200:
                ran_log.unlink(missing_ok=True)
                return Edge(port, process, ran_log)
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError((tmp_path / "edge.log").read_text())


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[Edge]:
    server = start_edge(tmp_path)
    yield server
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(30) == 0


# --- a tiny HTTP/1.1 client: raw bytes out, answers parsed back -------------------------------

Answer = tuple[int, dict[str, str], bytes]


class Client:
    def __init__(self, port: int, timeout: float = 5) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = b""

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, raw: bytes) -> None:
        self.sock.send(raw)

    def _more(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {self.buffer!r}")
        self.buffer += chunk

    def answer(self, *, head: bool = False) -> Answer:
        """The next answer (`head`: the answer to a HEAD, which has no body)."""
        while b"\r\n\r\n" not in self.buffer:
            self._more()
        top, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status_line, *lines = top.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        length = 0 if head else int(headers.get("content-length", 0))
        while len(self.buffer) < length:
            self._more()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(status_line.split()[1]), headers, body

    def closed(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True


def request(port: int, raw: bytes) -> Answer:
    with Client(port) as client:
        client.send(raw)
        return client.answer()


def json_error(answer: Answer, status: int) -> str:
    got, headers, body = answer
    assert got == status, (got, body)
    assert headers["content-type"] == "application/json"
    error = json.loads(body)["error"]
    assert isinstance(error, str) and error
    return error


# --- the tests --------------------------------------------------------------------------------


def test_keep_alive_pipelining_and_head(edge: Edge) -> None:
    with Client(edge.port) as client:
        client.send(b"GET /a?x=1 HTTP/1.1\r\nHost: t\r\n\r\nGET /b HTTP/1.1\r\nHost: t\r\n\r\n")
        first, second = json.loads(client.answer()[2]), json.loads(client.answer()[2])
        assert (first["path"], first["query"]) == ("/a", "x=1")
        assert second["path"] == "/b"
        client.send(b"HEAD /a HTTP/1.1\r\nHost: t\r\n\r\n")
        status, headers, body = client.answer(head=True)
        assert status == 200 and body == b""
        assert int(headers["content-length"]) > 0  # the GET's length, without its body
        client.send(b"GET /c HTTP/1.1\r\nHost: t\r\n\r\n")  # the connection is still usable
        assert json.loads(client.answer()[2])["path"] == "/c"


def test_a_chunked_body_reaches_the_app_whole_with_its_length(edge: Edge) -> None:
    raw = (
        b"POST /p HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )
    answer = json.loads(request(edge.port, raw)[2])
    assert answer["body"] == "hello world"
    assert answer["contentLength"] == "11"


def test_expect_100_continue(edge: Edge) -> None:
    with Client(edge.port) as client:
        client.send(
            b"POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
        )
        assert client.sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        client.send(b"{}")
        assert json.loads(client.answer()[2])["body"] == "{}"


def test_http_1_0_closes_unless_kept_alive(edge: Edge) -> None:
    with Client(edge.port) as client:
        client.send(b"GET /a HTTP/1.0\r\n\r\n")
        status, headers, _ = client.answer()
        assert status == 200 and headers["connection"] == "close"
        assert client.closed()


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET /" + b"a" * 300 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 600 + b"\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(101)) + b"\r\n", 431),
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 400),
        (b"POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 1001\r\n\r\n", 413),
        (b"POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400),
        (b"POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n", 400),
        (b"GET /missing HTTP/1.1\r\nHost: t\r\n\r\n", 404),
    ],
    ids=["414", "431-size", "431-count", "400-garbage", "400-version", "413", "400-length-overflow",
         "400-length", "404-admit"],
)  # fmt: skip
def test_what_the_server_refuses_itself_is_a_json_error_and_never_runs(
    edge: Edge, raw: bytes, status: int
) -> None:
    with Client(edge.port) as client:
        client.send(raw)
        json_error(client.answer(), status)
        assert client.closed()
    assert edge.ran() == []


def test_a_chunked_body_over_the_limit_is_413(edge: Edge) -> None:
    chunk = b"x" * 600
    raw = b"POST /p HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
    raw += b"%x\r\n%s\r\n" % (len(chunk), chunk) * 2 + b"0\r\n\r\n"
    json_error(request(edge.port, raw), 413)
    assert edge.ran() == []


@pytest.mark.parametrize(
    "raw",
    [b"GET / HTTP/1.1\r\nHost", b'POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n{"a"'],
    ids=["headers", "body"],
)
def test_a_client_too_slow_gets_408_and_nothing_runs(edge: Edge, raw: bytes) -> None:
    with Client(edge.port) as client:
        client.send(raw)
        error = json_error(client.answer(), 408)
        assert "did not arrive within 1 s" in error
        assert client.closed()
    assert edge.ran() == []


def test_a_body_cut_short_is_400_and_never_runs(edge: Edge) -> None:
    with Client(edge.port) as client:
        client.send(b'POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n{"a"')
        client.sock.shutdown(socket.SHUT_WR)  # the client is done sending, 6 bytes short
        error = json_error(client.answer(), 400)
        assert "ended before its body" in error
    assert edge.ran() == []


def test_slow_clients_hold_no_serving_thread(edge: Edge) -> None:
    """Ten times as many trickling uploads as there are serving threads in all: ordinary
    requests are still answered while they trickle (each answer must come before the
    1-second body deadline would have freed anything)."""
    slow = []
    for _ in range(10 * WORKERS * THREADS):
        client = Client(edge.port)
        client.send(b"POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{")
        slow.append(client)
    try:
        for _ in range(5):
            with Client(edge.port) as client:
                client.sock.settimeout(0.9)
                client.send(b"GET /ordinary HTTP/1.1\r\nHost: t\r\n\r\n")
                assert client.answer()[0] == 200
        for client in slow:  # and every trickler gets its 408 in the end
            json_error(client.answer(), 408)
    finally:
        for client in slow:
            client.close()
    assert set(edge.ran()) == {"GET /ordinary"}


def test_an_app_failure_is_a_json_500(edge: Edge) -> None:
    json_error(request(edge.port, b"GET /crash HTTP/1.1\r\nHost: t\r\n\r\n"), 500)


def test_sigterm_lets_running_requests_finish(tmp_path: Path) -> None:
    server = start_edge(tmp_path)
    with Client(server.port) as client:
        client.send(b"GET /sleep?seconds=1 HTTP/1.1\r\nHost: t\r\n\r\n")
        time.sleep(0.3)
        server.process.send_signal(signal.SIGTERM)
        assert client.answer()[0] == 200
    assert server.process.wait(30) == 0


def test_a_killed_worker_is_respawned(edge: Edge) -> None:
    victim = json.loads(request(edge.port, b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n")[2])["pid"]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 10
    pids = set()
    while len(pids - {victim}) < WORKERS and time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            pids.add(
                json.loads(request(edge.port, b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n")[2])["pid"]
            )
    assert len(pids - {victim}) == WORKERS  # the survivor and the new one both serve


def test_an_app_that_cannot_be_built_stops_the_server(tmp_path: Path) -> None:
    process = subprocess.run(
        [sys.executable, "-m", "infra.local.edge", "tests.support.edge_apps:broken",
         "--port", str(free_port())],
        cwd=REPO, capture_output=True, timeout=30,
    )  # fmt: skip
    assert process.returncode != 0
    assert b"cannot be built" in process.stderr


def test_a_client_still_sending_its_refused_body_gets_the_refusal(edge: Edge) -> None:
    """Closing a socket with unread input resets the connection, which could destroy the 413
    before the client reads it: the edge drains for a moment instead."""
    body = b"x" * 300_000
    with Client(edge.port) as client:
        client.send(b"POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body))
        time.sleep(0.3)  # the refusal is sent meanwhile
        for start in range(0, len(body), 10_000):
            client.send(body[start : start + 10_000])  # what a client unaware of it does
        json_error(client.answer(), 413)
        assert client.closed()
    assert edge.ran() == []


# --- requests that may wait -------------------------------------------------------------------


def waiting_edge(tmp_path: Path) -> Edge:
    """One worker with two threads for requests that may wait."""
    global WORKERS
    saved, WORKERS = WORKERS, 1
    try:
        return start_edge(tmp_path, EDGE_WAITING_THREADS="2")
    finally:
        WORKERS = saved


def test_a_waiting_request_whose_client_left_frees_its_thread(tmp_path: Path) -> None:
    edge = waiting_edge(tmp_path)
    try:
        for _ in range(2):  # both waiting threads taken, then their clients hang up
            with Client(edge.port) as client:
                client.send(b"GET /wait?seconds=30 HTTP/1.1\r\nHost: t\r\n\r\n")
                time.sleep(0.2)
        deadline = time.monotonic() + 10
        while True:  # the threads come back as soon as the edge sees the clients gone
            with Client(edge.port) as client:
                client.send(b"GET /wait?seconds=0.01 HTTP/1.1\r\nHost: t\r\n\r\n")
                status, _, body = client.answer()
            if status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert status == 200, body
        assert json.loads(body)["stopped"] is False
    finally:
        edge.process.send_signal(signal.SIGTERM)
        assert edge.process.wait(30) == 0


def test_sigterm_tells_waiting_requests_to_stop_and_answers_them(tmp_path: Path) -> None:
    edge = waiting_edge(tmp_path)
    with Client(edge.port, timeout=15) as client:
        client.send(b"GET /wait?seconds=60 HTTP/1.1\r\nHost: t\r\n\r\n")
        time.sleep(0.3)
        edge.process.send_signal(signal.SIGTERM)
        status, _, body = client.answer()
    assert status == 200
    assert json.loads(body)["stopped"] is True  # told to stop, not left to its 60 s
    assert edge.process.wait(30) == 0
