"""The relay's schedule trigger: invoke outbox_relay every RELAY_SCHEDULE_SECONDS.

An invocation drains and then watches the outbox until its budget (RELAY_BUDGET_SECONDS), so
with the next invocation starting as soon as one ends, new rows leave within milliseconds.
Failures (broker or database down) back off exponentially, up to 10 s. SIGTERM ends the
current batch, then the process.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

from infra.functions import by_name
from infra.triggers.invoke import CloudEventInvoker
from shopcore.pipeline import relay
from shopcore.platform import logs

log = logging.getLogger("infra.schedule_trigger")


def main() -> None:
    logs.configure()
    stop = threading.Event()

    def shutdown(signum: int, _frame: object) -> None:
        stop.set()
        relay.stop_requested.set()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)

    interval = float(os.environ.get("RELAY_SCHEDULE_SECONDS", "1"))
    invoke = CloudEventInvoker(
        by_name("outbox_relay"), "//local/scheduler", "google.cloud.scheduler.job.v1.executed"
    )
    backoff = 0.0
    while not stop.is_set():
        started = time.monotonic()
        status = invoke({"schedule": f"every {interval}s"})
        if status == 200:
            backoff = 0.0
            stop.wait(max(0.0, interval - (time.monotonic() - started)))
        else:
            backoff = min(10.0, max(0.25, backoff * 2))
            log.warning("outbox_relay failed (HTTP %s); retrying in %.2fs", status, backoff)
            stop.wait(backoff)
    relay.close()


if __name__ == "__main__":
    main()
