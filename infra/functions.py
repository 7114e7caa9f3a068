"""The one place that defines the five functions: entry point, trigger, routes.

The local emulation reads it; deployment targets should too, so they never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Function:
    name: str
    target: str  # the decorated Python function in main.py
    trigger: str  # "http" | "schedule" | "queue"
    signature_type: str  # functions-framework's: "http" | "cloudevent"
    routes: tuple[tuple[str, str], ...] = ()  # (method, path or path prefix)
    port: str = ""  # which gateway port serves it: "command" | "query"
    queues: tuple[str, ...] = ()

    @property
    def source(self) -> Path:
        return REPO / "functions" / self.name / "main.py"


FUNCTIONS = (
    Function(
        "create_product",
        "create_product",
        "http",
        "http",
        routes=(("POST", "/api/products"),),
        port="command",
    ),
    Function(
        "create_order",
        "create_order",
        "http",
        "http",
        routes=(("POST", "/api/orders"),),
        port="command",
    ),
    Function(
        "analytics",
        "analytics",
        "http",
        "http",
        routes=(("GET", "/api/analytics"),),
        port="query",
    ),
    Function("outbox_relay", "outbox_relay", "schedule", "cloudevent"),
    Function(
        "projector",
        "projector",
        "queue",
        "cloudevent",
        queues=("product-events", "order-events"),
    ),
)


def by_name(name: str) -> Function:
    return next(f for f in FUNCTIONS if f.name == name)
