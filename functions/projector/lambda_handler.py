"""projector on AWS Lambda: an Amazon MQ for RabbitMQ batch (`rmqMessagesByQueue`) -> the read
models. Malformed events are parked in the dead-letter queue; an outage raises, and the event
source mapping redelivers the whole batch."""

from typing import Any

from shopcore.pipeline import lambda_entry

_project = lambda_entry.queue_handler()


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    return _project(event, context)
