"""The pipeline's progress over time, for the throughput plot: a thread samples, every
`interval` seconds, orders and products created (their id sequences) and how far events are
written, published and projected (outbox ids). Each sample is a few index lookups."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg

from shopcore.platform import db

WRITE_SIDE = """
SELECT (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM orders_id_seq),
       (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM products_id_seq),
       (SELECT coalesce(max(id), 0) FROM outbox),
       (SELECT min(id) FROM outbox WHERE published_at IS NULL)
"""
READ_SIDE = "SELECT coalesce(max(outbox_id), 0) FROM processed_events"

COLUMNS = ("t", "orders", "products", "written", "published", "projected")


class Timeline:
    def __init__(self, write_url: str, read_url: str, origin: float, interval: float = 0.25):
        self.write_url, self.read_url = write_url, read_url
        self.origin, self.interval = origin, interval
        self.rows: list[tuple[float, ...]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="timeline")

    def start(self) -> Timeline:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        try:
            with (
                psycopg.connect(self.write_url, autocommit=True) as write,
                psycopg.connect(self.read_url, autocommit=True) as read,
            ):
                while not self._stop.is_set():
                    orders, products, written, pending = db.one(
                        write.execute(WRITE_SIDE).fetchone()
                    )
                    projected = db.one(read.execute(READ_SIDE).fetchone())[0]
                    published = written if pending is None else pending - 1
                    t = round(time.monotonic() - self.origin, 3)
                    self.rows.append((t, orders, products, written, published, projected))
                    self._stop.wait(self.interval)
        except psycopg.Error:
            return  # the sandbox went away: the timeline ends there

    def to_json(self) -> dict[str, Any]:
        return {"columns": list(COLUMNS), "rows": [list(r) for r in self.rows]}
