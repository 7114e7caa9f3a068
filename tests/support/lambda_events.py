"""The canonical trigger events (tests/events/*.json) and the Lambda side of a test.

Every test that needs a trigger's payload starts from one of these files and changes only
what it is about (a body, a path, the messages), so the shapes stay AWS's documented ones.
"""

from __future__ import annotations

import base64
import copy
import importlib.util
import json
import time
from pathlib import Path
from typing import Any

import pika

from infra.functions import by_name
from shopcore.pipeline import messages
from shopcore.platform import jsonio

EVENTS = Path(__file__).resolve().parent.parent / "events"


def load_event(name: str) -> dict[str, Any]:
    """A fresh copy of tests/events/<name>.json."""
    return json.loads((EVENTS / f"{name}.json").read_text())


def http_request(
    method: str,
    path: str,
    body: Any = None,
    *,
    raw: bytes | None = None,
    query: str = "",
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The documented API Gateway v2 request, aimed at `method path` with a JSON body."""
    event = load_event("apigw_v2_http_request")
    data = raw if raw is not None else b"" if body is None else jsonio.dumps(body).encode()
    event["rawPath"] = path
    event["rawQueryString"] = query
    event["routeKey"] = event["requestContext"]["routeKey"] = f"ANY {path}"
    event["requestContext"]["http"].update(method=method, path=path)
    event["headers"].update({"content-type": "application/json", "content-length": str(len(data))})
    event["headers"].update(headers or {})
    # API Gateway base64-encodes bodies it does not know to be text; do the same for raw bytes
    if raw is not None:
        event["body"], event["isBase64Encoded"] = base64.b64encode(data).decode(), True
    else:
        event["body"], event["isBase64Encoded"] = data.decode(), False
    if body is None and raw is None:
        del event["body"]
    return event


def amq_batch(queue: str, deliveries: list[tuple[pika.BasicProperties, bytes]]) -> dict[str, Any]:
    """The documented Amazon MQ event with its one sample message replaced by `deliveries`.

    Each entry keeps the sample's extra properties (userId, timestamp, a numeric header...)
    and gets our message id, headers (as byte arrays) and base64 data.
    """
    event = load_event("amazonmq_rabbitmq_batch")
    [[sample]] = event["rmqMessagesByQueue"].values()
    ours = messages.to_batch([(queue, props, body, False) for props, body in deliveries])
    entries = []
    for entry in next(iter(ours["rmqMessagesByQueue"].values())):
        merged = copy.deepcopy(sample)
        merged["basicProperties"]["headers"].update(entry["basicProperties"]["headers"])
        for key in ("messageId", "contentType", "bodySize"):
            merged["basicProperties"][key] = entry["basicProperties"][key]
        merged["data"] = entry["data"]
        entries.append(merged)
    event["rmqMessagesByQueue"] = {f"{queue}::/": entries}
    return event


class FakeContext:
    """The part of Lambda's context object the handlers use, with a real clock."""

    def __init__(self, remaining_seconds: float, function_name: str = "test") -> None:
        self._deadline = time.monotonic() + remaining_seconds
        self.function_name = function_name
        self.aws_request_id = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


_handlers: dict[str, Any] = {}


def lambda_handler(name: str) -> Any:
    """functions/<name>/lambda_handler.py's `handler`, loaded once per test run, as Lambda
    loads it: by file, beside that function's main.py."""
    if name not in _handlers:
        path = by_name(name).source.with_name("lambda_handler.py")
        spec = importlib.util.spec_from_file_location(f"lambda_handler_{name}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _handlers[name] = module.handler
    return _handlers[name]
