"""projector (queue-triggered CloudEvent): apply a batch of events to the read models.

The event's data is a batch in Amazon MQ's `rmqMessagesByQueue` shape. Returning normally
means "ack the whole batch"; raising means "redeliver it".
"""

import functions_framework
from cloudevents.http import CloudEvent

from shopcore.pipeline import messages
from shopcore.pipeline.projector import handle_batch
from shopcore.platform import logs, outages

logs.configure()


@functions_framework.cloud_event
def projector(cloud_event: CloudEvent) -> None:
    handle_batch(messages.from_batch(cloud_event.data or {}))


# An outage is not the batch's fault: 503 makes the trigger retry it in place.
outages.answer_503(functions_framework.errorhandler)
