"""Read your writes (CONTRACT.md, "Read your writes: consistency tokens"): a GET that carries a
token answers only once the read models include the event the token names.

The projector records an event in `processed_events` in the same transaction as its changes
to every read model, and announces the range of outbox ids it recorded on PROJECTED_CHANNEL
at commit (shopcore/read/projections.py). One thread per query process (`ProjectionWatch`)
listens; a waiting request sleeps on its own threading.Event. A notification costs one query
for all the readers whose id falls in its range, and nothing for the others: waiting readers
do not poll the database. Once a second, while readers wait, the watch asks once for all of
them (a notification is lost when its connection drops), and a reader whose time runs out asks
once more itself before it gives up.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable

import psycopg

from shopcore import errors
from shopcore.events import tokens
from shopcore.platform import db, runtime
from shopcore.platform.config import settings
from shopcore.read.projections import PROJECTED_CHANNEL

log = logging.getLogger("shopcore.read.consistency")

TOKEN_HEADER = "X-Consistency-Token"
DEFAULT_WAIT_SECONDS = 5.0
MAX_WAIT_SECONDS = 30.0
RETRY_AFTER_SECONDS = 1
RECHECK_SECONDS = 1.0

PROJECTED = "SELECT outbox_id FROM processed_events WHERE outbox_id = ANY(%s)"
NEWEST = "SELECT coalesce(max(outbox_id), 0) FROM processed_events"

Projected = Callable[[list[int]], set[int]]

# A `Prefer: wait` value: seconds, a non-negative decimal number (float() reads any length)
_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def projected_in_read_models(outbox_ids: list[int]) -> set[int]:
    """Which of `outbox_ids` the read models include (the analytics role's pool)."""
    with db.analytics_pool().connection() as conn:
        return {row[0] for row in conn.execute(PROJECTED, (outbox_ids,))}


def newest_in_read_models() -> int:
    with db.analytics_pool().connection() as conn:
        return int(db.one(conn.execute(NEWEST).fetchone())[0])


class ProjectionWatch:
    """This process's view of what the projector has committed, and its waiting readers."""

    def __init__(
        self,
        url: str,
        projected: Projected = projected_in_read_models,
        newest: Callable[[], int] = newest_in_read_models,
    ) -> None:
        self._url = url
        self._projected = projected
        self._newest = newest
        self._lock = threading.Lock()
        self._waiters: dict[int, list[threading.Event]] = {}
        self._latest = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def latest(self) -> int:
        """The newest outbox id this process knows the read models include (0: none)."""
        self._start()
        return self._latest

    def wait_for(self, outbox_id: int, seconds: float) -> bool:
        """Whether the read models include `outbox_id`, waiting up to `seconds` for it."""
        if outbox_id <= 0:
            return True  # the token of "before any event"
        self._start()
        arrived = threading.Event()
        with self._lock:
            self._waiters.setdefault(outbox_id, []).append(arrived)
        try:
            # registered first: a commit after this check is announced to the watch
            if self._projected([outbox_id]):
                return True
            if seconds <= 0:
                return False
            return arrived.wait(seconds) or bool(self._projected([outbox_id]))
        finally:
            with self._lock:
                waiting = self._waiters.get(outbox_id, [])
                if arrived in waiting:
                    waiting.remove(arrived)
                if not waiting:
                    self._waiters.pop(outbox_id, None)

    def waiting(self) -> int:
        """How many readers are waiting now."""
        with self._lock:
            return sum(len(events) for events in self._waiters.values())

    def close(self) -> None:
        self._stop.set()

    # --- the listening thread --------------------------------------------------------------

    def _start(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is not None:
                return
            self._advance(self._newest())
            self._thread = threading.Thread(
                target=self._listen, name="projection-watch", daemon=True
            )
            self._thread.start()

    def _listen(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {PROJECTED_CHANNEL}")
                    backoff = 0.5
                    self._advance(self._newest())
                    self._recheck()  # whatever was committed while nobody listened
                    while not self._stop.is_set():
                        for notification in conn.notifies(timeout=RECHECK_SECONDS):
                            self._announced(notification.payload)
                        self._recheck()
            except (psycopg.Error, OSError) as exc:
                log.warning("projection watch lost its connection (%s); reconnecting", exc)
                self._stop.wait(backoff)
                backoff = min(5.0, backoff * 2)
            except Exception:
                # anything else must not end the thread: this process's waiting readers
                # would then wake only when their time ran out
                log.exception("projection watch failed; listening again")
                self._stop.wait(backoff)
                backoff = min(5.0, backoff * 2)

    def _announced(self, payload: str) -> None:
        match = re.fullmatch(r"(\d+) (\d+)", payload)
        if match is None:
            return
        low, high = int(match[1]), int(match[2])
        self._advance(high)
        with self._lock:
            candidates = [oid for oid in self._waiters if low <= oid <= high]
        if candidates:
            self._wake(self._projected(candidates))

    def _advance(self, outbox_id: int) -> None:
        # _start holds the (non-reentrant) lock while it calls this; a plain max is safe
        # there, and elsewhere only this thread moves _latest
        self._latest = max(self._latest, outbox_id)

    def _recheck(self) -> None:
        with self._lock:
            candidates = list(self._waiters)
        if candidates:
            self._wake(self._projected(candidates))

    def _wake(self, arrived: set[int]) -> None:
        with self._lock:
            for outbox_id in arrived:
                for event in self._waiters.get(outbox_id, []):
                    event.set()


WATCH = runtime.Part(
    "analytics: projection watch",
    lambda: ProjectionWatch(settings().analytics_database_url),
    ProjectionWatch.close,
)


def parse_wait(prefer: str | None) -> float:
    """The seconds `Prefer: wait=<seconds>` asks for (RFC 7240): DEFAULT_WAIT_SECONDS without
    it, at most MAX_WAIT_SECONDS; other preferences are ignored. A wait that is not a
    non-negative number is InvalidInput (400). Any number of digits counts (a longer wait than
    MAX_WAIT_SECONDS is a valid one, cut to it); only ASCII digits do (`\\d` and float() take
    other scripts' digits too)."""
    for preference in (prefer or "").split(","):
        name, _, value = preference.split(";")[0].strip().partition("=")
        if name.strip().lower() != "wait":
            continue
        text = value.strip()
        if len(text) >= 2 and text[0] == text[-1] == '"':
            text = text[1:-1]  # RFC 7240 allows a quoted-string
        if not _SECONDS.fullmatch(text):
            raise errors.InvalidInput(
                f"Prefer: wait must be a number of seconds >= 0, got {value.strip()[:40]!r}",
                field="Prefer",
            )
        return min(float(text), MAX_WAIT_SECONDS)
    return DEFAULT_WAIT_SECONDS


def read_after(token: str | None, prefer: str | None, seconds_left: float | None = None) -> str:
    """Wait until the read models include the event `token` names (at most the seconds
    `prefer` asks for, and never past `seconds_left`, the platform's deadline for the answer);
    the token the answer reflects. Call it before reading the models.

    Raises InvalidInput (400) for a token this API cannot have issued, and RetryLater (503)
    when the wait runs out."""
    watch = runtime.current().get(WATCH)
    if token is None:
        return tokens.issue(watch.latest())
    outbox_id = tokens.parse(token)
    seconds = parse_wait(prefer)
    if seconds_left is not None:
        seconds = min(seconds, seconds_left)
    if not watch.wait_for(outbox_id, seconds):
        raise errors.RetryLater(
            503,
            f"the read models do not include the write of this consistency token yet "
            f"(waited {seconds:g} s); retry, or ask for a longer wait with Prefer: wait=<s>",
            retry_after=RETRY_AFTER_SECONDS,
            consistencyToken=token,
        )
    return tokens.issue(max(outbox_id, watch.latest()))
