"""Lambda resource policies: which AWS service may invoke a function, and from where."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from infra.deploy.aws.context import Deployment, is_missing
from infra.deploy.aws.plan import CREATE, UNCHANGED, UPDATE


def ensure_permission(
    d: Deployment, function_name: str, statement_id: str, principal: str, source_arn: str
) -> None:
    """Allow `principal` (a service) to invoke the function, from `source_arn` only."""
    lam = d.client("lambda")
    statement = _statement(d, function_name, statement_id)
    name = f"{function_name} {statement_id}"
    if statement is None:
        action = CREATE
    else:
        condition = statement.get("Condition", {}).get("ArnLike", {})
        same = condition.get("AWS:SourceArn") == source_arn
        action = UNCHANGED if same and statement["Principal"] == {"Service": principal} else UPDATE
    if d.plan.add("lambda-permission", name, action, principal):
        if statement is not None:
            lam.remove_permission(FunctionName=function_name, StatementId=statement_id)
        lam.add_permission(
            FunctionName=function_name,
            StatementId=statement_id,
            Action="lambda:InvokeFunction",
            Principal=principal,
            SourceArn=source_arn,
        )


def _statement(d: Deployment, function_name: str, statement_id: str) -> dict[str, Any] | None:
    try:
        policy = json.loads(d.client("lambda").get_policy(FunctionName=function_name)["Policy"])
    except ClientError as exc:
        if is_missing(exc):  # no policy yet, or (dry run) no function yet
            return None
        raise
    return next((s for s in policy["Statement"] if s.get("Sid") == statement_id), None)
