"""The runtime seam: process state built once on first use, closed and rebuilt by a reset."""

from __future__ import annotations

import threading

import pytest

from shopcore.platform import runtime
from shopcore.platform.config import SETTINGS, settings


class Resource:
    built = 0

    def __init__(self, log: list[str], name: str) -> None:
        Resource.built += 1
        self.log, self.name, self.closed = log, name, False

    def close(self) -> None:
        self.closed = True
        self.log.append(self.name)


def part(log: list[str], name: str) -> runtime.Part[Resource]:
    return runtime.Part(name, lambda: Resource(log, name), Resource.close)


def test_a_part_is_built_once_and_shared():
    log: list[str] = []
    state, first = runtime.Runtime(), part(log, "a")
    got = [state.get(first) for _ in range(3)]
    assert got[0] is got[1] is got[2]


def test_concurrent_first_uses_build_one():
    log: list[str] = []
    state, first = runtime.Runtime(), part(log, "a")
    before = Resource.built
    barrier = threading.Barrier(8)
    got: list[Resource] = []

    def use() -> None:
        barrier.wait()
        got.append(state.get(first))

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Resource.built - before == 1
    assert len({id(r) for r in got}) == 1


def test_reset_closes_every_part_newest_first_and_the_next_use_builds_again():
    log: list[str] = []
    state = runtime.Runtime()
    a, b = part(log, "a"), part(log, "b")
    old_a, old_b = state.get(a), state.get(b)

    state.reset()

    assert log == ["b", "a"] and old_a.closed and old_b.closed
    assert state.get(a) is not old_a
    state.reset()
    state.reset()  # nothing built: nothing to close
    assert log == ["b", "a", "a"]


def test_reset_of_named_parts_leaves_the_others():
    log: list[str] = []
    state = runtime.Runtime()
    a, b = part(log, "a"), part(log, "b")
    kept = state.get(a)
    state.get(b)

    state.reset(b)

    assert log == ["b"] and state.get(a) is kept


def test_a_part_that_fails_to_close_does_not_keep_the_others_open():
    log: list[str] = []
    state = runtime.Runtime()

    def refuse(_: object) -> None:
        raise OSError("already gone")

    a, broken = part(log, "a"), runtime.Part("broken", object, refuse)
    state.get(a)
    state.get(broken)

    with pytest.raises(OSError, match="already gone"):
        state.reset()
    assert log == ["a"]
    assert state.get(a) is not None  # forgotten, built again


def test_settings_are_read_again_after_their_reset(monkeypatch):
    monkeypatch.setenv("RELAY_BATCH_SIZE", "7")
    runtime.current().reset(SETTINGS)
    assert settings().relay_batch_size == 7
    monkeypatch.setenv("RELAY_BATCH_SIZE", "9")
    assert settings().relay_batch_size == 7  # read once per process
    runtime.current().reset(SETTINGS)
    assert settings().relay_batch_size == 9
    monkeypatch.undo()
    runtime.current().reset(SETTINGS)
