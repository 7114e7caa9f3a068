"""The test process's view of a sandbox: make shopcore use it, and give a test one of its own."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from infra.harness.sandbox import AMQP_SERVER, Stack, create, drop
from shopcore.platform import runtime

__all__ = ["Stack", "activate", "create", "drop", "isolated", "reset_process_state"]


def activate(stack: Stack) -> None:
    """Point this process's shopcore at `stack` (env, settings, pools, cached connections)."""
    os.environ.update(stack.env())
    reset_process_state()


def reset_process_state() -> None:
    runtime.current().reset()


@contextmanager
def isolated(amqp_server: str = AMQP_SERVER, node: str | None = None) -> Iterator[Stack]:
    """A fresh stack, active for the block; the previous settings come back afterwards.
    Its vhost is on the broker at `amqp_server` (rabbitmqctl node `node`), by default the
    machine's."""
    saved = {k: os.environ.get(k) for k in ("DATABASE_URL", "READ_DATABASE_URL", "BROKER_URL")}
    stack = create("shoptest", amqp_server, node)
    try:
        activate(stack)
        yield stack
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset_process_state()
        drop(stack)
