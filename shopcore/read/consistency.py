"""Read your writes (CONTRACT.md, "Read your writes: consistency tokens"): a GET that carries a
token answers only once the read models include the write that issued it, and every write
whose event has a lower outbox id and had committed by then (README, "Read your writes").

A token names an outbox id `n`. It is *covered* when `n` is projected and every outbox row
with an id below it that is visible in the write database is settled on the read side:
projected (recorded in `processed_events`, in the same transaction as its changes to every read
model) or parked in the dead-letter queue (`parked_events`: a parked event must not hold back
everyone else's tokens). Counting both sides over (watermark, n] decides it exactly, the read
side first: what it counts committed before what the write side counts, so equal counts mean
equal sets. Ids that were taken and rolled back have no row: they are never waited for.

The *watermark* is an id at or below which everything is settled for good: settled, and no
transaction can still commit an id below it (decided from the row's xmin, migration 0005).
Tokens at or below it are covered without a query, and counts start above it. Every 200
answers with the token of the highest id found covered (or the request's own, if newer): every
later read includes what it names, as the read models only move forward.

Waiting costs no polling per request. The projector announces the range of outbox ids it
recorded on PROJECTED_CHANNEL at commit (shopcore/read/projections.py); one thread per query
process (`ProjectionWatch`) listens, and for each announcement checks all the readers it may
concern together: two queries, more only when a hole lies below them (a bisection over the
readers' ids). Once a second it checks all waiting readers again (an announcement is lost when
its connection drops) and raises the watermark; at most ten times a second an announcement
also moves the 200s' token to the newest projected id.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterable
from typing import Protocol

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
# How often an announcement may also move the 200s' token forward (two queries) when no reader
# waits: the projector may commit hundreds of times a second.
ADVANCE_SECONDS = 0.1
# A `Prefer: wait` value: a non-negative decimal number of seconds (float() reads any length)
_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")


class Settlement(Protocol):
    """What deciding a token asks of the two databases (Postgres: `PostgresSettlement`)."""

    def read_side(self, low: int, high: int, ids: list[int]) -> tuple[int, set[int]]:
        """How many outbox ids in (low, high] the read side has settled (projected or
        parked), and which of `ids` are projected."""

    def write_side(self, low: int, high: int) -> tuple[int, bool]:
        """How many outbox rows with an id in (low, high] are committed, and whether no
        transaction can still commit an id below `high` (a committed row)."""

    def newest_projected(self) -> int:
        """The highest projected outbox id (0: none)."""


# Projected ids, plus parked ones not also projected (a replayed dead letter is both): two
# counts. (A UNION's de-duplication sorted the whole range: at 5M events a process's first
# count from 0 took 2.1-2.2 s on the read side against 0.31 s now; BENCHMARKS.md, "The tokens'
# cold start".)
SETTLED = """
SELECT
    (SELECT count(*) FROM processed_events
     WHERE outbox_id > %(low)s AND outbox_id <= %(high)s)
    + (SELECT count(*) FROM parked_events AS parked
       WHERE parked.outbox_id > %(low)s AND parked.outbox_id <= %(high)s
         AND NOT EXISTS (
             SELECT 1 FROM processed_events AS projected
             WHERE projected.outbox_id = parked.outbox_id)),
    ARRAY(SELECT DISTINCT outbox_id FROM processed_events WHERE outbox_id = ANY(%(ids)s))
"""
# One statement, one snapshot: the rows it counts are exactly those committed before the
# snapshot, and its xmin says whether a transaction that could still commit a lower id runs: the
# row's xmin was assigned after its outbox id was taken (migration 0005), so once the oldest
# running transaction is younger, every transaction that took a lower id has ended. xids are
# compared by age (32-bit, wrapping); a frozen row's age is the largest.
COMMITTED = """
SELECT
    (SELECT count(*) FROM outbox WHERE id > %(low)s AND id <= %(high)s),
    coalesce(
        (SELECT age(xmin) > age(xid(pg_snapshot_xmin(pg_current_snapshot())))
         FROM outbox WHERE id = %(high)s),
        false
    )
"""
NEWEST_PROJECTED = "SELECT coalesce(max(outbox_id), 0) FROM processed_events"


class PostgresSettlement:
    """The read database (the analytics role's pool) and the write side's outbox (read only,
    the pool sync-status reads it with)."""

    def read_side(self, low: int, high: int, ids: list[int]) -> tuple[int, set[int]]:
        with db.analytics_pool().connection() as conn:
            row = conn.execute(SETTLED, {"low": low, "high": high, "ids": ids}).fetchone()
        count, projected = db.one(row)
        return int(count), set(projected)

    def write_side(self, low: int, high: int) -> tuple[int, bool]:
        with db.analytics_outbox_pool().connection() as conn:
            row = conn.execute(COMMITTED, {"low": low, "high": high}).fetchone()
        count, final = db.one(row)
        return int(count), bool(final)

    def newest_projected(self) -> int:
        with db.analytics_pool().connection() as conn:
            return int(db.one(conn.execute(NEWEST_PROJECTED).fetchone())[0])


class _Waiter:
    """A waiting reader: `event` is set when the watch finds its token covered (`covered`), or
    by its server when it should stop waiting."""

    __slots__ = ("covered", "event")

    def __init__(self, event: threading.Event) -> None:
        self.event = event
        self.covered = False


class ProjectionWatch:
    """This process's view of what the read models include, and its waiting readers."""

    def __init__(self, url: str, settlement: Settlement | None = None) -> None:
        self._url = url
        self._settlement: Settlement = settlement or PostgresSettlement()
        self._lock = threading.Lock()  # the waiters
        self._checking = threading.Lock()  # one check at a time: later ones start higher
        self._waiters: dict[int, list[_Waiter]] = {}
        self._watermark = 0
        # the highest id found covered (settled up to it when checked; not necessarily final)
        self._reflected = 0
        self._newest = 0  # the highest outbox id announced projected
        self._last_advance = 0.0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def watermark(self) -> int:
        """An outbox id at or below which the read models include every committed write."""
        self._start()
        return self._watermark

    def reflected(self) -> int:
        """The outbox id whose token a 200 carries: the highest found covered, which every
        later read reflects too (it only moves forward); at least the watermark."""
        self._start()
        return max(self._watermark, self._reflected)

    def wait_for(self, outbox_id: int, seconds: float, stop: threading.Event | None = None) -> bool:
        """Whether the token of `outbox_id` is covered, waiting up to `seconds` for it, or
        until `stop` is set (the client has gone, the server is stopping): then False."""
        if outbox_id <= self._watermark:
            return True
        self._start()
        waiter = _Waiter(stop or threading.Event())
        with self._lock:
            self._waiters.setdefault(outbox_id, []).append(waiter)
        try:
            # registered first: an announcement after this check wakes it
            if outbox_id in self.covered([outbox_id]):
                return True
            if seconds <= 0 or waiter.event.is_set():
                return False
            waiter.event.wait(seconds)
            if waiter.covered:
                return True
            if stop is not None and stop.is_set():
                return False
            return outbox_id in self.covered([outbox_id])  # its time ran out: a last look
        finally:
            with self._lock:
                waiting = self._waiters.get(outbox_id, [])
                if waiter in waiting:
                    waiting.remove(waiter)
                if not waiting:
                    self._waiters.pop(outbox_id, None)

    def waiting(self) -> int:
        """How many readers are waiting now."""
        with self._lock:
            return sum(len(events) for events in self._waiters.values())

    def covered(self, outbox_ids: Iterable[int]) -> set[int]:
        """Which of `outbox_ids` are covered now; raises the watermark when it may."""
        with self._checking:
            low = self._watermark
            done = {oid for oid in outbox_ids if oid <= low}
            wanted = sorted({oid for oid in outbox_ids if oid > low})
            if not wanted:
                return done
            settled, projected = self._settlement.read_side(low, wanted[-1], wanted)
            candidates = [oid for oid in wanted if oid in projected]
            if not candidates:
                return done
            if candidates[-1] == wanted[-1] and self._settled_through(low, wanted[-1], settled):
                return done | set(candidates)
            # A hole below some of them: the settled prefixes shrink as the bound falls, so
            # bisect for the highest candidate whose prefix is settled.
            first, last, through = 0, len(candidates) - 1, -1
            while first <= last:
                middle = (first + last) // 2
                count, _ = self._settlement.read_side(low, candidates[middle], [])
                if self._settled_through(low, candidates[middle], count):
                    through, first = middle, middle + 1
                else:
                    last = middle - 1
            return done | set(candidates[: through + 1])

    def _settled_through(self, low: int, high: int, settled: int) -> bool:
        """Whether every committed id in (low, high] is settled, given how many the read side
        counted there (asked first); raises the watermark to `high` when that is for good."""
        committed, final = self._settlement.write_side(low, high)
        # Only the relay stamps messages with outbox ids (ce-sequence), so the read side holds
        # no id the outbox lacks and `settled` cannot exceed `committed`; a message stamped by
        # another producer would break that, and count here as settled.
        if settled < committed:
            return False
        self._reflected = max(self._reflected, high)
        if final:
            self._watermark = max(self._watermark, high)
        return True

    def close(self) -> None:
        self._stop.set()

    # --- the listening thread --------------------------------------------------------------

    def _start(self) -> None:
        """On first use: the watermark from what is projected now (one count of each side
        from the start, once per process), then the listening thread."""
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._newest = max(self._newest, self._settlement.newest_projected())
                self.covered([self._newest])
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
                    self._newest = max(self._newest, self._settlement.newest_projected())
                    while not self._stop.is_set():
                        self._recheck()  # also whatever committed while nobody listened
                        for notification in conn.notifies(timeout=RECHECK_SECONDS):
                            self._announced(notification.payload)
            except (psycopg.Error, OSError) as exc:
                log.warning("projection watch lost its connection (%s); reconnecting", exc)
                self._stop.wait(backoff)
                backoff = min(5.0, backoff * 2)
            except Exception:
                # anything else must not end the thread: this process's waiting readers would
                # then wake only when their time ran out, and the watermark would stop rising
                log.exception("projection watch failed; listening again")
                self._stop.wait(backoff)
                backoff = min(5.0, backoff * 2)

    def _announced(self, payload: str) -> None:
        match = re.fullmatch(r"(\d+) (\d+)", payload)
        if match is None:
            return
        low, high = int(match[1]), int(match[2])
        self._newest = max(self._newest, high)
        with self._lock:
            # a range can complete the prefix of any reader at or above its low end
            concerned = [oid for oid in self._waiters if oid >= low]
        self._wake(self.covered(concerned + self._advance(ADVANCE_SECONDS)))

    def _recheck(self) -> None:
        with self._lock:
            concerned = list(self._waiters)
        self._wake(self.covered(concerned + self._advance(0.0)))

    def _advance(self, every: float) -> list[int]:
        """The newest projected id, to check too, so that the 200s' token follows the
        projector: at most once per `every` seconds, and only when it is ahead."""
        now = time.monotonic()
        if (
            self._newest <= max(self._watermark, self._reflected)
            or now - self._last_advance < every
        ):
            return []
        self._last_advance = now
        return [self._newest]

    def _wake(self, arrived: set[int]) -> None:
        with self._lock:
            for outbox_id in arrived:
                for waiter in self._waiters.get(outbox_id, []):
                    waiter.covered = True
                    waiter.event.set()


WATCH = runtime.Part(
    "analytics: projection watch",
    lambda: ProjectionWatch(settings().analytics_database_url),
    ProjectionWatch.close,
)


def parse_wait(prefer: str | None) -> float:
    """The seconds `Prefer: wait=<seconds>` asks for (RFC 7240): DEFAULT_WAIT_SECONDS without
    it, at most MAX_WAIT_SECONDS; other preferences are ignored. A wait that is not a
    non-negative number is InvalidInput (400). A number of any length counts (a wait longer
    than MAX_WAIT_SECONDS is a valid one, cut to it); only ASCII digits do (`\\d` and float()
    would take other scripts' digits too)."""
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


def read_after(
    token: str | None,
    prefer: str | None,
    seconds_left: float | None = None,
    stop: threading.Event | None = None,
) -> str:
    """Wait until the token is covered (at most the seconds `prefer` asks for, never past
    `seconds_left`, the platform's deadline for the answer, and not once `stop` is set: the
    client has gone or the server is stopping); the token the answer reflects. Call it before
    reading the models.

    Raises InvalidInput (400) for a token this API cannot have issued, and RetryLater (503)
    when the wait runs out."""
    watch = runtime.current().get(WATCH)
    if token is None:
        return tokens.issue(watch.reflected())
    outbox_id = tokens.parse(token)
    seconds = parse_wait(prefer)
    if seconds_left is not None:
        seconds = min(seconds, seconds_left)
    if not watch.wait_for(outbox_id, seconds, stop):
        raise errors.RetryLater(
            503,
            f"the read models do not include the write of this consistency token yet "
            f"(waited {seconds:g} s); retry, or ask for a longer wait with Prefer: wait=<s>",
            retry_after=RETRY_AFTER_SECONDS,
            consistencyToken=token,
        )
    return tokens.issue(max(outbox_id, watch.reflected()))
