"""The projector's trigger: an Amazon MQ for RabbitMQ event source mapping per queue.

Amazon MQ mappings take exactly one queue each. Lambda's poller logs in with the username and
password of a Secrets Manager secret, and delivers batches in the `rmqMessagesByQueue` shape
shopcore/pipeline/messages.py parses. The batching window is left at the service's 500 ms
default: it can only be set in whole seconds, and once set cannot go back below one second.
"""

from __future__ import annotations

from typing import Any

from infra.deploy.aws.context import Deployment, collect
from infra.deploy.aws.plan import CREATE, DELETE, SKIP, UNCHANGED, UPDATE
from infra.functions import FUNCTIONS, Function, by_name

# as the local queue trigger: the projector's batch size from infra/functions.py
BATCH_SIZE = by_name("projector").batch_size


def queued() -> list[Function]:
    return [f for f in FUNCTIONS if f.trigger == "queue"]


def access(d: Deployment) -> list[dict[str, str]]:
    configs = [{"Type": "BASIC_AUTH", "URI": d.config.mq_secret_arn}]
    if d.config.mq_vhost != "/":  # "/" is the service's default
        configs.append({"Type": "VIRTUAL_HOST", "URI": d.config.mq_vhost})
    return configs


def ensure_mappings(d: Deployment) -> None:
    for function in queued():
        name = d.config.function_name(function)
        if not d.config.has_broker:
            for queue in function.queues:
                d.plan.add("event-source-mapping", f"{name} <- {queue}", SKIP, "no --mq-broker-arn")
            continue
        _ensure_function_mappings(d, function, name)


def _ensure_function_mappings(d: Deployment, function: Function, name: str) -> None:
    lam = d.client("lambda")
    existing = collect(
        lam,
        "list_event_source_mappings",
        "EventSourceMappings",
        FunctionName=name,
        EventSourceArn=d.config.mq_broker_arn,
    )
    kept: set[str] = set()
    for queue in function.queues:
        current = next((m for m in existing if m.get("Queues") == [queue]), None)
        if current is not None:
            kept.add(current["UUID"])
        _ensure_queue_mapping(d, name, queue, current)
    # mappings of this function from this broker for queues it no longer reads
    for mapping in existing:
        if mapping["UUID"] not in kept and d.plan.add(
            "event-source-mapping", f"{name} <- {', '.join(mapping.get('Queues') or [])}", DELETE
        ):
            lam.delete_event_source_mapping(UUID=mapping["UUID"])


def _ensure_queue_mapping(
    d: Deployment, name: str, queue: str, current: dict[str, Any] | None
) -> None:
    """Create, replace, update or leave the mapping of function `name` from `queue`."""
    lam = d.client("lambda")
    label = f"{name} <- {queue}"
    if current is not None and _by_type(current) != _by_type(
        {"SourceAccessConfigurations": access(d)}
    ):
        # The virtual host cannot be updated in place, and an update's credentials list
        # would have to leave it out: replace the mapping instead. Unacked messages go back
        # to the queue and are redelivered to the new one (the projector is idempotent).
        if d.plan.add("event-source-mapping", label, DELETE, "secret or virtual host changed"):
            lam.delete_event_source_mapping(UUID=current["UUID"])
        current = None
    if current is None:
        if d.plan.add("event-source-mapping", label, CREATE, f"batch {BATCH_SIZE}"):
            lam.create_event_source_mapping(
                EventSourceArn=d.config.mq_broker_arn,
                FunctionName=name,
                Queues=[queue],
                SourceAccessConfigurations=access(d),
                BatchSize=BATCH_SIZE,
                Enabled=True,
                Tags=d.config.tags,
            )
        return
    stale = ["BatchSize"] if current.get("BatchSize") != BATCH_SIZE else []
    if current.get("State") in ("Disabled", "Disabling"):
        stale.append("Enabled")
    action = UPDATE if stale else UNCHANGED
    if d.plan.add("event-source-mapping", label, action, ", ".join(stale)):
        lam.update_event_source_mapping(
            UUID=current["UUID"], FunctionName=name, BatchSize=BATCH_SIZE, Enabled=True
        )


def _by_type(mapping: dict[str, Any]) -> dict[str, str]:
    configs = {c["Type"]: c["URI"] for c in mapping.get("SourceAccessConfigurations") or []}
    configs.setdefault("VIRTUAL_HOST", "/")
    return configs
