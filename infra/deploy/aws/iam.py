"""IAM: an execution role per function, and the role EventBridge Scheduler invokes with.

One role per function rather than one for all: only the projector's may read the broker's
credentials secret, the same least privilege the database roles give each function.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from infra.deploy.aws.context import Deployment, check_tags, collect, is_missing, tag_dict, tag_list
from infra.deploy.aws.plan import CREATE, DELETE, UNCHANGED, UPDATE
from infra.functions import Function

BASIC_EXECUTION = "service-role/AWSLambdaBasicExecutionRole"  # CloudWatch Logs
VPC_ACCESS = "service-role/AWSLambdaVPCAccessExecutionRole"  # network interfaces in subnets

Document = dict[str, Any]


def trust(service: str, condition: Document | None = None) -> Document:
    statement: Document = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if condition:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}


def amazon_mq_trigger(d: Deployment) -> Document:
    """What Lambda's poller does as the projector's role (AWS: "Amazon MQ execution role
    permissions"): describe the broker, read its credentials, and reach it inside its VPC."""
    network = [
        "ec2:CreateNetworkInterface",
        "ec2:DeleteNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeSubnets",
        "ec2:DescribeVpcs",
    ]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "mq:DescribeBroker", "Resource": d.config.mq_broker_arn},
            {
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": d.config.mq_secret_arn,
            },
            # these EC2 actions support no resource-level scoping
            {"Effect": "Allow", "Action": network, "Resource": "*"},
        ],
    }


def ensure_function_role(d: Deployment, function: Function) -> str:
    managed = [BASIC_EXECUTION] + ([VPC_ACCESS] if d.config.subnet_ids else [])
    inline = {}
    if function.trigger == "queue" and d.config.has_broker:
        inline["amazon-mq-trigger"] = amazon_mq_trigger(d)
    return ensure_role(
        d,
        d.config.role_name(function),
        trust("lambda.amazonaws.com"),
        [f"arn:{d.partition}:iam::aws:policy/{p}" for p in managed],
        inline,
        f"{function.name} on AWS Lambda",
    )


def ensure_scheduler_role(d: Deployment, targets: list[str]) -> str:
    """EventBridge Scheduler assumes this role to invoke `targets` (the scheduled functions);
    the SourceAccount condition keeps other accounts' schedules from borrowing it."""
    invoke = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": targets}],
    }
    return ensure_role(
        d,
        d.config.scheduler_role_name,
        trust("scheduler.amazonaws.com", {"StringEquals": {"aws:SourceAccount": d.account}}),
        [],
        {"invoke-scheduled-functions": invoke},
        "EventBridge Scheduler invoking the scheduled functions",
    )


def ensure_role(
    d: Deployment,
    name: str,
    trust_policy: Document,
    managed: list[str],
    inline: dict[str, Document],
    description: str,
) -> str:
    """Create or converge a role: trust policy, attached managed policies, inline policies."""
    iam = d.client("iam")
    arn = d.arn("iam", f"role{d.config.iam_path}{name}", region=False)
    role = _role(d, name)
    attached: set[str] = set()
    inline_now: set[str] = set()
    if role is None:
        if d.plan.add("iam-role", name, CREATE, description):
            iam.create_role(
                Path=d.config.iam_path,
                RoleName=name,
                AssumeRolePolicyDocument=json.dumps(trust_policy),
                Description=description,
                Tags=tag_list(d.config.tags),
            )
    else:
        arn = role["Arn"]
        # boto3 hands IAM policy documents back decoded, as dicts
        action = UNCHANGED if role["AssumeRolePolicyDocument"] == trust_policy else UPDATE
        if d.plan.add("iam-role", name, action, "trust policy" if action == UPDATE else ""):
            iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust_policy))
        attached = {
            p["PolicyArn"]
            for p in collect(iam, "list_attached_role_policies", "AttachedPolicies", RoleName=name)
        }
        inline_now = set(collect(iam, "list_role_policies", "PolicyNames", RoleName=name))

    _converge_managed(d, name, managed, attached)
    _converge_inline(d, name, inline, inline_now)
    return arn


def _converge_managed(d: Deployment, name: str, managed: list[str], attached: set[str]) -> None:
    """Attach the managed policies the role should have, detach the others."""
    iam = d.client("iam")
    for policy in managed:
        if d.plan.add("iam-policy", f"{name} {policy.split('/')[-1]}", _present(policy, attached)):
            iam.attach_role_policy(RoleName=name, PolicyArn=policy)
    for policy in sorted(attached - set(managed)):
        if d.plan.add("iam-policy", f"{name} {policy.split('/')[-1]}", DELETE):
            iam.detach_role_policy(RoleName=name, PolicyArn=policy)


def _converge_inline(
    d: Deployment, name: str, inline: dict[str, Document], inline_now: set[str]
) -> None:
    """Put the inline policies that are missing or differ, delete the others."""
    iam = d.client("iam")
    for policy_name, document in inline.items():
        action = _present(policy_name, inline_now)
        if action == UNCHANGED:
            current = iam.get_role_policy(RoleName=name, PolicyName=policy_name)["PolicyDocument"]
            action = UNCHANGED if current == document else UPDATE
        if d.plan.add("iam-policy", f"{name} {policy_name}", action, "inline"):
            iam.put_role_policy(
                RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(document)
            )
    for policy_name in sorted(inline_now - set(inline)):
        if d.plan.add("iam-policy", f"{name} {policy_name}", DELETE, "inline"):
            iam.delete_role_policy(RoleName=name, PolicyName=policy_name)


def _present(item: str, existing: set[str]) -> str:
    return UNCHANGED if item in existing else CREATE


def _role(d: Deployment, name: str) -> dict[str, Any] | None:
    try:
        role = d.client("iam").get_role(RoleName=name)["Role"]
    except ClientError as exc:
        if is_missing(exc):
            return None
        raise
    tags = d.client("iam").list_role_tags(RoleName=name)["Tags"]
    check_tags("IAM role", name, tag_dict(tags), d.config.tags)
    return role


def delete_role(d: Deployment, name: str) -> None:
    """Detach and delete its policies first: IAM refuses to delete a role that has any."""
    iam = d.client("iam")
    if not d.plan.add("iam-role", name, DELETE):
        return
    for policy in collect(iam, "list_attached_role_policies", "AttachedPolicies", RoleName=name):
        iam.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
    for policy_name in collect(iam, "list_role_policies", "PolicyNames", RoleName=name):
        iam.delete_role_policy(RoleName=name, PolicyName=policy_name)
    iam.delete_role(RoleName=name)
