"""The local emulation's queue trigger process: `python -m infra.local.queue_trigger`, one
QueueTrigger (infra/triggers/queue.py) feeding the projector in-process. SIGTERM or SIGINT: the
batch in hand finishes (or returns to the queue), then exit."""

from __future__ import annotations

import argparse
import os
import signal

from infra.functions import by_name
from infra.triggers.queue import QueueTrigger
from shopcore.platform import logs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m infra.local.queue_trigger")
    parser.add_argument(
        "--priority", type=int, default=0, help="consumer priority (x-priority); default 0"
    )
    priority = parser.parse_args(argv).priority
    logs.configure()
    projector = by_name("projector")
    trigger = QueueTrigger(
        batch_size=int(os.environ.get("PROJECTOR_BATCH_SIZE", projector.batch_size)),
        window_seconds=int(os.environ.get("PROJECTOR_BATCH_WINDOW_MS", projector.batch_window_ms))
        / 1000,
        priority=priority,
    )

    def shutdown(signum: int, _frame: object) -> None:
        trigger.stop.set()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    trigger.run()


if __name__ == "__main__":
    main()
