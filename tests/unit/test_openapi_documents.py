"""The OpenAPI documents in shopcore/openapi: valid, complete, and in step with the code."""

from __future__ import annotations

from typing import Any

import flask
import pytest
import schemathesis

from infra.functions import FUNCTIONS
from shopcore import errors, openapi
from shopcore.platform import http
from shopcore.platform.config import settings
from shopcore.write import schemas

HTTP_FUNCTIONS = [f for f in FUNCTIONS if f.trigger == "http"]


def component(api: str, name: str) -> dict[str, Any]:
    return openapi.document(api)["components"]["schemas"][name]


@pytest.mark.parametrize("api", ["command", "query"])
def test_document_loads_and_is_valid_openapi_3_0(api):
    document = openapi.document(api)
    assert document["openapi"] == "3.0.3"
    assert openapi.document(api) is document  # read once
    schemathesis.openapi.from_dict(document).validate()


def test_every_http_function_has_an_api():
    assert sorted(openapi.API_OF) == sorted(f.name for f in HTTP_FUNCTIONS)
    for function in HTTP_FUNCTIONS:
        assert openapi.API_OF[function.name] == function.port


@pytest.mark.parametrize("function", HTTP_FUNCTIONS, ids=lambda f: f.name)
def test_every_gateway_route_is_documented(function):
    paths = openapi.document(openapi.API_OF[function.name])["paths"]
    for method, route in function.routes:
        # a route is a path or a path prefix (analytics serves everything under it)
        documented = [p for p in paths if p == route or p.startswith(route + "/")]
        assert documented, f"{route} is missing from the {function.port} document"
        assert all(method.lower() in paths[p] for p in documented), (method, documented)


@pytest.mark.parametrize("api", ["command", "query"])
def test_health_and_the_document_itself_are_documented(api):
    paths = openapi.document(api)["paths"]
    assert "get" in paths["/health"]
    assert "get" in paths["/openapi.json"]


def test_product_limits_match_the_schema():
    product = component("command", "CreateProduct")
    properties = product["properties"]
    assert sorted(product["required"]) == sorted(schemas.CreateProductSchema().fields)
    assert product["additionalProperties"] is False
    for label in ("name", "category"):
        assert properties[label]["minLength"] == 1
        assert properties[label]["maxLength"] == 255
    assert properties["price"]["maximum"] == schemas.MAX_PRICE
    assert properties["price"]["minimum"] == 0
    assert properties["stock"] == {"type": "integer", "minimum": 0, "maximum": schemas.MAX_INT}


def test_order_limits_match_the_schema():
    order = component("command", "CreateOrder")
    item = component("command", "OrderItem")
    assert sorted(order["required"]) == sorted(schemas.CreateOrderSchema().fields)
    assert sorted(item["required"]) == sorted(schemas.OrderItemSchema().fields)
    assert order["additionalProperties"] is item["additionalProperties"] is False
    assert order["properties"]["customerId"]["maximum"] == schemas.MAX_BIGINT
    assert order["properties"]["items"]["minItems"] == 1
    assert order["properties"]["items"]["maxItems"] == settings().max_order_items
    assert item["properties"]["productId"]["minimum"] == 1
    assert item["properties"]["productId"]["maximum"] == schemas.MAX_BIGINT
    assert item["properties"]["quantity"]["minimum"] == 1
    assert item["properties"]["quantity"]["maximum"] == schemas.MAX_QUANTITY
    assert item["properties"]["price"]["maximum"] == schemas.MAX_PRICE


def test_query_id_parameters_match_the_id_check():
    paths = openapi.document("query")["paths"]
    for path in (
        "/api/analytics/products/{productId}/sales",
        "/api/analytics/customers/{customerId}/lifetime-value",
    ):
        (parameter,) = paths[path]["get"]["parameters"]
        assert parameter["schema"]["minimum"] == 1
        assert parameter["schema"]["maximum"] == schemas.MAX_BIGINT


@pytest.mark.parametrize("function", HTTP_FUNCTIONS, ids=lambda f: f.name)
def test_each_function_serves_its_document(function):
    def handler(request: flask.Request) -> tuple[int, Any]:
        raise errors.NotFound("the handler is not reached")

    with flask.Flask(__name__).test_request_context("/openapi.json"):
        response = http.respond(flask.request, handler, function.http)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == openapi.document(function.port)
