"""Consistency tokens (CONTRACT.md, "Read your writes: consistency tokens") through the
functions' entry points (functions-framework apps and Lambda handlers) against the real
Postgres and RabbitMQ: the 201's token, and a GET carrying it waiting for its projection.

Projection happens only when a test calls `relay_and_project()`, so "before projection" is
deterministic here. The waits are real: this process's projection watch listens for the
projector's notifications like a query process does. No timing is asserted beyond a request
having returned.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import pytest

from shopcore.events import tokens
from shopcore.events.model import MAX_ID
from shopcore.platform import jsonio, runtime
from shopcore.read import consistency, queries
from tests.support import stack as stacks
from tests.support.functions import http_client, relay_and_project
from tests.support.lambda_events import FakeContext, http_request, lambda_handler

TOKEN = "X-Consistency-Token"
SYNC_STATUS = "/api/analytics/sync-status"


@pytest.fixture(scope="module")
def own_stack(run_stack) -> Iterator[stacks.Stack]:
    """A stack of this module's own. A token covers every earlier committed write, so one
    outbox row that other tests relayed and then threw away (they drain queues) would hold
    back every later token in a shared stack, forever."""
    with stacks.isolated() as stack:
        yield stack
    stacks.activate(run_stack)


@pytest.fixture(autouse=True)
def _own_stack(_services, own_stack) -> None:
    stacks.activate(own_stack)


@pytest.fixture
def api():
    return http_client("analytics")


def post(function: str, body: dict) -> Any:
    response = http_client(function).post(
        "/", data=jsonio.dumps(body), content_type="application/json"
    )
    assert response.status_code == 201, response.json
    return response


def new_product(unique: str, price: float = 10, stock: int = 1000) -> int:
    body = {"name": f"P-{unique}", "category": f"C-{unique}", "price": price, "stock": stock}
    product_id: int = post("create_product", body).json["productId"]
    return product_id


def order(customer_id: int, product_id: int, quantity: int = 1, price: float = 10) -> Any:
    return post(
        "create_order",
        {
            "customerId": customer_id,
            "items": [{"productId": product_id, "quantity": quantity, "price": price}],
        },
    )


def get(api, path: str, token: str | None = None, prefer: str | None = None, method="GET"):
    headers = {}
    if token is not None:
        headers[TOKEN] = token
    if prefer is not None:
        headers["Prefer"] = prefer
    return api.open(path, method=method, headers=headers)


def ltv_path(customer_id: int) -> str:
    return f"/api/analytics/customers/{customer_id}/lifetime-value"


def ltv(response) -> tuple[int, Decimal]:
    body = jsonio.loads(response.get_data())
    return body["orderCount"], body["totalSpent"]


def assert_retry_later(response, token: str) -> None:
    assert response.status_code == 503, response.get_data()
    assert response.headers["Retry-After"].isdigit()
    assert response.mimetype == "application/json"
    body = response.json
    assert isinstance(body["error"], str) and body["error"]
    assert body["consistencyToken"] == token
    assert TOKEN not in response.headers  # a 503 reflects nothing


def watch() -> consistency.ProjectionWatch:
    return runtime.current().get(consistency.WATCH)


def returned_within(seconds: float, call: Callable[[], Any]) -> Any:
    """`call()` on a thread of its own; its answer, once it has returned (within `seconds`, a
    bound far above what it should take: only that it returned is asserted)."""
    answers: list[Any] = []
    thread = threading.Thread(target=lambda: answers.append(call()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"no answer within {seconds} s"
    return answers[0]


def wait_until(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# --- the 201 ------------------------------------------------------------------------------------


def test_a_201_carries_its_token_in_the_header_and_the_body(unique, customer_id):
    product = post(
        "create_product", {"name": "Lamp", "category": f"C-{unique}", "price": 5, "stock": 9}
    )
    placed = order(customer_id, product.json["productId"], price=5)

    for response in (product, placed):
        token = response.headers[TOKEN]
        assert response.json["consistencyToken"] == token
        assert tokens.parse(token) > 0
    assert tokens.parse(placed.headers[TOKEN]) > tokens.parse(product.headers[TOKEN])


# --- waiting for a write ------------------------------------------------------------------------


def test_read_your_write_waits_for_its_projection(api, unique, customer_id):
    product = new_product(unique)
    relay_and_project()
    before = get(api, ltv_path(customer_id))
    placed = order(customer_id, product, quantity=2, price=10)
    token = placed.headers[TOKEN]

    # not projected yet: no wait, then a short one; both 503, neither runs stale
    assert_retry_later(get(api, ltv_path(customer_id), token, "wait=0"), token)
    assert_retry_later(get(api, ltv_path(customer_id), token, "wait=1"), token)

    relay_and_project()
    answer = get(api, ltv_path(customer_id), token, "wait=0")
    assert answer.status_code == 200
    assert ltv(answer) == (1, Decimal("20.00"))
    assert before.status_code == 404 or ltv(before)[0] == 0
    assert tokens.parse(answer.headers[TOKEN]) >= tokens.parse(token)

    # and with the default wait, too
    assert ltv(get(api, ltv_path(customer_id), token)) == (1, Decimal("20.00"))


def test_a_waiting_reader_is_released_by_the_projection(api, unique, customer_id):
    product = new_product(unique)
    relay_and_project()
    token = order(customer_id, product, quantity=3, price=2.5).headers[TOKEN]
    waiting_before = watch().waiting()
    answers: list[Any] = []

    reader = threading.Thread(
        target=lambda: answers.append(get(api, ltv_path(customer_id), token, "wait=10"))
    )
    reader.start()
    wait_until(lambda: watch().waiting() > waiting_before)  # it is waiting, not answered
    assert not answers
    relay_and_project()
    reader.join(30)

    assert not reader.is_alive()
    [answer] = answers
    assert answer.status_code == 200, answer.get_data()
    assert ltv(answer) == (1, Decimal("7.50"))


def test_many_readers_of_several_writes_are_all_released(api, unique, customer_id):
    product = new_product(unique)
    relay_and_project()
    customers = [customer_id * 1000 + n for n in range(5)]
    placed = {c: order(c, product, quantity=1, price=4).headers[TOKEN] for c in customers}
    waiting_before = watch().waiting()

    def read(customer: int):
        # one app for every thread: loading a functions-framework app is not thread-safe
        return get(api, ltv_path(customer), placed[customer], "wait=20")

    with ThreadPoolExecutor(40) as pool:
        futures = [pool.submit(read, customers[n % 5]) for n in range(40)]
        wait_until(lambda: watch().waiting() >= waiting_before + 40)
        relay_and_project()
        answers = [f.result(timeout=30) for f in futures]

    assert [a.status_code for a in answers] == [200] * 40
    assert {ltv(a) for a in answers} == {(1, Decimal("4.00"))}


def test_a_token_that_will_never_be_projected_is_503_within_its_wait(api):
    for token in (tokens.issue(MAX_ID), "c1.9223372036854775806", "c1.999999999999"):
        answer = returned_within(20, lambda t=token: get(api, SYNC_STATUS, t, "wait=1"))
        assert_retry_later(answer, token)


# --- the token of every 200 ---------------------------------------------------------------------


def test_every_200_carries_a_token_that_is_answered_at_once(api, unique, customer_id):
    category = f"Cat/{unique}"
    product = post(
        "create_product", {"name": "Rug", "category": category, "price": 3, "stock": 9}
    ).json["productId"]
    order(customer_id, product, price=3)
    relay_and_project()
    paths = [
        f"/api/analytics/products/{product}/sales",
        f"/api/analytics/categories/{quote(category, safe='')}/revenue",
        ltv_path(customer_id),
        "/api/analytics/sales/hourly",
        "/api/analytics/sync-status",
    ]
    for path in paths:
        for method in ("GET", "HEAD"):
            first = get(api, path, method=method)
            assert first.status_code == 200, (path, method, first.get_data())
            token = first.headers[TOKEN]
            assert tokens.parse(token) > 0  # the write above is projected: not "before any"

            again = get(api, path, token, "wait=0", method=method)  # no wait needed
            assert again.status_code == 200, (path, method, again.get_data())
            assert tokens.parse(again.headers[TOKEN]) >= tokens.parse(token)
            if method == "GET":
                assert again.json == first.json or path.endswith(("hourly", "sync-status"))
            else:
                assert again.get_data() == b""


def test_a_200_passed_on_reads_monotonically(api, unique, customer_id):
    product = new_product(unique)
    token = order(customer_id, product, price=10).headers[TOKEN]
    relay_and_project()
    seen = get(api, ltv_path(customer_id), token)
    passed_on = seen.headers[TOKEN]
    assert tokens.parse(passed_on) >= tokens.parse(token)
    # a client passing on what it saw is never sent back in time
    again = get(api, ltv_path(customer_id), passed_on, "wait=0")
    assert again.status_code == 200
    assert ltv(again) == ltv(seen) == (1, Decimal("10.00"))


# --- refusals and what is ignored ---------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    ["", "c1.", "c1.-1", "c1.01", "c1.1e3", "c2.5", f"c1.{MAX_ID + 1}", "c1.\u0663", "x" * 4000],
)
def test_an_unparseable_token_is_400_and_the_query_does_not_run(api, monkeypatch, token):
    ran: list[int] = []
    monkeypatch.setattr(queries, "customer_lifetime_value", lambda c: ran.append(c) or {})

    answer = get(api, ltv_path(12345), token, "wait=0")
    # the path's own parameters are checked first (a 400 never waits for a token)
    bad_id = get(api, "/api/analytics/products/not-a-number/sales", token, "wait=30")

    for response, field in ((answer, "X-Consistency-Token"), (bad_id, "productId")):
        assert response.status_code == 400, response.get_data()
        assert response.mimetype == "application/json"
        assert response.json["field"] == field
        assert TOKEN not in response.headers
    assert ran == []


def test_a_token_with_an_invalid_wait_is_400(api):
    for prefer in ("wait=-1", "wait=abc", "wait="):
        response = get(api, "/api/analytics/sync-status", "c1.0", prefer)
        assert response.status_code == 400
        assert response.json["field"] == "Prefer"


def test_prefer_without_a_token_is_ignored(api):
    for prefer in ("wait=30", "wait=0", "wait=abc", "respond-async, wait=-1"):
        # 10 s: far less than the 30 s it would wait if it counted
        answer = returned_within(10, lambda p=prefer: get(api, SYNC_STATUS, prefer=p))
        assert answer.status_code == 200
        assert tokens.parse(answer.headers[TOKEN]) >= 0


def test_the_token_of_before_any_event_never_waits(api):
    response = get(api, "/api/analytics/sync-status", "c1.0", "wait=0")
    assert response.status_code == 200


# --- Lambda -------------------------------------------------------------------------------------


def call(name: str, event: dict) -> tuple[int, dict[str, str], dict]:
    response = lambda_handler(name)(event, FakeContext(30))
    headers = {k.lower(): v for k, v in response["headers"].items()}
    assert headers["content-type"] == "application/json"
    return response["statusCode"], headers, jsonio.loads(response["body"])


def test_through_lambda_the_201_carries_the_token_and_analytics_honours_it(unique, customer_id):
    body = {"name": f"L-{unique}", "category": f"C-{unique}", "price": 6, "stock": 5}
    status, headers, created = call("create_product", http_request("POST", "/api/products", body))
    assert status == 201
    assert headers["x-consistency-token"] == created["consistencyToken"]
    relay_and_project()

    line = {"productId": created["productId"], "quantity": 2, "price": 6}
    status, headers, placed = call(
        "create_order",
        http_request("POST", "/api/orders", {"customerId": customer_id, "items": [line]}),
    )
    assert status == 201
    token = headers["x-consistency-token"]
    assert placed["consistencyToken"] == token
    assert tokens.parse(token) > 0

    path = ltv_path(customer_id)
    waiting = http_request("GET", path, headers={"x-consistency-token": token, "prefer": "wait=0"})
    status, headers, answer = call("analytics", waiting)
    assert status == 503, answer
    assert headers["retry-after"].isdigit()
    assert answer["consistencyToken"] == token and answer["error"]

    status, headers, answer = call(
        "analytics",
        http_request("GET", path, headers={"x-consistency-token": "c1.01", "prefer": "wait=0"}),
    )
    assert (status, answer["field"]) == (400, "X-Consistency-Token")

    relay_and_project()
    status, headers, answer = call("analytics", waiting)
    assert status == 200, answer
    assert (answer["orderCount"], answer["totalSpent"]) == (1, Decimal("12.00"))
    assert tokens.parse(headers["x-consistency-token"]) >= tokens.parse(token)
