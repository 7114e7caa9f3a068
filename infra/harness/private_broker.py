"""A RabbitMQ node of one's own, for a test that stops or restarts its broker.

The machine's broker is shared by everything running on it: restarting it would drop every
other program's connections. `private_rabbitmq()` starts a separate node from the installed
RabbitMQ instead: its own node name, AMQP and distribution ports, data and log directory
(a temporary directory), its own config file and no plugins. On exit the node is stopped and
the directory deleted, whatever happened inside the block.

    with private_rabbitmq() as rabbit:
        stack = sandbox.create("shoptest", amqp_server=rabbit.url, node=rabbit.node)
        ...
        faults.restart_broker(rabbit.node)

It listens on loopback only, registers its name with the machine's epmd and uses the CLI's
Erlang cookie, like any node; it touches nothing of the shared node's. Starting takes about
5 s, stopping 1-2 s (RabbitMQ 3.10, the development machine).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from infra.harness.local_system import free_port
from infra.harness.sandbox import rabbitmqctl

# Run as root, the Debian rabbitmq-server and rabbitmqctl wrappers switch to this user.
SERVICE_USER = "rabbitmq"


@dataclass(frozen=True)
class PrivateRabbitMQ:
    node: str  # e.g. shoptest-1a2b3c4d@localhost: what rabbitmqctl -n takes
    url: str  # amqp://guest:guest@127.0.0.1:<port>, without a vhost
    port: int
    directory: Path

    @property
    def log_file(self) -> Path:
        return self.directory / "log" / f"{self.node}.log"

    def ctl(self, *args: str, timeout: float = 60) -> str:
        """`rabbitmqctl -n <this node> ...`: its output; CalledProcessError if it fails."""
        return rabbitmqctl(self.node, *args, timeout=timeout)

    def log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""


def _hand_over(directory: Path) -> None:
    """As root the node runs as SERVICE_USER: it must own its directory."""
    if os.geteuid() != 0:
        return
    try:
        user = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        return
    for path in [directory, *directory.rglob("*")]:
        os.chown(path, user.pw_uid, user.pw_gid)


@contextmanager
def private_rabbitmq(start_timeout: float = 60) -> Iterator[PrivateRabbitMQ]:
    for tool in ("rabbitmq-server", "rabbitmqctl"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is not on PATH: a private RabbitMQ node needs it")
    directory = Path(tempfile.mkdtemp(prefix="shoptest-rabbitmq-"))
    server: subprocess.Popen | None = None
    try:
        rabbit, env = _prepare(directory)
        with (directory / "server.out").open("wb") as out:
            # In the foreground, as our child: ours to stop, and to kill if need be.
            server = subprocess.Popen(
                ["rabbitmq-server"],
                env=env,
                cwd=directory,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _await_startup(rabbit, server, start_timeout)
        yield rabbit
    finally:
        if server is not None:
            _stop(rabbit, server)
        shutil.rmtree(directory, ignore_errors=True)


def _prepare(directory: Path) -> tuple[PrivateRabbitMQ, dict[str, str]]:
    """The node's files in `directory`, and the environment to start it with."""
    node = f"shoptest-{uuid.uuid4().hex[:8]}@localhost"
    port, dist_port = free_port(), free_port()
    rabbit = PrivateRabbitMQ(node, f"amqp://guest:guest@127.0.0.1:{port}", port, directory)
    (directory / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{port}\n")
    (directory / "enabled_plugins").write_text("")
    (directory / "rabbitmq-env.conf").write_text("")  # not the machine's /etc/rabbitmq one
    (directory / "mnesia").mkdir()
    (directory / "log").mkdir()
    _hand_over(directory)
    # Nothing inherited (RABBITMQ_MNESIA_DIR, RABBITMQ_LOGS, ...) may point at shared files.
    env = {k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_")}
    env.update({
        "RABBITMQ_NODENAME": node,
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(dist_port),
        "RABBITMQ_CONF_ENV_FILE": str(directory / "rabbitmq-env.conf"),
        "RABBITMQ_CONFIG_FILE": str(directory / "rabbitmq.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(directory / "enabled_plugins"),
        "RABBITMQ_MNESIA_BASE": str(directory / "mnesia"),  # also quorum, feature flags
        "RABBITMQ_LOG_BASE": str(directory / "log"),
        "RABBITMQ_PID_FILE": str(directory / "node.pid"),
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        "ERL_CRASH_DUMP": str(directory / "erl_crash.dump"),
    })  # fmt: skip
    return rabbit, env


def _await_startup(rabbit: PrivateRabbitMQ, server: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if server.poll() is not None:
            raise RuntimeError(
                f"RabbitMQ node {rabbit.node} exited ({server.returncode}) while starting:\n"
                + _tail(rabbit)
            )
        try:
            # fails at once while the node is not registered yet, then waits for its boot
            rabbit.ctl("await_startup", "--timeout", str(max(1, int(timeout))), timeout=timeout)
            return
        except subprocess.CalledProcessError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"RabbitMQ node {rabbit.node} not up in {timeout}s:\n{_tail(rabbit)}"
            )
        time.sleep(0.2)


def _stop(rabbit: PrivateRabbitMQ, server: subprocess.Popen) -> None:
    """`rabbitmqctl stop`; failing that, SIGKILL to the process we started and everything
    under it (the wrapper's `su` puts the node in a session of its own: no process group)."""
    if server.poll() is None:
        try:
            rabbit.ctl("stop", timeout=60)
            server.wait(30)
            return
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            pass
    victims = [*_descendants(server.pid), server.pid]
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    server.wait()
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in victims) and time.monotonic() < deadline:
        time.sleep(0.05)  # reparented, reaped by init


def _descendants(root: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [root]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def _tail(rabbit: PrivateRabbitMQ, chars: int = 3000) -> str:
    out = (rabbit.directory / "server.out").read_text(errors="replace")
    return (out + rabbit.log())[-chars:]
