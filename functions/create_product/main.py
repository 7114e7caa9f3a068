"""create_product (HTTP): POST a product -> 201 {"productId"}."""

import flask
import functions_framework

from shopcore.openapi import routes
from shopcore.platform import http, logs
from shopcore.write import commands

logs.configure()


def handle(request: flask.Request) -> tuple[int, dict]:
    http.require_api_key(request)
    return 201, {"productId": commands.create_product(http.read_json(request))}


@functions_framework.http
def create_product(request: flask.Request) -> flask.Response:
    return http.respond(request, handle, routes.CREATE_PRODUCT)


http.json_errors(functions_framework.errorhandler)
