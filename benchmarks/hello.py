"""The hello-world ceilings of the HTTP stack, served like the system's ports
(infra/local/http_server.py: granian or gunicorn, each building the app from a factory).

granian --interface wsgi --factory benchmarks.hello:wsgi_app      # raw WSGI: the server's own
granian --interface wsgi --factory benchmarks.hello:function_app  # a functions-framework function
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
    """hello_function.py loaded through functions-framework's create_app, and its answers
    buffered into one chunk, exactly as infra/local/gateway.py serves the system's functions."""
    import functions_framework

    from infra.local.gateway import buffered

    source = Path(__file__).with_name("hello_function.py")
    function = functions_framework.create_app("hello", str(source), "http")
    return lambda environ, start_response: buffered(function(environ, start_response))
