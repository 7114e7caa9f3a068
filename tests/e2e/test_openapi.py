"""The OpenAPI documents against the running system: each API serves its document, and
schemathesis drives every documented operation with generated valid and invalid requests.
No answer may be a 5xx, and every answer must be documented: status, content type, body."""

from __future__ import annotations

import time

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from shopcore import openapi
from tests.e2e.conftest import running_system
from tests.support.local_system import LocalSystem

APIS = ("command", "query")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Bounded so the whole file stays well under a minute and a half on two cores.
EXAMPLES = 50
FUZZ = hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same requests every run: a failure here is reproducible
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    # no shrinking: over HTTP it is slow, and a failure's curl line already reproduces it
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
)

# Each function answers GET .../openapi.json for its own API; each gateway port serves its
# API's document at /openapi.json.
SERVED_AT = {"command": "/openapi.json", "query": "/openapi.json"}

# Found by this file and fixed: GET /api/analytics/sales/hourly answered 500 for timestamps at
# the edges of what Python's datetime holds (year 1 and 9999). They must get a 4xx now.
HOURLY_AT_THE_LIMITS = [
    "?to=0001-01-01T01:09:07Z",
    "?from=0255-08-13T22:00:08Z&to=0001-01-01T01:09:07Z",
    "?from=0001-01-01T00:00:00%2B05:00&to=0001-01-02T00:00:00Z",
    "?from=9999-12-31T00:00:00Z&to=9999-12-31T23:00:00-05:00",
]


def operations() -> list:
    """(api, method, path) of every documented operation, from the repo's documents."""
    params = []
    for api in APIS:
        for path, methods in openapi.document(api)["paths"].items():
            for method in methods:
                params.append(pytest.param(api, method.upper(), path, id=f"{api} {method} {path}"))
    return params


@pytest.fixture(scope="module")
def system(tmp_path_factory, run_stack):
    with running_system(tmp_path_factory.mktemp("openapi"), run_stack) as local:
        seed(local)
        yield local


def seed(system: LocalSystem) -> None:
    """Products 1 and 2 and an order by customer 1, projected, so the small ids schemathesis
    tries first answer 200 and their bodies get checked too."""
    for name in ("Laptop", "Mouse"):
        product = {"name": name, "category": "Tech", "price": 9.99, "stock": 1_000_000}
        r = requests.post(f"{system.command_url}/api/products", json=product, timeout=10)
        assert r.status_code == 201, r.text
    order = {"customerId": 1, "items": [{"productId": 1, "quantity": 2, "price": 9.99}]}
    r = requests.post(f"{system.command_url}/api/orders", json=order, timeout=10)
    assert r.status_code == 201, r.text
    projected = f"{system.query_url}/api/analytics/customers/1/lifetime-value"
    deadline = time.monotonic() + 30
    while requests.get(projected, timeout=10).status_code != 200:
        assert time.monotonic() < deadline, system.log()[-3000:]
        time.sleep(0.1)


def base_url(system: LocalSystem, api: str) -> str:
    return system.command_url if api == "command" else system.query_url


@pytest.fixture(scope="module")
def served(system) -> dict[str, schemathesis.BaseSchema]:
    """Each API's document as the running system serves it, loaded by schemathesis."""
    return {
        api: schemathesis.openapi.from_url(base_url(system, api) + SERVED_AT[api], timeout=10)
        for api in APIS
    }


@pytest.mark.parametrize(
    "api, path",
    [
        ("command", "/openapi.json"),
        ("query", "/openapi.json"),
        ("command", "/api/products/openapi.json"),
        ("command", "/api/orders/openapi.json"),
        ("query", "/api/analytics/openapi.json"),
    ],
)
def test_each_api_serves_its_document(system, api, path):
    r = requests.get(base_url(system, api) + path, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == openapi.document(api)


@pytest.mark.parametrize("api", APIS)
def test_served_documents_are_valid_openapi(served, api):
    served[api].validate()
    assert served[api].raw_schema == openapi.document(api)


@pytest.mark.parametrize("api, method, path", operations())
def test_operation_conforms_to_the_document(system, served, api, method, path):
    operation = served[api][path][method]
    strategies = [operation.as_strategy(GenerationMode.POSITIVE)]
    spec = openapi.document(api)["paths"][path][method.lower()]
    if "parameters" in spec or "requestBody" in spec:  # nothing to make invalid otherwise
        strategies.append(operation.as_strategy(GenerationMode.NEGATIVE))
    url = base_url(system, api)

    with requests.Session() as session:

        @FUZZ
        @hypothesis.given(case=st.one_of(strategies))
        def answers_as_documented(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=url, session=session, checks=CHECKS, timeout=10)

        answers_as_documented()


@pytest.mark.parametrize("query", HOURLY_AT_THE_LIMITS)
def test_hourly_sales_at_the_limits_of_time(system, query):
    r = requests.get(f"{system.query_url}/api/analytics/sales/hourly{query}", timeout=10)
    assert r.status_code == 400, r.text
    assert r.headers["Content-Type"].startswith("application/json")


def body_operations() -> list:
    return [p for p in operations() if "requestBody" in _spec(*p.values)]


def _spec(api: str, method: str, path: str) -> dict:
    return openapi.document(api)["paths"][path][method.lower()]


@pytest.mark.parametrize("api, method, path", body_operations())
def test_a_body_in_another_media_type_is_a_documented_415(system, served, api, method, path):
    """Generated valid bodies sent as text/plain (what a cross-site form can send): refused
    with the 415 the document lists, whatever the body."""
    operation = served[api][path][method]
    url = base_url(system, api)

    with requests.Session() as session:

        @FUZZ
        @hypothesis.given(case=operation.as_strategy(GenerationMode.POSITIVE))
        def refused_as_documented(case: schemathesis.Case) -> None:
            case.media_type = "text/plain"
            case.headers = {**(case.headers or {}), "Content-Type": "text/plain"}
            response = case.call_and_validate(
                base_url=url, session=session, checks=CHECKS, timeout=10
            )
            assert response.status_code == 415

        refused_as_documented()
