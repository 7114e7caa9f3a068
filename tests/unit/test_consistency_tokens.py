"""Consistency tokens without services (CONTRACT.md, "Read your writes: consistency tokens"):
the token's spelling, `Prefer: wait`, and the projection watch's waiting logic with its
database queries replaced by counting fakes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shopcore import errors
from shopcore.events import tokens
from shopcore.events.model import MAX_ID
from shopcore.platform import runtime
from shopcore.read import consistency
from shopcore.read.consistency import ProjectionWatch

# --- tokens ------------------------------------------------------------------------------------


@pytest.mark.parametrize("outbox_id", [0, 1, 9, 10, 12345, 2**31, MAX_ID])
def test_a_token_names_the_outbox_id_it_was_issued_for(outbox_id):
    token = tokens.issue(outbox_id)
    assert token.startswith("c1.")
    assert tokens.parse(token) == outbox_id
    assert tokens.issue(tokens.parse(token)) == token


@pytest.mark.parametrize(
    "token",
    [
        "",
        "c1",
        "c1.",
        "c1.-1",
        "c1.+1",
        "c1.01",
        "c1.00",
        "c1.1e3",
        "c1.1.5",
        "c1.0x10",
        "c1. 5",
        "c1.5 ",
        "c1.5\n",
        "c1.1_000",
        "c2.5",
        "C1.5",
        "5",
        "c1.c1.5",
        f"c1.{MAX_ID + 1}",  # 9223372036854775808
        "c1." + "9" * 20,
        "c1." + "1" * 5000,  # more digits than int() reads
        "c1.\u0663",  # ARABIC-INDIC DIGIT THREE
        "c1.\uff15",  # FULLWIDTH DIGIT FIVE
        "c1.\u00b2",  # SUPERSCRIPT TWO: isdigit(), but no number
        "c1.\U0001d7d3",  # MATHEMATICAL BOLD DIGIT FIVE
        "x" * 100_000,
        "c1.5" * 10_000,
    ],
)
def test_an_unparseable_token_is_400_naming_the_header(token):
    with pytest.raises(errors.InvalidInput) as raised:
        tokens.parse(token)
    assert raised.value.status == 400
    assert raised.value.details["field"] == "X-Consistency-Token"
    assert len(raised.value.message) < 200  # a huge token is not echoed whole


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=40), st.text(max_size=30).map(lambda t: "c1." + t)))
def test_any_text_is_a_token_or_a_400(text):
    try:
        outbox_id = tokens.parse(text)
    except errors.InvalidInput as exc:
        assert exc.details["field"] == "X-Consistency-Token"
    else:
        assert 0 <= outbox_id <= MAX_ID
        assert tokens.issue(outbox_id) == text  # only what the system itself issues


# --- Prefer: wait ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefer", "seconds"),
    [
        (None, 5.0),
        ("", 5.0),
        ("respond-async", 5.0),
        ("return=minimal", 5.0),
        ("wait=0", 0.0),
        ("wait=2.5", 2.5),
        ("wait=30", 30.0),
        ("wait=31", 30.0),
        ("wait=30.5", 30.0),
        ("wait=99999999999", 30.0),  # a valid number of seconds, just a long one
        ("wait=" + "9" * 500, 30.0),
        ("wait=0.1234567", 0.1234567),
        ("wait=007", 7.0),
        ("respond-async, wait=3", 3.0),
        ("respond-async,wait=3", 3.0),
        ("wait=3, respond-async", 3.0),
        ('wait="4"', 4.0),
        ("WAIT=1", 1.0),
        ("Wait=1", 1.0),
        (" wait = 2 ", 2.0),
        ("wait=3; foo=bar", 3.0),
        ("wait=1, wait=9", 1.0),  # RFC 7240: the first one counts
        ("return=minimal; wait=9", 5.0),  # a parameter of another preference, not a wait
        ("waiting=9", 5.0),
        ("foo=bar, handling=lenient", 5.0),
    ],
)
def test_prefer_wait(prefer, seconds):
    assert consistency.parse_wait(prefer) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "prefer",
    [
        "wait=-1",
        "wait=abc",
        "wait=",
        "wait",
        "wait=1e3",
        "wait=1.",
        "wait=.5",
        "wait=inf",
        "wait=nan",
        "wait=0x10",
        "wait=+3",
        "wait=1 2",
        'wait="4',
        'wait=""',
        "wait=\u0663",  # another script's digit: float() would take it
        "respond-async, wait=soon",
    ],
)
def test_a_wait_that_is_not_a_non_negative_number_is_400_naming_prefer(prefer):
    with pytest.raises(errors.InvalidInput) as raised:
        consistency.parse_wait(prefer)
    assert raised.value.status == 400
    assert raised.value.details["field"] == "Prefer"


# --- the projection watch ----------------------------------------------------------------------


class FakeSides:
    """Both databases as the watch asks about them (consistency.Settlement), counting every
    question: the outbox's committed ids and the ids of transactions still running on the write
    side; the read side's projected and parked ids."""

    def __init__(self) -> None:
        self.committed: set[int] = set()
        self.running: set[int] = set()  # ids taken by transactions not yet ended
        self.projected: set[int] = set()
        self.parked: set[int] = set()
        self.reads: list[tuple[int, int, tuple[int, ...]]] = []
        self.writes: list[tuple[int, int]] = []
        self.newest_asked = 0
        self._lock = threading.Lock()

    # what the test does
    def commit(self, *ids: int) -> None:
        with self._lock:
            self.committed.update(ids)
            self.running.difference_update(ids)

    def project(self, *ids: int) -> None:
        with self._lock:
            self.projected.update(ids)

    def write_and_project(self, *ids: int) -> None:
        self.commit(*ids)
        self.project(*ids)

    def questions(self) -> int:
        with self._lock:
            return len(self.reads) + len(self.writes)

    # consistency.Settlement
    def read_side(self, low: int, high: int, ids: list[int]) -> tuple[int, set[int]]:
        with self._lock:
            self.reads.append((low, high, tuple(ids)))
            settled = {i for i in self.projected | self.parked if low < i <= high}
            return len(settled), self.projected & set(ids)

    def write_side(self, low: int, high: int) -> tuple[int, bool]:
        with self._lock:
            self.writes.append((low, high))
            count = len({i for i in self.committed if low < i <= high})
            final = high in self.committed and not any(i < high for i in self.running)
            return count, final

    def newest_projected(self) -> int:
        with self._lock:
            self.newest_asked += 1
            return max(self.projected, default=0)


@pytest.fixture
def sides() -> FakeSides:
    sides = FakeSides()
    sides.write_and_project(*range(1, 8))  # everything up to 7 is in the read models
    return sides


@pytest.fixture
def watch(sides, monkeypatch) -> Iterator[ProjectionWatch]:
    """A watch over the fake databases whose listening thread hears nothing: the tests make
    its announcements and rechecks themselves (no database, no LISTEN)."""
    monkeypatch.setattr(ProjectionWatch, "_listen", lambda self: self._stop.wait())
    built = ProjectionWatch("postgresql://unused", sides)
    yield built
    built.close()


def started(watch: ProjectionWatch, sides: FakeSides) -> ProjectionWatch:
    """`watch` after its first use, with the count of questions that cost forgotten."""
    watch.watermark()
    sides.reads.clear()
    sides.writes.clear()
    return watch


def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


class Waiter:
    """wait_for(outbox_id, seconds) on a thread of its own."""

    def __init__(self, watch: ProjectionWatch, outbox_id: int, seconds: float = 30) -> None:
        self.outbox_id = outbox_id
        self.result: bool | None = None
        self.thread = threading.Thread(
            target=lambda: setattr(self, "result", watch.wait_for(outbox_id, seconds)),
            daemon=True,
        )
        self.thread.start()

    def done(self) -> bool:
        return not self.thread.is_alive()

    def join(self, timeout: float = 10) -> bool | None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"waiter for {self.outbox_id} still waiting"
        return self.result


def test_the_watermark_starts_at_what_is_settled_for_good(watch, sides):
    assert watch.watermark() == 7
    assert watch.watermark() == 7
    assert sides.newest_asked == 1  # once per process, not per request


def test_a_token_at_or_below_the_watermark_asks_nothing(watch, sides):
    started(watch, sides)
    for outbox_id in (0, 1, 7):
        assert watch.wait_for(outbox_id, 0) is True
    assert sides.questions() == 0


def test_the_token_of_before_any_event_is_always_covered(watch, sides):
    assert watch.wait_for(0, 0) is True
    assert watch.wait_for(0, 30) is True
    assert sides.questions() == 0  # not even the first use's


def test_a_covered_token_is_answered_at_once_with_one_question_to_each_side(watch, sides):
    started(watch, sides)
    sides.write_and_project(8, 9)
    began = time.monotonic()
    assert watch.wait_for(9, 30) is True
    assert time.monotonic() - began < 10  # far from the 30 s it could have waited
    assert (len(sides.reads), len(sides.writes)) == (1, 1)
    assert watch.waiting() == 0
    assert watch.watermark() == 9  # settled for good: no later check counts below it


def test_wait_zero_answers_at_once_when_not_projected(watch, sides):
    started(watch, sides)
    sides.commit(8)
    assert watch.wait_for(8, 0) is False
    assert len(sides.reads) == 1 and sides.writes == []  # not projected: nothing else to ask
    assert watch.waiting() == 0


def test_a_committed_write_below_that_is_not_settled_holds_a_token_back(watch, sides):
    started(watch, sides)
    sides.commit(8)  # committed, not projected yet
    sides.write_and_project(9)
    assert watch.wait_for(9, 0) is False
    sides.project(8)
    assert watch.wait_for(9, 0) is True


def test_a_parked_write_below_holds_back_no_token(watch, sides):
    started(watch, sides)
    sides.commit(8)
    sides.parked.add(8)  # in the dead-letter queue: it will not be projected
    sides.write_and_project(9)
    assert watch.wait_for(9, 0) is True


def test_an_id_that_rolled_back_is_never_waited_for(watch, sides):
    started(watch, sides)
    sides.write_and_project(10)  # 8 and 9 were taken and rolled back: no rows
    assert watch.wait_for(10, 0) is True
    assert watch.watermark() == 10


def test_a_transaction_still_running_below_keeps_the_watermark_down(watch, sides):
    started(watch, sides)
    sides.running.add(8)  # took 8, not committed yet
    sides.write_and_project(9)
    assert watch.wait_for(9, 0) is True  # 8 had not committed: 9's token does not wait for it
    assert watch.watermark() == 7  # but 8 may still commit below 9
    sides.write_and_project(8)
    assert watch.wait_for(9, 0) is True
    assert watch.watermark() == 9


def test_a_reader_whose_time_runs_out_asks_once_more(watch, sides):
    class ProjectedJustNow(FakeSides):
        def read_side(self, low, high, ids):
            answer = super().read_side(low, high, ids)
            self.project(*ids)  # true from the second question on
            return answer

    late = ProjectedJustNow()
    late.commit(3)
    patient = ProjectionWatch("postgresql://unused", late)
    try:
        assert patient.wait_for(3, 0.05) is True
        assert [ids for _, _, ids in late.reads[-2:]] == [(3,), (3,)]
    finally:
        patient.close()


def test_a_reader_that_runs_out_of_time_is_forgotten(watch, sides):
    started(watch, sides)
    sides.commit(9)
    assert watch.wait_for(9, 0.05) is False
    assert len(sides.reads) == 2  # on arrival, and once more when its time ran out
    assert watch.waiting() == 0


def test_an_announcement_wakes_the_readers_it_covers_with_one_check_for_all(watch, sides):
    started(watch, sides)
    sides.commit(*range(8, 41))
    waiters = {oid: Waiter(watch, oid) for oid in (8, 12, 20, 25, 40)}
    wait_until(lambda: watch.waiting() == 5)
    asked = sides.questions()
    assert len(sides.reads) == 5  # one each, on arrival: nothing was projected

    sides.project(*range(8, 26))
    watch._announced("8 25")

    for oid in (8, 12, 20, 25):
        assert waiters[oid].join() is True
    # one question to each side for all of them: the highest concerned (40) is not projected,
    # so the rest is a bisection over the four that are (a few more questions, not 4 x 2)
    assert sides.questions() - asked <= 2 + 2 * 3
    time.sleep(0.1)
    assert not waiters[40].done()
    assert watch.waiting() == 1

    sides.project(*range(26, 41))
    before = sides.questions()
    watch._announced("26 40")
    assert waiters[40].join() is True
    assert sides.questions() - before == 2
    assert watch.waiting() == 0


def test_an_announcement_asks_nothing_for_the_readers_below_its_range(watch, sides, monkeypatch):
    monkeypatch.setattr(consistency, "ADVANCE_SECONDS", 3600.0)  # not moving the 200s' token
    started(watch, sides)
    watch._last_advance = time.monotonic()
    sides.commit(8, 9, 10)
    waiter = Waiter(watch, 8)
    wait_until(lambda: watch.waiting() == 1)
    asked = sides.questions()
    watch._announced("9 10")  # cannot complete 8's prefix
    assert sides.questions() == asked
    assert not waiter.done()
    sides.project(8)
    watch._announced("8 8")
    assert waiter.join() is True


def test_many_readers_cost_a_few_questions_not_a_question_each(watch, sides):
    started(watch, sides)
    ids = list(range(8, 8 + 64))
    sides.commit(*ids)
    waiters = [Waiter(watch, oid) for oid in ids]
    wait_until(lambda: watch.waiting() == 64)
    time.sleep(0.2)
    arrived = sides.questions()
    assert arrived == 64  # one each, on arrival; none while they wait

    sides.project(*ids[:40])  # a hole from id 48 on: a bisection, about log2(40) steps
    watch._announced(f"{ids[0]} {ids[39]}")
    assert all(w.join() for w in waiters[:40])
    assert sides.questions() - arrived <= 2 + 2 * 7
    assert not any(w.done() for w in waiters[40:])

    sides.project(*ids[40:])
    before = sides.questions()
    watch._recheck()  # the watch's once-a-second check of everyone
    assert all(w.join() for w in waiters[40:])
    assert sides.questions() - before == 2


def test_many_readers_of_one_write_wake_together(watch, sides):
    started(watch, sides)
    sides.commit(77)
    waiters = [Waiter(watch, 77) for _ in range(20)]
    wait_until(lambda: watch.waiting() == 20)
    sides.project(77)
    asked = sides.questions()
    watch._announced("77 77")
    assert all(w.join() for w in waiters)
    assert sides.questions() - asked == 2


@pytest.mark.parametrize("payload", ["", "5", "5 ", "a b", "5 6 7", "-1 5", "5-6"])
def test_a_malformed_announcement_is_ignored(watch, sides, payload):
    started(watch, sides)
    sides.commit(8)
    waiter = Waiter(watch, 8)
    wait_until(lambda: watch.waiting() == 1)
    sides.project(8)
    asked = sides.questions()
    watch._announced(payload)
    assert sides.questions() == asked
    watch._announced("8 8")
    assert waiter.join() is True


def test_an_announcement_moves_the_token_forward_without_readers(watch, sides):
    started(watch, sides)
    sides.write_and_project(8, 9, 10)
    watch._announced("8 10")  # nobody waits: only the newest id is checked, once
    assert (watch.watermark(), watch.reflected()) == (10, 10)
    assert sides.questions() == 2
    watch._announced("10 10")
    watch._recheck()  # nothing newer: nothing to ask
    assert sides.questions() == 2


def test_announcements_move_the_token_at_most_every_advance_seconds(watch, sides, monkeypatch):
    monkeypatch.setattr(consistency, "ADVANCE_SECONDS", 3600.0)
    started(watch, sides)
    watch._last_advance = float("-inf")  # none yet
    sides.write_and_project(8)
    watch._announced("8 8")
    sides.write_and_project(9)
    watch._announced("9 9")  # within ADVANCE_SECONDS of the last: asks nothing
    assert (watch.reflected(), sides.questions()) == (8, 2)
    watch._recheck()  # the once-a-second recheck catches up
    assert (watch.reflected(), sides.questions()) == (9, 4)


# --- read_after: what the query API calls -------------------------------------------------------


@pytest.fixture
def installed(watch, monkeypatch) -> Iterator[ProjectionWatch]:
    """`watch` as the process's projection watch."""
    part = runtime.Part("test projection watch", lambda: watch)
    monkeypatch.setattr(consistency, "WATCH", part)
    yield watch
    runtime.current().reset(part)


def test_without_a_token_the_answer_carries_the_watermark(installed, sides):
    assert consistency.read_after(None, None) == "c1.7"
    assert consistency.read_after(None, "wait=abc") == "c1.7"  # Prefer alone is ignored


def test_a_covered_token_answers_with_the_newer_of_it_and_the_watermark(installed, sides):
    assert consistency.read_after("c1.3", None) == "c1.7"
    assert consistency.read_after("c1.0", "wait=0") == "c1.7"
    sides.running.add(8)  # 9 is covered, but the watermark stays below 8
    sides.write_and_project(9)
    assert consistency.read_after("c1.9", "wait=0") == "c1.9"


def test_a_token_not_covered_in_time_is_503_with_retry_after(installed, sides):
    sides.commit(9)
    with pytest.raises(errors.RetryLater) as raised:
        consistency.read_after("c1.9", "wait=0")
    assert raised.value.status == 503
    assert raised.value.headers() == {"Retry-After": "1"}
    assert raised.value.body()["consistencyToken"] == "c1.9"
    assert raised.value.body()["error"]


def test_the_platforms_deadline_cuts_the_wait(installed, sides):
    sides.commit(9)
    began = time.monotonic()
    with pytest.raises(errors.RetryLater):
        consistency.read_after("c1.9", "wait=30", seconds_left=0.0)
    assert time.monotonic() - began < 10


def test_a_bad_token_or_wait_is_400_before_anything_is_asked(installed, sides):
    installed.watermark()
    sides.reads.clear()
    sides.writes.clear()
    with pytest.raises(errors.InvalidInput) as bad_token:
        consistency.read_after("c1.01", "wait=0")
    with pytest.raises(errors.InvalidInput) as bad_wait:
        consistency.read_after("c1.500", "wait=-1")
    assert bad_token.value.details["field"] == "X-Consistency-Token"
    assert bad_wait.value.details["field"] == "Prefer"
    assert sides.questions() == 0
