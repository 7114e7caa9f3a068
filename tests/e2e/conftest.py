"""The local emulation as real processes, in a sandbox of its own, for a test module or test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from infra.harness.private_broker import PrivateRabbitMQ
from tests.support import stack as stacks
from tests.support.local_system import LocalSystem


@contextmanager
def running_system(
    log_dir: Path, run_stack: stacks.Stack, rabbit: PrivateRabbitMQ | None = None
) -> Iterator[LocalSystem]:
    """Start `python -m infra.local` on a fresh sandbox; on exit it must stop cleanly (0).
    With `rabbit`, the sandbox's vhost is on that private node instead of the machine's."""
    broker = {"amqp_server": rabbit.url, "node": rabbit.node} if rabbit else {}
    with stacks.isolated(**broker) as stack:
        local = LocalSystem(stack, log_dir / "local.log")
        local.start()
        try:
            yield local
        finally:
            code = local.stop()
            assert code == 0, local.log()[-3000:]
    stacks.activate(run_stack)
