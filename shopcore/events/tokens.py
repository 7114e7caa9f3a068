"""Consistency tokens (CONTRACT.md, "Read your writes"): a token names one event by its outbox
id. The write side issues the token of the event it committed; the read side waits until that
event is projected, and answers with the token of the newest event it knows projected.

A token guarantees the event it names, not a position in a sequence: README, "Read your
writes", says what that means for other writes, for commits out of id order and for ids that
are never committed. Clients treat tokens as opaque strings.
"""

from __future__ import annotations

from shopcore import errors
from shopcore.events.model import MAX_ID

PREFIX = "c1."  # the write statements add the outbox id themselves (migration 0005)
_MAX_DIGITS = len(str(MAX_ID))


def issue(outbox_id: int) -> str:
    """The token of the event stored under `outbox_id` (0: before any event)."""
    return f"{PREFIX}{outbox_id}"


def parse(token: str) -> int:
    """The outbox id a token names; InvalidInput (400) for a string this system cannot have
    issued."""
    digits = token[len(PREFIX) :] if token.startswith(PREFIX) else ""
    if (
        not 1 <= len(digits) <= _MAX_DIGITS
        or not digits.isascii()
        or not digits.isdigit()
        or (len(digits) > 1 and digits[0] == "0")
        or int(digits) > MAX_ID
    ):
        raise errors.InvalidInput(
            f"X-Consistency-Token: not a token this API issued: {token[:80]!r}",
            field="X-Consistency-Token",
        )
    return int(digits)
