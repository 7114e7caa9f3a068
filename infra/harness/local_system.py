"""The local emulation (`python -m infra.local`) as a real process tree in a sandbox, for the
end-to-end tests, the soak and the benchmarks."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from infra.functions import FUNCTIONS, REPO
from infra.harness.sandbox import Stack

ROLE_VARIABLES = {
    "USE_FUNCTION_ROLES",
    *(function_url for function in FUNCTIONS for function_url in function.database_urls),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalSystem:
    def __init__(self, stack: Stack, log_path: Path, **env: str) -> None:
        self.stack = stack
        self.log_path = log_path
        self.command_port, self.query_port = free_port(), free_port()
        # Every process connects as its own least-privilege role: the default, so neither the
        # opt-out nor a function URL is inherited from this process (`env` may set them).
        inherited = {k: v for k, v in os.environ.items() if k not in ROLE_VARIABLES}
        self.env = {
            **inherited,
            **stack.env(),
            "COMMAND_SERVICE_PORT": str(self.command_port),
            "QUERY_SERVICE_PORT": str(self.query_port),
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self.process: subprocess.Popen | None = None

    @property
    def command_url(self) -> str:
        return f"http://127.0.0.1:{self.command_port}"

    @property
    def query_url(self) -> str:
        return f"http://127.0.0.1:{self.query_port}"

    def start(self, timeout: float = 30) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "infra.local"],
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"infra.local exited early:\n{self.log()[-3000:]}")
            try:
                if all(
                    requests.get(f"{url}/health", timeout=1).status_code == 200
                    for url in (self.command_url, self.query_url)
                ):
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"infra.local not healthy in {timeout}s:\n{self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def pid_of(self, service: str) -> int:
        """The newest pid the supervisor reported for `service` (e.g. 'projector queue trigger')."""
        found = re.findall(rf"started {re.escape(service)} \(pid (\d+)\)", self.log())
        if not found:
            raise LookupError(service)
        return int(found[-1])

    def instances(self, service: str) -> list[int]:
        """The newest pid of each instance of `service` ("projector queue trigger" also
        finds "projector queue trigger #2", ...)."""
        newest: dict[str, int] = {}
        pattern = rf"started ({re.escape(service)}(?: #\d+)?) \(pid (\d+)\)"
        for name, pid in re.findall(pattern, self.log()):
            newest[name] = int(pid)
        if not newest:
            raise LookupError(service)
        return list(newest.values())

    def stop(self, timeout: float = 40) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            raise
