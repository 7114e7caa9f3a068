"""create_product (HTTP): POST a product -> 201 {"productId", "consistencyToken"}; a retry with
the same Idempotency-Key gets the same answer."""

import flask
import functions_framework

from shopcore.openapi import routes
from shopcore.platform import http, logs
from shopcore.write import commands, idempotency

logs.configure()


def handle(request: flask.Request) -> http.Answer:
    api_key = http.require_api_key(request)
    key = idempotency.from_header(request.headers.get(idempotency.HEADER), api_key)
    return commands.create_product(http.read_json(request), key).answer()


@functions_framework.http
def create_product(request: flask.Request) -> flask.Response:
    return http.respond(request, handle, routes.CREATE_PRODUCT)


http.json_errors(functions_framework.errorhandler)
