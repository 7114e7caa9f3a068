"""AWS Lambda adapters: each function's `lambda_handler.py` is one call to one of these.

The HTTP functions run the very Flask app functions-framework builds from their `main.py`,
behind apig-wsgi (API Gateway HTTP API, payload format 2.0), so routing, validation and errors
are identical on every host. The relay's and the projector's adapters are the pipeline's
(shopcore/pipeline/lambda_entry.py); this module holds what every adapter shares.

This lives in the core, not in infra/, because a function's bundle ships `shopcore` and its own
directory only.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

Event = dict[str, Any]
LambdaHandler = Callable[[Event, Any], Any]


class LambdaContext(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


def http_handler(target: str, here: str) -> LambdaHandler:
    """API Gateway v2 events -> functions-framework's app for `target`, the main.py beside
    `here` (a handler's `__file__`): built once per cold start, reused while warm."""
    # Imported here: only the HTTP functions' bundles ship apig-wsgi.
    import functions_framework
    from apig_wsgi import make_lambda_handler

    app = functions_framework.create_app(  # type: ignore[no-untyped-call]
        target, str(Path(here).with_name("main.py")), "http"
    )
    return make_lambda_handler(app)
