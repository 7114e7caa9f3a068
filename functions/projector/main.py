"""projector (queue-triggered CloudEvent): apply a batch of events to the read models.

The event's data is a batch in Amazon MQ's `rmqMessagesByQueue` shape. Returning normally
means "ack the whole batch"; raising means "redeliver it".
"""

import functions_framework
from cloudevents.http import CloudEvent

from shopcore import consumer, logs, messages

logs.configure()


@functions_framework.cloud_event
def projector(cloud_event: CloudEvent) -> None:
    batch = messages.from_batch(cloud_event.data or {})
    with logs.invocation("projector", received=len(batch)) as record:
        outcome = consumer.project_batch(batch)
        record.update(
            applied=outcome.applied,
            duplicates=outcome.duplicates,
            deadLettered=len(outcome.dead_lettered),
            eventIds=outcome.event_ids[:50],
        )


# A dependency outage is not the batch's fault: 503 tells the trigger to retry the same batch
# later instead of counting a failed delivery against every message in it.
for _unavailable in consumer.UNAVAILABLE:
    functions_framework.errorhandler(_unavailable)(lambda exc: ("dependency unavailable", 503))
