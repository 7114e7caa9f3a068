"""create_order (HTTP): POST an order -> 201 {"orderId"}; 400 unknown product; 409 no stock."""

import flask
import functions_framework

from shopcore.openapi import routes
from shopcore.platform import http, logs
from shopcore.write import commands

logs.configure()


def handle(request: flask.Request) -> tuple[int, dict]:
    http.require_api_key(request)
    return 201, {"orderId": commands.create_order(http.read_json(request))}


@functions_framework.http
def create_order(request: flask.Request) -> flask.Response:
    return http.respond(request, handle, routes.CREATE_ORDER)


http.json_errors(functions_framework.errorhandler)
