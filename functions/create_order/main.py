"""create_order (HTTP): POST an order -> 201 {"orderId", "consistencyToken"}; 400 unknown
product; 409 no stock; a retry with the same Idempotency-Key gets the same answer."""

import flask
import functions_framework

from shopcore.openapi import routes
from shopcore.platform import http, logs
from shopcore.write import commands, idempotency

logs.configure()


def handle(request: flask.Request) -> http.Answer:
    api_key = http.require_api_key(request)
    key = idempotency.from_header(request.headers.get(idempotency.HEADER), api_key)
    return commands.create_order(http.read_json(request), key).answer()


@functions_framework.http
def create_order(request: flask.Request) -> flask.Response:
    return http.respond(request, handle, routes.CREATE_ORDER)


http.json_errors(functions_framework.errorhandler)
