"""The projector's push bridge on Google Cloud: RabbitMQ -> CloudEvents over HTTPS.

Cloud Run functions have no RabbitMQ trigger, so this always-on Cloud Run service consumes the
projector's queues with the local emulation's QueueTrigger (same batches, acks, retries and
delivery limit) and POSTs each batch to the projector's URL as a binary-mode CloudEvent, with
an identity token of the service's account when --id-token is given (the projector is private).

    python -m infra.deploy.gcp.bridge --target https://projector-...run.app --id-token \
        --health-port 8080
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from infra.functions import by_name
from infra.triggers.invoke import cloudevent_request
from infra.triggers.queue import QueueTrigger
from shopcore.platform import logs

log = logging.getLogger("infra.deploy.gcp.bridge")

SOURCE = "//infra.deploy.gcp.bridge/rabbitmq"
EVENT_TYPE = "dev.shop.rabbitmq.messages"
# "Not now" from the platform (no instance free, cold start failed): keep the batch and retry
# it in place, as for the projector's own 503, without using up the messages' deliveries.
RETRY_IN_PLACE = {429, 502, 503}
METADATA_IDENTITY = (
    "http://metadata.google.internal/computeMetadata/v1/instance/service-account/identity"
)


class IdentityToken:
    """A Google-signed ID token for `audience`, from the metadata server of the Cloud Run
    instance; they live an hour, so one is reused for 30 minutes."""

    def __init__(self, audience: str, lifetime: float = 1800) -> None:
        self.url = f"{METADATA_IDENTITY}?{urllib.parse.urlencode({'audience': audience})}"
        self.lifetime = lifetime
        self.token, self.expires = "", 0.0

    def __call__(self) -> str:
        if time.monotonic() >= self.expires:
            request = urllib.request.Request(self.url, headers={"Metadata-Flavor": "Google"})
            with urllib.request.urlopen(request, timeout=10) as response:
                self.token = response.read().decode()
            self.expires = time.monotonic() + self.lifetime
        return self.token


class HttpInvoker:
    """`invoke(batch) -> status` for QueueTrigger: POST the batch as a CloudEvent to `url`."""

    def __init__(self, url: str, token: Callable[[], str] | None = None, timeout: float = 40):
        self.url, self.token, self.timeout = url, token, timeout

    def __call__(self, batch: dict[str, Any]) -> int:
        headers, body = cloudevent_request(SOURCE, EVENT_TYPE, batch)
        try:
            if self.token:
                headers["Authorization"] = f"Bearer {self.token()}"
        except OSError as exc:
            log.warning("no identity token from the metadata server: %s", exc)
            return 503
        try:
            request = urllib.request.Request(self.url, body, headers, method="POST")
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (TimeoutError, urllib.error.URLError) as exc:
            if isinstance(exc, TimeoutError) or isinstance(exc.reason, TimeoutError):
                return 504  # it may still be working on the batch: a delivery, like a failure
            log.warning("projector unreachable at %s: %s", self.url, exc.reason)
            return 503
        return 503 if status in RETRY_IN_PLACE else status


def serve_health(port: int) -> ThreadingHTTPServer:
    """Cloud Run starts a service only once it listens on its port: answer GET with 200."""

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"status": "ok"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("0.0.0.0", port), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m infra.deploy.gcp.bridge", description=__doc__)
    parser.add_argument("--target", required=True, help="the projector's URL")
    parser.add_argument("--id-token", action="store_true", help="send the account's ID token")
    parser.add_argument("--health-port", type=int, help="answer GET /health on this port")
    args = parser.parse_args(argv)
    logs.configure()
    projector = by_name("projector")
    token = IdentityToken(args.target) if args.id_token else None
    trigger = QueueTrigger(
        batch_size=int(os.environ.get("PROJECTOR_BATCH_SIZE", projector.batch_size)),
        window_seconds=int(os.environ.get("PROJECTOR_BATCH_WINDOW_MS", projector.batch_window_ms))
        / 1000,
        # the platform's timeout, plus its own start-up and network time
        invoke=HttpInvoker(args.target, token, timeout=projector.timeout_seconds + 10),
    )
    health = serve_health(args.health_port) if args.health_port else None

    def shutdown(signum: int, _frame: object) -> None:
        trigger.stop.set()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    log.info("bridging %s to %s", ", ".join(projector.queues), args.target)
    trigger.run()
    if health:
        health.shutdown()


if __name__ == "__main__":
    main()
