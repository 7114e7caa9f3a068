"""infra/harness/private_broker.py: a RabbitMQ node of a test's own, on the installed RabbitMQ, that
leaves nothing behind, whatever happened while it ran."""

from __future__ import annotations

import socket
import subprocess

import pytest

from infra.harness.private_broker import private_rabbitmq
from shopcore.pipeline import broker


@pytest.mark.slow
def test_a_private_node_serves_the_topology_and_is_gone_afterwards_even_on_failure():
    with pytest.raises(RuntimeError, match="the test failed"), private_rabbitmq() as rabbit:
        assert rabbit.node.startswith("shoptest-")
        connection = broker.connect(f"{rabbit.url}/%2F")
        broker.declare_topology(connection.channel())  # quorum queues need a real node
        connection.close()
        raise RuntimeError("the test failed")
    assert not rabbit.directory.exists()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", rabbit.port), timeout=2).close()
    with pytest.raises(subprocess.CalledProcessError):
        rabbit.ctl("ping", "--timeout", "2")
