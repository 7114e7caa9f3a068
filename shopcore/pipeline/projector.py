"""The projector's work on one batch of queue messages.

Valid events are applied in one read-database transaction; a message that cannot be applied
(not JSON, unknown type, missing fields) is parked in the dead-letter queue with its reason so
it never blocks the rest. The trigger acks the batch only after this returns.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg

from shopcore import events
from shopcore.pipeline import broker
from shopcore.pipeline.messages import QueueMessage
from shopcore.platform import db, logs, runtime
from shopcore.platform.outages import UNAVAILABLE
from shopcore.read.projections import (
    Delivered,
    PostgresReadModelStore,
    ReadModelStore,
    apply_events,
)

log = logging.getLogger("shopcore.pipeline.projector")

DeadLetter = Callable[[QueueMessage, str], None]

DEAD_LETTER_CHANNELS = runtime.Part(
    "projector: broker connection and dead-letter channel",
    lambda: broker.ConnectionCache(broker.confirmed_channel),
    lambda channels: channels.close(),
)


def park(message: QueueMessage, reason: str) -> None:
    """Dead-letter through this process's cached, confirm-mode broker channel."""
    channels = runtime.current().get(DEAD_LETTER_CHANNELS)
    try:
        broker.dead_letter(channels.get(), message.queue, message.body, message.properties, reason)
    except broker.CONNECTION_ERRORS:
        channels.close()
        raise


def read_models() -> ReadModelStore:
    """The read database, as the projector's role."""
    return PostgresReadModelStore(db.projector_pool())


@dataclass
class BatchOutcome:
    received: int = 0
    applied: int = 0
    duplicates: int = 0
    dead_lettered: list[str] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)


def project_batch(
    messages: list[QueueMessage],
    dead_letter: DeadLetter = park,
    store: ReadModelStore | None = None,
) -> BatchOutcome:
    """Apply `messages` to the read models (by default the projector's database), parking
    those that cannot be applied with `dead_letter`."""
    outcome = BatchOutcome(received=len(messages))
    _record_last_tries(messages, store)
    parsed: list[tuple[QueueMessage, events.Event, int | None]] = []
    rejected: list[tuple[QueueMessage, str]] = []
    for message in messages:
        try:
            parsed.append((message, events.parse(message.body), message.outbox_id))
        except events.MalformedEvent as exc:
            rejected.append((message, str(exc)))

    if parsed:
        store = read_models() if store is None else store
        refused = 0
        try:
            outcome.applied = _apply(store, [(event, oid) for _, event, oid in parsed])
        except UNAVAILABLE:
            raise
        except psycopg.Error as exc:
            # The database refused something in this batch (a value out of range, say).
            # Apply one event per transaction so only the offender is parked.
            log.warning("batch refused by the read database (%s); applying one by one", exc)
            outcome.applied = refused = 0
            for message, event, oid in parsed:
                try:
                    outcome.applied += _apply(store, [(event, oid)])
                except UNAVAILABLE:
                    raise
                except psycopg.Error as single:
                    refused += 1
                    rejected.append((message, f"refused by the read database: {single}"))
        outcome.duplicates = len(parsed) - outcome.applied - refused
        outcome.event_ids = [str(event.event_id) for _, event, _ in parsed]
    # After the commit: if parking fails the batch is redelivered, the applied events are
    # recognised as duplicates, and parking is tried again.
    outcome.dead_lettered = _park_all(rejected, dead_letter, store)
    return outcome


def _record_last_tries(messages: list[QueueMessage], store: ReadModelStore | None) -> None:
    """A message on one of its last deliveries is recorded as parked before it is tried: if
    this batch fails again (a message that kills its consumer), the broker parks it in the
    dead-letter queue itself, and it must not hold back consistency tokens there either. If
    it is applied after all, it is both recorded and projected, which readers count once."""
    last = [
        (m.outbox_id, f"delivered {m.delivery_count} times before; the broker parks it next")
        for m in messages
        if m.outbox_id is not None and m.delivery_count >= broker.DELIVERY_LIMIT - 1
    ]
    if last:
        (read_models() if store is None else store).record_parked(last)


def _park_all(
    rejected: list[tuple[QueueMessage, str]],
    dead_letter: DeadLetter,
    store: ReadModelStore | None,
) -> list[str]:
    """Park each rejected message; returns their message ids. Their outbox ids are recorded
    first, so no parked event holds back a consistency token (shopcore/read/consistency.py)."""
    parked = [(m.outbox_id, why) for m, why in rejected if m.outbox_id is not None]
    if parked:
        (read_models() if store is None else store).record_parked(parked)
    ids = []
    for message, reason in rejected:
        dead_letter(message, reason)
        ids.append(message.properties.get("messageId") or "?")
        log.warning("dead-lettered a message from %s: %s", message.queue, reason)
    return ids


def _apply(store: ReadModelStore, batch: list[Delivered]) -> int:
    return store.transaction(lambda models: apply_events(models, batch))


def handle_batch(batch: list[QueueMessage]) -> BatchOutcome:
    """One projector invocation, whatever the host: apply the batch, log one line about it."""
    with logs.invocation("projector", received=len(batch)) as record:
        outcome = project_batch(batch)
        record.update(
            applied=outcome.applied,
            duplicates=outcome.duplicates,
            deadLettered=len(outcome.dead_lettered),
            eventIds=outcome.event_ids[:50],
        )
    return outcome
