"""Test-wide setup: one isolated stack (databases + vhost) per run for the service tests.

Unit tests need nothing running. Tests marked `services` get the run's stack; a test that
needs a pristine world uses the `fresh_stack` fixture instead.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator

import pytest

from tests.support import stack as stacks

# Tests build functions-framework apps; keep their logs quiet unless asked.
os.environ.setdefault("LOG_LEVEL", "WARNING")

_ids = itertools.count(1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark by folder: integration tests need the services, e2e tests start processes."""
    for item in items:
        path = str(item.path)
        if "/tests/integration/" in path:
            item.add_marker(pytest.mark.services)
        elif "/tests/e2e/" in path:
            item.add_marker(pytest.mark.services)
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def run_stack() -> Iterator[stacks.Stack]:
    stack = stacks.create("shoptest")
    stacks.activate(stack)
    yield stack
    stacks.reset_process_state()
    stacks.drop(stack)


@pytest.fixture
def services(run_stack: stacks.Stack) -> stacks.Stack:
    """The run's stack, active in this process."""
    stacks.activate(run_stack)
    return run_stack


@pytest.fixture
def fresh_stack(run_stack: stacks.Stack) -> Iterator[stacks.Stack]:
    """A stack of its own for a test that needs empty databases and queues."""
    with stacks.isolated() as stack:
        yield stack
    stacks.activate(run_stack)


@pytest.fixture(scope="module")
def module_stack(run_stack: stacks.Stack) -> Iterator[stacks.Stack]:
    """A stack of its own for one test module: for tests whose outcome depends on every event
    in it (consistency tokens wait for every earlier event, and other tests leave events
    unprojected). Activate it in each test with `stacks.activate`."""
    with stacks.isolated() as stack:
        yield stack
    stacks.activate(run_stack)


@pytest.fixture
def unique() -> str:
    """A short unique token for names (categories, products) a test must own."""
    return uuid.uuid4().hex[:8]


@pytest.fixture
def customer_id() -> int:
    """A customer id no other test in this run uses."""
    return 10_000_000 + next(_ids)
