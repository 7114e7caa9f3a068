"""The OpenAPI documents in shopcore/openapi: valid, complete, and in step with the code."""

from __future__ import annotations

import re
from typing import Any

import flask
import pytest
import schemathesis
from hypothesis import given
from hypothesis import strategies as st

from infra.functions import FUNCTIONS
from shopcore import errors, openapi
from shopcore.events import tokens
from shopcore.platform import cors, http
from shopcore.platform.config import settings
from shopcore.read import consistency
from shopcore.write import idempotency, schemas
from shopcore.write.idempotency import Accepted

HTTP_FUNCTIONS = [f for f in FUNCTIONS if f.trigger == "http"]


COMMANDS = [("/api/products", "ProductCreated"), ("/api/orders", "OrderCreated")]
QUERIES = [p for p in openapi.document("query")["paths"] if p.startswith("/api/analytics/")]


def component(api: str, name: str) -> dict[str, Any]:
    return openapi.document(api)["components"]["schemas"][name]


def resolved(api: str, node: Any) -> Any:
    """`node` with its `$ref` (if any) followed within the API's document."""
    while isinstance(node, dict) and "$ref" in node:
        target: Any = openapi.document(api)
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def operation(api: str, method: str, path: str) -> dict[str, Any]:
    return openapi.document(api)["paths"][path][method]


def header_parameters(api: str, method: str, path: str) -> dict[str, dict[str, Any]]:
    """The operation's header parameters by name."""
    parameters = [resolved(api, p) for p in operation(api, method, path).get("parameters", [])]
    return {p["name"]: p for p in parameters if p["in"] == "header"}


def response(api: str, method: str, path: str, status: str) -> dict[str, Any]:
    return dict(resolved(api, operation(api, method, path)["responses"][status]))


def response_headers(api: str, method: str, path: str, status: str) -> dict[str, dict[str, Any]]:
    headers = response(api, method, path, status).get("headers", {})
    return {name: resolved(api, header) for name, header in headers.items()}


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
        (parameter,) = [p for p in paths[path]["get"]["parameters"] if p.get("in") == "path"]
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


# --- Safe retries (Idempotency-Key) and read your writes (consistency tokens) --------------


@pytest.mark.parametrize("path", [path for path, _ in COMMANDS])
def test_both_posts_take_an_optional_idempotency_key(path):
    parameter = header_parameters("command", "post", path)[idempotency.HEADER]
    assert parameter["required"] is False
    assert parameter["schema"]["minLength"] == 1
    assert parameter["schema"]["maxLength"] == idempotency.MAX_LENGTH
    assert parameter["schema"]["pattern"] == "^[\\x21-\\x7E]{1,255}$"


def key_pattern() -> re.Pattern[str]:
    parameter = resolved("command", {"$ref": "#/components/parameters/IdempotencyKey"})
    return re.compile(parameter["schema"]["pattern"])


def accepted_as_key(value: str) -> bool:
    try:
        idempotency.from_header(value, None)
    except errors.InvalidInput:
        return False
    return True


@pytest.mark.parametrize(
    "value",
    ["", "a", "!", "~", "a" * 255, "a" * 256, "two words", "tab\there", "caf\u00e9", "\x7f", "k\n"],
)
def test_the_key_pattern_is_the_rule_the_commands_apply(value):
    assert bool(key_pattern().fullmatch(value)) is accepted_as_key(value)


@given(
    st.text(
        st.one_of(st.characters(min_codepoint=0x20, max_codepoint=0x7F), st.characters()),
        max_size=300,
    )
)
def test_the_key_pattern_is_the_rule_the_commands_apply_for_any_string(value):
    assert bool(key_pattern().fullmatch(value)) is accepted_as_key(value)


@pytest.mark.parametrize(("path", "created"), COMMANDS)
def test_201s_document_the_consistency_token_and_the_replay(path, created):
    headers = response_headers("command", "post", path, "201")
    assert headers["X-Consistency-Token"]["required"] is True
    assert headers["X-Consistency-Token"]["schema"]["type"] == "string"
    assert headers["Idempotent-Replayed"]["required"] is False
    body = component("command", created)
    assert "consistencyToken" in body["required"]
    assert body["properties"]["consistencyToken"]["type"] == "string"
    # what the commands answer: a first success and a replay
    for replayed in (False, True):
        answer = Accepted({"consistencyToken": tokens.issue(7)}, tokens.issue(7), replayed)
        status, _body, sent = answer.answer()
        assert str(status) == "201"
        assert set(sent) <= set(headers)
        if replayed:
            assert sent["Idempotent-Replayed"] in headers["Idempotent-Replayed"]["schema"]["enum"]


@pytest.mark.parametrize("path", [path for path, _ in COMMANDS])
def test_posts_document_the_refusals_of_a_key(path):
    assert "400" in operation("command", "post", path)["responses"]
    assert "Idempotency-Key" in response("command", "post", path, "400")["description"]
    assert "422" in operation("command", "post", path)["responses"]
    assert errors.KeyReused.status == 422
    in_use = idempotency.key_in_use()
    assert in_use.status == 409
    assert set(in_use.headers()) <= set(response_headers("command", "post", path, "409"))
    retry_after = response_headers("command", "post", path, "409")["Retry-After"]
    assert retry_after["schema"] == {"type": "integer", "minimum": 0}
    # products can only be refused 409 for a key in use: there it is always sent
    assert retry_after.get("required", False) is (path == "/api/products")


@pytest.mark.parametrize("path", QUERIES)
def test_every_analytics_get_takes_a_token_and_a_wait(path):
    parameters = header_parameters("query", "get", path)
    token, prefer = parameters[consistency.TOKEN_HEADER], parameters["Prefer"]
    assert token["required"] is False and prefer["required"] is False
    assert token["schema"] == {"type": "string", "minLength": 1}
    assert prefer["schema"] == {"type": "string"}
    assert consistency.parse_wait(prefer["example"]) >= 0  # the example is a wait the API reads
    tokens.parse(token["example"])  # and a token it could have issued


@pytest.mark.parametrize("path", QUERIES)
def test_every_analytics_get_documents_its_token_and_its_refusals(path):
    assert response_headers("query", "get", path, "200")[consistency.TOKEN_HEADER]["required"]
    assert "X-Consistency-Token" in response("query", "get", path, "400")["description"]
    ran_out = errors.RetryLater(503, "the wait ran out", retry_after=1)
    unavailable = response_headers("query", "get", path, "503")
    assert set(ran_out.headers()) <= set(unavailable)
    assert unavailable["Retry-After"].get("required", False) is False  # not on a database outage


@pytest.mark.parametrize("api", ["command", "query"])
def test_browsers_may_send_and_read_every_documented_header(api):
    """CORS: every request header a document takes is allowed in a preflight, every answer
    header it documents is exposed to the page."""
    allowed = {h.strip().lower() for h in cors.ALLOWED_HEADERS.split(",")}
    exposed = {h.strip().lower() for h in cors.EXPOSED_HEADERS.split(",")}
    for path, item in openapi.document(api)["paths"].items():
        for method, spec in item.items():
            assert {name.lower() for name in header_parameters(api, method, path)} <= allowed
            for status in spec["responses"]:
                names = {name.lower() for name in response_headers(api, method, path, status)}
                assert names <= exposed, (path, status)
