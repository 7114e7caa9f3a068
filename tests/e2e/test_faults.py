"""Nothing lost, nothing counted twice: real faults against the local emulation under a steady
stream of orders, each ending with the reconciliation oracle showing zero drift.

The orders come from clients that retry (infra/harness/load.py): each order has an
Idempotency-Key of its own and is sent again, same body, same key, after no answer, a 5xx or a
409 for a key in use, until a definitive answer. Every scenario ends with each order the
clients meant placed exactly once, as sent, with stock decremented once per order
(infra.ops.reconcile.exactly_once).

The machine's Postgres and RabbitMQ are shared: a fault hits only what the test owns (its
processes, vhost, databases). A broker restart happens on a private RabbitMQ node started
for the test (infra/harness/private_broker.py), never on the shared one."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pika
import psycopg
import pytest
import requests

from infra.harness import faults
from infra.harness.load import OrderStream
from infra.harness.private_broker import PrivateRabbitMQ, private_rabbitmq
from infra.harness.sandbox import AMQP_SERVER
from infra.ops import dead_letters, reconcile
from shopcore import events
from shopcore.pipeline import broker, outbox, publisher
from shopcore.pipeline.outbox import OutboxRow
from tests.e2e.conftest import running_system
from tests.support.local_system import LocalSystem

RATE = 60  # orders per second, in total
CLIENTS = 4  # concurrent retrying clients: several orders in doubt at each fault
STOCK = 10_000_000  # each product's, so that no order is refused for stock


@pytest.fixture
def system(tmp_path, run_stack):
    with running_system(tmp_path, run_stack) as local:
        yield local


@pytest.fixture(scope="module")
def rabbit() -> Iterator[PrivateRabbitMQ]:
    """A RabbitMQ node of this module's own, to restart at will; gone afterwards."""
    with private_rabbitmq() as node:
        yield node


@pytest.fixture
def shared_broker_connection() -> Iterator[pika.BlockingConnection]:
    """A connection to the machine's shared broker, open across the test."""
    connection = pika.BlockingConnection(pika.URLParameters(f"{AMQP_SERVER}/%2F"))
    yield connection
    if connection.is_open:
        connection.close()


def assert_still_open(connection: pika.BlockingConnection) -> None:
    connection.process_data_events(time_limit=0)  # raises if the broker closed it
    assert connection.is_open
    channel = connection.channel()  # and it still answers
    channel.queue_declare("", exclusive=True, auto_delete=True)
    channel.close()


def products(system: LocalSystem, count: int = 5) -> list[int]:
    ids = []
    for i in range(count):
        r = requests.post(
            f"{system.command_url}/api/products",
            json={"name": f"P{i}", "category": f"C{i % 2}", "price": 3, "stock": STOCK},
        )
        assert r.status_code == 201
        ids.append(r.json()["productId"])
    return ids


def keyed_orders(system: LocalSystem, product_ids: list[int], **options) -> OrderStream:
    """Retrying clients with an Idempotency-Key per order (the stream's default), started."""
    options = {"rate": RATE, "clients": CLIENTS, **options}
    return OrderStream(system.command_url, product_ids, **options).start()


def assert_exactly_once(system: LocalSystem, stream: OrderStream, product_ids: list[int]) -> None:
    """After stream.stop(): every order the clients meant was answered 201 and is in the write
    database once, as sent; nothing else was written for their customers; each product's stock
    went down once per order."""
    summary = stream.summary()
    print(f"keyed clients: {summary}, answers {dict(stream.outcomes)}")  # shown with -s
    assert summary["intended"] >= 20, summary
    assert summary["placed"] == summary["intended"], (summary, stream.outcomes, stream.errors[:5])
    found = reconcile.exactly_once(
        system.stack.database_url, stream.intents, stock=dict.fromkeys(product_ids, STOCK)
    )
    assert found.ok, found.problems[:20]
    assert (found.placed, found.duplicates) == (summary["intended"], 0), found.report()


def assert_no_drift(system: LocalSystem, timeout: float = 60) -> None:
    """Zero differences, and still zero a moment later (late duplicates would show)."""
    deadline = time.monotonic() + timeout
    found: list[str] = []
    while time.monotonic() < deadline:
        found = reconcile.differences(system.stack.database_url, system.stack.read_database_url)
        if not found:
            time.sleep(2)
            found = reconcile.differences(system.stack.database_url, system.stack.read_database_url)
            if not found:
                return
        time.sleep(0.5)
    pytest.fail("drift after recovery:\n" + "\n".join(found[:20]) + "\n" + system.log()[-2000:])


def restart_and_wait(system: LocalSystem, service: str) -> None:
    victim = system.pid_of(service)
    faults.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while system.pid_of(service) == victim:
        assert time.monotonic() < deadline, f"{service} was not restarted"
        time.sleep(0.05)


@pytest.mark.parametrize("service", ["relay schedule trigger", "projector queue trigger"])
def test_killed_mid_batch_then_restarted(system, service):
    """SIGKILL three times under load: the relay republishes what it had not marked, the
    projector's unacked batch is redelivered; duplicates are absorbed."""
    product_ids = products(system)
    stream = keyed_orders(system, product_ids)
    for _ in range(3):
        time.sleep(1.0)
        restart_and_wait(system, service)
    time.sleep(1.0)
    stream.stop()
    assert set(stream.outcomes) == {201}, (stream.outcomes, stream.errors[:5])
    assert_exactly_once(system, stream, product_ids)
    assert_no_drift(system)


def test_broker_connections_cut(system):
    product_ids = products(system)
    stream = keyed_orders(system, product_ids)
    for _ in range(3):
        time.sleep(1.0)
        faults.close_broker_connections(system.stack.name, system.stack.rabbit_node)
    time.sleep(1.0)
    stream.stop()
    assert set(stream.outcomes) == {201}, (stream.outcomes, stream.errors[:5])
    assert_exactly_once(system, stream, product_ids)
    log = system.log()
    assert "broker connection lost" in log  # the queue trigger noticed and reconnected
    assert "outbox_relay failed (HTTP 503)" in log  # the relay's invocation too
    assert "Traceback" not in log
    assert_no_drift(system)


@pytest.mark.slow
def test_restarting_a_private_broker_leaves_the_shared_one_alone(rabbit, shared_broker_connection):
    private = broker.connect(f"{rabbit.url}/%2F")
    faults.restart_broker(rabbit.node)
    with pytest.raises(broker.CONNECTION_ERRORS):  # the restart was real...
        private.process_data_events(time_limit=0)
        private.channel()
    assert_still_open(shared_broker_connection)  # ...and the machine's broker did not see it


@pytest.mark.slow
def test_broker_restart_outbox_absorbs_the_outage(tmp_path, run_stack, rabbit):
    """The whole broker (a private node) restarts; the command API accepts every order
    meanwhile."""
    with running_system(tmp_path, run_stack, rabbit) as system:
        assert system.stack.rabbit_node == rabbit.node
        product_ids = products(system)
        stream = keyed_orders(system, product_ids)
        time.sleep(1.0)
        faults.restart_broker(rabbit.node)
        time.sleep(2.0)
        stream.stop()
        assert set(stream.outcomes) == {201}, (stream.outcomes, stream.errors[:5])
        assert_exactly_once(system, stream, product_ids)
        assert_no_drift(system, timeout=90)
        assert "broker connection lost" in system.log()  # the restart did reach the system


def test_postgres_sessions_terminated_on_both_databases(system):
    """A session ended during a command's statement fails that attempt (503): committed or
    not, the client's retry with its key places the order once."""
    product_ids = products(system)
    stream = keyed_orders(system, product_ids)
    for _ in range(3):
        time.sleep(1.0)
        faults.terminate_sessions(system.stack.database_url)
        faults.terminate_sessions(system.stack.read_database_url)
    time.sleep(1.0)
    stream.stop()
    assert 500 not in stream.outcomes, stream.errors[:5]
    assert stream.outcomes[201] >= 0.95 * sum(stream.outcomes.values()), stream.outcomes
    assert_exactly_once(system, stream, product_ids)
    assert_no_drift(system)


def test_command_api_worker_killed_mid_request(system):
    """SIGKILL the command API's worker process under load (its parent respawns it), at least
    three times and until a kill has cut requests in flight: they get no answer, whether the
    order committed or not. The client sends each again with its key: an order that was
    written is replayed, not written twice; one that was not is placed now."""
    product_ids = products(system)
    stream = keyed_orders(system, product_ids, clients=8)
    server = system.pid_of(f"command API :{system.command_port}")
    kills = 0
    while kills < 3 or "no answer" not in stream.outcomes:
        assert kills < 12, ("no kill cut a request", stream.outcomes)
        time.sleep(1.0)
        victim = faults.kill_a_worker(server)
        kills += 1
        deadline = time.monotonic() + 15
        while faults.children(server) in ([], [victim]):
            assert time.monotonic() < deadline, "the worker was not respawned"
            time.sleep(0.05)
    time.sleep(1.0)
    stream.stop()
    assert 500 not in stream.outcomes, stream.errors[:5]
    assert_exactly_once(system, stream, product_ids)
    assert_no_drift(system)


def test_database_outage_answers_503_json_then_recovers(system):
    """Both databases refuse connections for a few seconds under load: the APIs answer 503
    with a JSON error; the clients retry their orders with their keys until the pool has
    reconnected (on psycopg_pool's backoff, grown during the outage), and each is placed
    once."""
    product_ids = products(system, 2)
    stream = keyed_orders(system, product_ids)
    # a customer of none of the clients: refused in the outage, it must leave nothing
    probe = {
        "customerId": 10**9,
        "items": [{"productId": product_ids[0], "quantity": 1, "price": 3}],
    }
    time.sleep(0.5)
    try:
        faults.refuse_connections(system.stack.database_url)
        r = requests.post(f"{system.command_url}/api/orders", json=probe)
        assert r.status_code == 503
        assert "unavailable" in r.json()["error"]
        assert r.headers["Retry-After"] == "1"
        faults.refuse_connections(system.stack.read_database_url)
        r = requests.get(f"{system.query_url}/api/analytics/products/{product_ids[0]}/sales")
        assert r.status_code == 503
        assert r.json()["error"]
        time.sleep(2.0)
        placed_in_outage = stream.summary()["placed"]
    finally:
        faults.refuse_connections(system.stack.database_url, refuse=False)
        faults.refuse_connections(system.stack.read_database_url, refuse=False)
    deadline = time.monotonic() + 30
    while stream.summary()["placed"] < placed_in_outage + 30:  # recovered: orders flow again
        assert time.monotonic() < deadline, (stream.summary(), stream.outcomes)
        time.sleep(0.1)
    stream.stop()
    assert 503 in stream.outcomes and 500 not in stream.outcomes, stream.outcomes
    assert_exactly_once(system, stream, product_ids)  # the probe took no stock either
    assert_no_drift(system)


def poison(system: LocalSystem, queue: str, body: bytes, message_id: str) -> None:
    connection = broker.connect(system.stack.broker_url)
    channel = connection.channel()
    channel.confirm_delivery()
    channel.basic_publish("", queue, body, properties=pika.BasicProperties(message_id=message_id))
    connection.close()


def test_poison_messages_are_parked_with_reasons_and_the_stream_continues(system):
    product_ids = products(system)
    stream = keyed_orders(system, product_ids)
    time.sleep(0.5)
    poison(system, events.ORDER_EVENTS, b"{not json", "p-not-json")
    poison(
        system, events.PRODUCT_EVENTS, b'{"eventType": "ProductDeleted", "eventId": "x"}', "p-type"
    )
    poison(system, events.ORDER_EVENTS, b'{"eventType": "OrderCreated"}', "p-fields")
    time.sleep(1.0)
    stream.stop()
    assert set(stream.outcomes) == {201}
    assert_exactly_once(system, stream, product_ids)
    assert_no_drift(system)

    letters = {d.id: d for d in dead_letters.list_dead_letters(system.stack.broker_url)}
    assert set(letters) == {"p-not-json", "p-type", "p-fields"}
    assert "not JSON" in letters["p-not-json"].reason
    assert "unknown eventType" in letters["p-type"].reason
    assert "invalid OrderCreated" in letters["p-fields"].reason
    assert letters["p-type"].queue == events.PRODUCT_EVENTS
    # listing takes nothing away
    assert len(dead_letters.list_dead_letters(system.stack.broker_url)) == 3


def test_events_refused_during_a_misconfiguration_are_replayed_after_the_fix(system):
    """The projector's role loses a grant: its events are refused and parked. After the grant
    is restored, replaying them brings the read models back to exact."""
    product_ids = products(system)
    admin = psycopg.connect(system.stack.read_database_url, autocommit=True)
    admin.execute("REVOKE INSERT, UPDATE ON customer_ltv_view FROM shop_projector")
    try:
        stream = keyed_orders(system, product_ids)
        time.sleep(1.5)
        stream.stop()
        assert_exactly_once(system, stream, product_ids)
        deadline = time.monotonic() + 30
        while len(dead_letters.list_dead_letters(system.stack.broker_url)) < len(stream.accepted):
            assert time.monotonic() < deadline, "the refused events were not all parked"
            time.sleep(0.2)
        assert reconcile.differences(system.stack.database_url, system.stack.read_database_url)
    finally:
        admin.execute("GRANT INSERT, UPDATE ON customer_ltv_view TO shop_projector")
        admin.close()

    letters = dead_letters.list_dead_letters(system.stack.broker_url)
    assert all("refused by the read database" in d.reason for d in letters)
    replayed = dead_letters.replay({d.id for d in letters}, system.stack.broker_url)
    assert len(replayed) == len(letters)
    assert_no_drift(system)
    assert dead_letters.list_dead_letters(system.stack.broker_url) == []


def test_the_same_event_three_times_and_out_of_order(system):
    """Real events from the outbox published again, three times each, newest first."""
    product_ids = products(system)
    stream = keyed_orders(system, product_ids)
    time.sleep(1.0)
    stream.stop()
    assert_exactly_once(system, stream, product_ids)
    assert_no_drift(system)
    with psycopg.connect(system.stack.database_url) as conn:
        rows = [
            OutboxRow(*row)
            for row in conn.execute(f"SELECT {outbox.ROW} FROM outbox ORDER BY id DESC LIMIT 30")
        ]
    connection = broker.connect(system.stack.broker_url)
    channel = connection.channel()
    channel.confirm_delivery()
    for row in rows:
        for _ in range(3):
            props = publisher.event_properties(row)
            channel.basic_publish(broker.EXCHANGE, row.topic, row.payload.encode(), props)
    connection.close()
    time.sleep(1.0)
    assert_no_drift(system)
