"""Routes are declared once (shopcore/openapi/routes.py): the OpenAPI documents list exactly
those, and everything that routes derives from them: the functions' definitions
(infra/functions.py), the query API's router, the local gateway and the AWS route keys."""

from __future__ import annotations

import re

import pytest

from infra.deploy.aws import http_api
from infra.functions import FUNCTIONS
from infra.local.gateway import Gateway
from shopcore import errors, openapi
from shopcore.openapi import routes
from shopcore.read import consistency, query_api

APIS = (routes.COMMAND, routes.QUERY)
OPERATIONS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
HTTP = [f for f in FUNCTIONS if f.trigger == "http"]


def documented(api: str) -> set[tuple[str, str]]:
    """(method, path) of every operation of the API's OpenAPI document."""
    paths = openapi.document(api)["paths"]
    return {(m.upper(), path) for path, item in paths.items() for m in item if m in OPERATIONS}


def sample(path: str) -> str:
    """A concrete path of a route: ids 7, a category with a slash in it."""
    return re.sub(r"\{(\w+)\}", lambda m: "Books/Used" if m[1] == "category" else "7", path)


@pytest.mark.parametrize("api", APIS)
def test_each_openapi_document_lists_exactly_the_declared_routes(api):
    declared = {(route.method, route.path) for route in routes.api_routes(api)}
    assert documented(api) == declared
    assert {("GET", "/health"), ("GET", "/openapi.json")} <= declared


def test_infra_defines_the_http_functions_by_their_declarations():
    assert [f.http for f in HTTP] == list(routes.HTTP_FUNCTIONS)
    for function in HTTP:
        assert function.http is not None
        assert (function.http.name, function.http.api) == (function.name, function.port)
        assert function.routes == tuple((m, function.http.prefix) for m in function.http.methods)
    assert all(f.http is None and f.routes == () for f in FUNCTIONS if f.trigger != "http")
    assert {f.name: f.port for f in HTTP} == openapi.API_OF


@pytest.mark.parametrize("function", routes.HTTP_FUNCTIONS, ids=lambda f: f.name)
def test_every_route_lies_under_its_function_prefix_and_no_other(function):
    others = [f for f in routes.HTTP_FUNCTIONS if f.api == function.api and f is not function]
    for route in function.routes:
        path = sample(route.path)
        assert path == function.prefix or path.startswith(function.prefix + "/")
        assert not any(path == f.prefix or path.startswith(f.prefix + "/") for f in others)


def test_the_query_router_answers_every_declared_route_with_its_handler():
    for route in routes.ANALYTICS.routes:
        endpoint, _args = query_api.match(sample(route.path))
        assert endpoint == route.endpoint
    assert set(query_api.HANDLERS) == {route.endpoint for route in routes.ANALYTICS.routes}


def test_the_query_router_reads_parameters_by_their_declared_names():
    assert query_api.match("/api/analytics/products/7/sales")[1] == {"productId": "7"}
    assert query_api.match("/api/analytics/customers/7/lifetime-value")[1] == {"customerId": "7"}
    assert query_api.match("/api/analytics/categories/Books/Used/revenue")[1] == {
        "category": "Books/Used"
    }
    with pytest.raises(errors.NotFound):
        query_api.match("/api/analytics/nothing-here")


@pytest.mark.parametrize("api", APIS)
def test_the_local_gateway_admits_every_declared_route_to_its_function(api):
    gateway = Gateway(api)
    json_body = {b"content-type": "application/json"}.get
    functions = [f for f in routes.HTTP_FUNCTIONS if f.api == api]
    for function, served in zip(functions, gateway.routes, strict=True):
        assert (served.prefix, served.methods) == (function.prefix, function.methods)
        for route in function.routes:
            path = sample(route.path)
            assert gateway.route(path) is served
            assert gateway.admit(route.method, path, json_body) is None
            assert isinstance(gateway.admit("DELETE", path, json_body), errors.MethodNotAllowed)
    for route in routes.META:
        found = gateway.route(route.path)
        assert found is not None and found.app is gateway.routes[0].app
        assert gateway.admit(route.method, route.path, json_body) is None


def takes_consistency_token(api: str, route: routes.Route) -> bool:
    """Whether the document lists the X-Consistency-Token request header for the route."""
    document = openapi.document(api)
    parameters = document["paths"][route.path][route.method.lower()].get("parameters", [])
    for parameter in parameters:
        if "$ref" in parameter:
            parameter = document["components"]["parameters"][parameter["$ref"].split("/")[-1]]
        if parameter["in"] == "header" and parameter["name"] == consistency.TOKEN_HEADER:
            return True
    return False


@pytest.mark.parametrize("api", APIS)
def test_the_local_gateway_lets_every_documented_token_query_wait(api):
    """A request that may wait for a consistency token must run on a thread of its own at the
    edge (infra/local/edge/connection.py), not on the event loop or a serving thread: every
    route whose document takes the token, when the request carries it. (Others on the query
    port may go there too: they answer at once.) Without the header, or on the command port,
    none does."""
    gateway = Gateway(api)
    with_token = {consistency.TOKEN_HEADER.lower().encode(): "c1.7"}.get
    without = {}.get
    documented = [r for r in routes.api_routes(api) if takes_consistency_token(api, r)]
    assert bool(documented) is (api == routes.QUERY)
    for route in documented:
        assert gateway.may_wait(route.method, sample(route.path), with_token), route
    for route in routes.api_routes(api):
        path = sample(route.path)
        assert not gateway.may_wait(route.method, path, without), route
        if api == routes.COMMAND:
            assert not gateway.may_wait(route.method, path, with_token), route


def covers(key: str, path: str) -> bool:
    """Whether an HTTP API route key (`ANY /a`, `ANY /a/{proxy+}`) matches `path`."""
    _method, pattern = key.split(" ", 1)
    if pattern.endswith("/{proxy+}"):
        return path.startswith(pattern.removesuffix("{proxy+}"))
    return path == pattern


@pytest.mark.parametrize("api", APIS)
def test_the_aws_route_keys_send_every_declared_route_to_its_function(api):
    functions = http_api.gateways()[api]
    keys = http_api.route_keys(functions)
    for function in functions:
        assert function.http is not None
        for route in function.http.routes:
            owners = {f.name for key, f in keys.items() if covers(key, sample(route.path))}
            assert owners == {function.name}, route
    for route in routes.META:
        assert keys[f"ANY {route.path}"] is functions[0]
