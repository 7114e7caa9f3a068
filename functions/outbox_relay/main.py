"""outbox_relay (scheduled CloudEvent): drain the outbox to RabbitMQ.

Each invocation publishes until the outbox is empty; with RELAY_WATCH=true (the default) it
then keeps watching for new rows until its time budget, so events leave within milliseconds
between two scheduled runs.
"""

import functions_framework
from cloudevents.http import CloudEvent

from shopcore.pipeline import relay
from shopcore.platform import logs, outages

logs.configure()


@functions_framework.cloud_event
def outbox_relay(cloud_event: CloudEvent) -> None:
    relay.invoke(trigger=cloud_event["type"])


# An outage (broker or database down) is answered 503: the scheduler backs off and retries.
outages.answer_503(functions_framework.errorhandler)
