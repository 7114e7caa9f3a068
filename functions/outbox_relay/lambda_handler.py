"""outbox_relay on AWS Lambda: an EventBridge Scheduler event -> drain the outbox, then watch
it until Lambda's remaining time minus a safety margin. Returns the counts."""

from typing import Any

from shopcore.pipeline import lambda_entry

_drain = lambda_entry.schedule_handler()


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    return _drain(event, context)
