"""EventBridge Scheduler: each scheduled function (the relay) invoked every N minutes.

Schedules cannot be tagged, so they live in a schedule group of their own, which is; teardown
deletes the group and the schedules go with it.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from infra.deploy.aws.context import Deployment, check_tags, is_missing, tag_dict, tag_list
from infra.deploy.aws.plan import CREATE, UNCHANGED, UPDATE
from infra.functions import FUNCTIONS, Function

# No retries by the scheduler: a missed run is covered by the next one minutes later, and a
# late one would only overlap it (harmless with SKIP LOCKED, but useless).
RETRY_POLICY = {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 60}


def scheduled() -> list[Function]:
    return [f for f in FUNCTIONS if f.trigger == "schedule"]


def rate(minutes: int) -> str:
    """EventBridge's rate expression; AWS wants the singular unit for 1."""
    return f"rate({minutes} minute{'' if minutes == 1 else 's'})"


def event_input(d: Deployment) -> str:
    """The target's Input: the documented EventBridge "Scheduled Event" envelope (the shape of
    tests/events/eventbridge_scheduled.json), filled in per run from the scheduler's context
    attributes, so the handler sees one stable shape whatever invokes it."""
    return json.dumps(
        {
            "version": "0",
            "id": "<aws.scheduler.execution-id>",
            "detail-type": "Scheduled Event",
            "source": "aws.scheduler",
            "account": d.account,
            "time": "<aws.scheduler.scheduled-time>",
            "region": d.config.region,
            "resources": ["<aws.scheduler.schedule-arn>"],
            "detail": {"attemptNumber": "<aws.scheduler.attempt-number>"},
        },
        sort_keys=True,
    )


def ensure_schedules(d: Deployment, function_arns: dict[str, str], role_arn: str) -> None:
    _ensure_group(d)
    for function in scheduled():
        _ensure_schedule(d, function, function_arns[function.name], role_arn)


def _ensure_group(d: Deployment) -> None:
    scheduler = d.client("scheduler")
    name = d.config.schedule_group
    try:
        group = scheduler.get_schedule_group(Name=name)
    except ClientError as exc:
        if not is_missing(exc):
            raise
        if d.plan.add("schedule-group", name, CREATE):
            scheduler.create_schedule_group(Name=name, Tags=tag_list(d.config.tags))
        return
    tags = scheduler.list_tags_for_resource(ResourceArn=group["Arn"])["Tags"]
    check_tags("schedule group", name, tag_dict(tags), d.config.tags)
    d.plan.add("schedule-group", name, UNCHANGED)


def desired(d: Deployment, function: Function, function_arn: str, role_arn: str) -> dict[str, Any]:
    return {
        "Name": d.config.schedule_name(function),
        "GroupName": d.config.schedule_group,
        "ScheduleExpression": rate(function.schedule_minutes),
        "FlexibleTimeWindow": {"Mode": "OFF"},  # on the minute: latency is the point
        "State": "ENABLED",
        "Target": {
            "Arn": function_arn,
            "RoleArn": role_arn,
            "Input": event_input(d),
            "RetryPolicy": RETRY_POLICY,
        },
    }


def _ensure_schedule(d: Deployment, function: Function, function_arn: str, role_arn: str) -> None:
    scheduler = d.client("scheduler")
    want = desired(d, function, function_arn, role_arn)
    try:
        have = scheduler.get_schedule(Name=want["Name"], GroupName=want["GroupName"])
    except ClientError as exc:
        if not is_missing(exc):
            raise
        if d.plan.add("schedule", want["Name"], CREATE, want["ScheduleExpression"]):
            scheduler.create_schedule(**want)
        return
    stale = [
        key
        for key in ("ScheduleExpression", "FlexibleTimeWindow", "State")
        if have.get(key) != want[key]
    ]
    stale += [f"Target.{k}" for k, v in want["Target"].items() if have["Target"].get(k) != v]
    action = UPDATE if stale else UNCHANGED
    detail = want["ScheduleExpression"] + (f": {', '.join(stale)}" if stale else "")
    if d.plan.add("schedule", want["Name"], action, detail):
        scheduler.update_schedule(**want)  # replaces the whole definition
