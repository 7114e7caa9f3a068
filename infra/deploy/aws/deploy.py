"""Deploy the five functions and their triggers, in dependency order.

Roles before the functions that assume them, functions before the APIs, schedule and mapping
that invoke them. Every step converges one resource to its definition, so running it again
changes nothing, and a dry run walks the same steps without writing.
"""

from __future__ import annotations

from typing import Any

import boto3

from infra.deploy.aws import http_api, iam, lambdas, mapping, schedule, teardown
from infra.deploy.aws.config import DeployConfig
from infra.deploy.aws.context import Deployment
from infra.deploy.aws.plan import Plan
from infra.functions import FUNCTIONS


class DeployError(Exception):
    """Something the operator must fix before a deploy can run (a missing bundle...)."""


def deploy(
    config: DeployConfig,
    session: boto3.Session,
    dry_run: bool = False,
    clients: dict[str, Any] | None = None,
) -> tuple[Plan, list[http_api.Endpoint]]:
    missing = [str(config.bundle(f)) for f in FUNCTIONS if not config.bundle(f).is_file()]
    if missing and not dry_run:
        raise DeployError(
            f"bundles missing (build them with python -m infra.deploy.bundle): {missing}"
        )
    d = Deployment(config, Plan(dry_run), session, clients or {})

    arns = {}
    for function in FUNCTIONS:
        role = iam.ensure_function_role(d, function)
        arns[function.name] = lambdas.ensure_function(d, function, role)
    endpoints = http_api.ensure_http_apis(d, arns)
    scheduled = [arns[f.name] for f in schedule.scheduled()]
    if scheduled:
        schedule.ensure_schedules(d, arns, iam.ensure_scheduler_role(d, scheduled))
    mapping.ensure_mappings(d)
    return d.plan, endpoints


def remove(
    config: DeployConfig,
    session: boto3.Session,
    dry_run: bool = False,
    clients: dict[str, Any] | None = None,
) -> Plan:
    d = Deployment(config, Plan(dry_run), session, clients or {})
    teardown.teardown(d)
    return d.plan
