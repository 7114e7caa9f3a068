"""Invoke a CloudEvent function in-process, through functions-framework's app for it.

This is how the platform delivers a trigger (a CloudEvent POSTed to the function), minus the
network hop: the function runs exactly as it would when served alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import functions_framework
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent
from werkzeug.test import Client

from infra.functions import Function

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def load(function: Function) -> WSGIApp:
    """The function's app, built by functions-framework from its main.py, as a platform
    builds it."""
    app: WSGIApp = functions_framework.create_app(  # type: ignore[no-untyped-call]
        function.target, str(function.source), function.signature_type
    )
    return app


def cloudevent_request(source: str, event_type: str, data: Any) -> tuple[dict[str, str], bytes]:
    """Headers and body of a new event in the CloudEvents HTTP binary binding (`ce-*`
    headers, the data as the body): what a platform POSTs to a CloudEvent function."""
    event = CloudEvent(
        {
            "id": str(uuid.uuid4()),
            "source": source,
            "type": event_type,
            "time": datetime.now(UTC).isoformat(),
            "datacontenttype": "application/json",
        },
        data,
    )
    headers, body = to_binary(event)
    return dict(headers), body


class CloudEventInvoker:
    def __init__(self, function: Function, source: str, event_type: str) -> None:
        self.client = Client(load(function))
        self.source = source
        self.event_type = event_type

    def __call__(self, data: dict[str, Any]) -> int:
        """Deliver one event; returns the HTTP status (200 ok, 503 retry later, 500 failed)."""
        headers, body = cloudevent_request(self.source, self.event_type, data)
        return self.client.post("/", headers=headers, data=body).status_code
