"""The process's state in one place: built on first use, kept while warm, reset in one call.

A FaaS instance serves many invocations from one process, so what is costly to build (the
settings read from the environment, connection pools, broker connections, caches) is built by
the first invocation and reused by the warm ones. Each module declares its piece as a `Part`
(how to build it, how to close it) next to the code that uses it; the process's `Runtime`
holds every part built so far. `reset()` closes them and forgets them, so the next use builds
them again from the environment: tests call it after changing the environment, and it runs at
interpreter exit.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

T = TypeVar("T")


def _nothing_to_close(_part: object) -> None:
    pass


@dataclass(frozen=True, eq=False)
class Part(Generic[T]):
    """A piece of process state: `build()` makes it on first use, `close(it)` releases it.

    Parts compare by identity: declare each once, at module level."""

    name: str
    build: Callable[[], T]
    close: Callable[[T], None] = _nothing_to_close


class Runtime:
    """Every part this process has built, and the one way to build and reset them."""

    def __init__(self) -> None:
        self._built: dict[Part[Any], Any] = {}
        # reentrant: building one part may use another (a pool reads the settings)
        self._lock = threading.RLock()

    def get(self, part: Part[T]) -> T:
        """`part`, built now if this is its first use since the last reset."""
        try:
            return cast(T, self._built[part])
        except KeyError:
            with self._lock:
                if part not in self._built:
                    self._built[part] = part.build()
                return cast(T, self._built[part])

    def reset(self, *parts: Part[Any]) -> None:
        """Close `parts` (every part built, newest first, when none is named) and forget them:
        the next `get` builds each again. Parts kept per thread (broker connections, the
        relay's database connections) close the calling thread's; other threads' connections
        are released when those threads end."""
        with self._lock:
            chosen = list(parts) if parts else list(reversed(self._built))
            closing = [(part, self._built.pop(part)) for part in chosen if part in self._built]
        failures: list[BaseException] = []
        for part, built in closing:
            try:
                part.close(built)
            except Exception as exc:  # close the others first, then report
                failures.append(exc)
        if failures:
            raise failures[0]


_process = Runtime()


def current() -> Runtime:
    """This process's runtime."""
    return _process


atexit.register(_process.reset)
