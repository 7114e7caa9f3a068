"""analytics (HTTP): the query API, served from the read models."""

import flask
import functions_framework

from shopcore.openapi import routes
from shopcore.platform import http, logs
from shopcore.read import query_api

logs.configure()


@functions_framework.http
def analytics(request: flask.Request) -> flask.Response:
    return http.respond(request, query_api.dispatch, routes.ANALYTICS)


http.json_errors(functions_framework.errorhandler)
