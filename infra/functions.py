"""The one place that defines the five functions: entry point, trigger, routes, schedule.

The local emulation, docker-compose.yml (checked by a test), the bundles and the AWS and GCP
deployments all read it, so they never disagree. An HTTP function's API and routes are the
core's declaration (shopcore/openapi/routes.py), which the functions themselves and the query
API's router read too: the core never imports infra, so routes live there, declared once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shopcore.openapi import routes as http_routes

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Function:
    name: str
    target: str  # the decorated Python function in main.py
    trigger: str  # "http" | "schedule" | "queue"
    signature_type: str  # functions-framework's: "http" | "cloudevent"
    http: http_routes.HttpFunction | None = None  # for trigger "http": its API and routes
    queues: tuple[str, ...] = ()
    schedule_minutes: int = 0  # for trigger "schedule": how often the platform invokes it
    # the database role it connects as (infra/migrations/*/0002_roles.sql) and the variables
    # that carry its URLs
    role: str = ""
    database_urls: tuple[str, ...] = ()
    # seconds one invocation may run (the relay drains and watches the outbox until then)
    timeout_seconds: int = 30
    # for trigger "queue": most messages per invocation, and how long to wait for more after
    # the first (larger batches amortise each invocation's cost: BENCHMARKS.md)
    batch_size: int = 0
    batch_window_ms: int = 0

    @property
    def source(self) -> Path:
        return REPO / "functions" / self.name / "main.py"

    @property
    def port(self) -> str:
        """Which gateway port serves it: its API, "command" or "query" ("" if not HTTP)."""
        return self.http.api if self.http else ""

    @property
    def routes(self) -> tuple[tuple[str, str], ...]:
        """(method, path prefix) pairs a gateway sends to it: every path at or under its
        prefix, for each method its routes answer."""
        if self.http is None:
            return ()
        return tuple((method, self.http.prefix) for method in self.http.methods)


FUNCTIONS = (
    Function(
        "create_product",
        "create_product",
        "http",
        "http",
        http=http_routes.CREATE_PRODUCT,
        role="shop_command",
        database_urls=("COMMAND_DATABASE_URL",),
    ),
    Function(
        "create_order",
        "create_order",
        "http",
        "http",
        http=http_routes.CREATE_ORDER,
        role="shop_command",
        database_urls=("COMMAND_DATABASE_URL",),
    ),
    Function(
        "analytics",
        "analytics",
        "http",
        "http",
        http=http_routes.ANALYTICS,
        role="shop_analytics",
        database_urls=("ANALYTICS_DATABASE_URL", "ANALYTICS_OUTBOX_DATABASE_URL"),
    ),
    Function(
        "outbox_relay",
        "outbox_relay",
        "schedule",
        "cloudevent",
        schedule_minutes=1,
        role="shop_relay",
        database_urls=("RELAY_DATABASE_URL",),
        timeout_seconds=70,  # a 60 s budget (drain, then watch) inside each 1-minute slot
    ),
    Function(
        "projector",
        "projector",
        "queue",
        "cloudevent",
        queues=("product-events", "order-events"),
        batch_size=500,
        batch_window_ms=10,
        role="shop_projector",
        database_urls=("PROJECTOR_DATABASE_URL",),
    ),
)


def by_name(name: str) -> Function:
    return next(f for f in FUNCTIONS if f.name == name)
