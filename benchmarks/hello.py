"""The hello-world ceilings of the HTTP stack, served like the system's ports
(infra/local/http_server.py: the edge server, building the app from a factory).

python -m infra.local.edge benchmarks.hello:wsgi_app ...      # raw WSGI: the server's own
python -m infra.local.edge benchmarks.hello:function_app ...  # a functions-framework function
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

BODY = b'{"status":"ok"}'


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]
    )
    return [BODY]


def wsgi_app() -> Callable[..., Iterable[bytes]]:
    return app


def function_app() -> Any:
    """hello_function.py loaded through functions-framework's create_app, exactly as
    infra/local/gateway.py loads the system's functions."""
    import functions_framework

    source = Path(__file__).with_name("hello_function.py")
    return functions_framework.create_app("hello", str(source), "http")
