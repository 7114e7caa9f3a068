"""A hello-world HTTP function (functions-framework), for the HTTP ceiling."""

import flask
import functions_framework


@functions_framework.http
def hello(request: flask.Request) -> flask.Response:
    return flask.Response(b'{"status":"ok"}', mimetype="application/json")
