"""The routes of both HTTP APIs, declared once: which function answers which method and path.

Everything that routes reads this: each function's own method check (shopcore/platform/http.py)
and the query API's router (shopcore/read/query_api.py) here in the core, and, through
infra/functions.py, the local gateway and the AWS HTTP APIs. The OpenAPI documents beside this
file are held to exactly these routes by a test (tests/unit/test_routes.py).
"""

from __future__ import annotations

from dataclasses import dataclass

COMMAND = "command"
QUERY = "query"


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # as the OpenAPI documents write it: `{name}` for a path parameter
    endpoint: str = ""  # which of its function's handlers answers it (the query API's)


@dataclass(frozen=True)
class HttpFunction:
    name: str
    api: str  # COMMAND or QUERY: the API, and the gateway port, it belongs to
    # a gateway sends the function every path at or under `prefix`, whatever the method (the
    # function answers 404 and 405 itself, as JSON)
    prefix: str
    routes: tuple[Route, ...]

    @property
    def methods(self) -> tuple[str, ...]:
        """The methods its routes answer (HEAD wherever GET: shopcore/platform/admission.py)."""
        return tuple(dict.fromkeys(route.method for route in self.routes))


# Every HTTP function answers these itself, also under its prefix (shopcore/platform/http.py);
# a gateway sends them to the first function of its API.
META = (Route("GET", "/health", "health"), Route("GET", "/openapi.json", "openapi"))

CREATE_PRODUCT = HttpFunction(
    "create_product", COMMAND, "/api/products", (Route("POST", "/api/products"),)
)
CREATE_ORDER = HttpFunction("create_order", COMMAND, "/api/orders", (Route("POST", "/api/orders"),))
ANALYTICS = HttpFunction(
    "analytics",
    QUERY,
    "/api/analytics",
    (
        Route("GET", "/api/analytics/products/{productId}/sales", "product_sales"),
        Route("GET", "/api/analytics/categories/{category}/revenue", "category_revenue"),
        Route("GET", "/api/analytics/customers/{customerId}/lifetime-value", "customer_ltv"),
        Route("GET", "/api/analytics/sales/hourly", "hourly_sales"),
        Route("GET", "/api/analytics/sync-status", "sync_status"),
    ),
)

HTTP_FUNCTIONS = (CREATE_PRODUCT, CREATE_ORDER, ANALYTICS)


def api_routes(api: str) -> tuple[Route, ...]:
    """Every route of one API, its health and document included."""
    return tuple(r for f in HTTP_FUNCTIONS if f.api == api for r in f.routes) + META
