"""The pipeline's AWS Lambda entry points: each of the relay's and the projector's
`lambda_handler.py` is one call to one of these. They call the same core as the CloudEvent
entry points in `main.py`, with Lambda's notions of time budget and failure instead of HTTP
statuses."""

from __future__ import annotations

from typing import Any

from shopcore.platform import logs
from shopcore.platform.aws_lambda import Event, LambdaContext, LambdaHandler

# The relay stops starting batches this long before Lambda would kill it: the batch in hand
# (claim, publish with confirms, commit) and the return must fit in what is left. A short
# timeout keeps half of its time instead, so a misconfigured function still drains something.
RELAY_SAFETY_MARGIN_SECONDS = 10.0


def relay_budget(context: LambdaContext) -> float:
    """Seconds the relay may drain and watch: what Lambda leaves it, minus the safety margin."""
    remaining = max(0.0, context.get_remaining_time_in_millis() / 1000)
    return remaining - min(RELAY_SAFETY_MARGIN_SECONDS, remaining / 2)


def schedule_handler() -> LambdaHandler:
    """An EventBridge Scheduler invocation of outbox_relay: drain the outbox, then (RELAY_WATCH,
    default true, as in main.py) keep watching it until the budget, so rows written between two
    schedules leave within milliseconds. An outage raises: Lambda records a failed invocation
    and the next schedule tries again; unpublished rows simply wait in the outbox."""
    # Imported here: each bundle ships only what its function needs.
    from shopcore.pipeline import relay

    logs.configure()

    def handle(event: Event, context: LambdaContext) -> dict[str, int]:
        trigger = event.get("detail-type") or event.get("source") or "direct"
        result = relay.invoke(trigger, budget_seconds=relay_budget(context))
        return {"published": result.published, "batches": result.batches}

    return handle


def queue_handler() -> LambdaHandler:
    """An Amazon MQ for RabbitMQ event source mapping batch -> the projector.

    That trigger has no partial-batch failure, so `project_batch` parks each message it cannot
    apply in the dead-letter queue itself and applies the rest. Anything it raises (an outage)
    fails the invocation and the mapping redelivers the whole batch; applied events come back
    as duplicates and are skipped by eventId.
    """
    from shopcore.pipeline import messages
    from shopcore.pipeline.projector import handle_batch

    logs.configure()

    def handle(event: Event, context: Any) -> dict[str, int]:
        outcome = handle_batch(messages.from_batch(event))
        return {
            "received": outcome.received,
            "applied": outcome.applied,
            "duplicates": outcome.duplicates,
            "deadLettered": len(outcome.dead_lettered),
        }

    return handle
