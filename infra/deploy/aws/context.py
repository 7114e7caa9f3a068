"""What every deploy step needs: the target, the plan it records into, and AWS clients."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import boto3
from botocore.exceptions import ClientError

from infra.deploy.aws.config import DeployConfig
from infra.deploy.aws.plan import Plan


@dataclass
class Deployment:
    config: DeployConfig
    plan: Plan
    session: boto3.Session
    # clients by service name; tests put botocore-Stubber'd clients here
    clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self.clients:
            self.clients[service] = self.session.client(service, region_name=self.config.region)
        return self.clients[service]

    @cached_property
    def identity(self) -> dict[str, str]:
        return self.client("sts").get_caller_identity()

    @property
    def account(self) -> str:
        return self.identity["Account"]

    @property
    def partition(self) -> str:
        # "aws", or "aws-cn" / "aws-us-gov": managed policy and service ARNs differ per partition
        return self.identity["Arn"].split(":")[1]

    def arn(self, service: str, resource: str, region: bool = True) -> str:
        where = self.config.region if region else ""
        return f"arn:{self.partition}:{service}:{where}:{self.account}:{resource}"


def error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def is_missing(exc: ClientError) -> bool:
    """AWS's several spellings of "no such resource"."""
    return error_code(exc) in {"NoSuchEntity", "ResourceNotFoundException", "NotFoundException"}


def collect(client: Any, operation: str, key: str, **params: Any) -> list[Any]:
    """Every item of a paginated listing."""
    return [
        item for page in client.get_paginator(operation).paginate(**params) for item in page[key]
    ]


class NotOurs(Exception):
    """A resource with one of our names exists but does not carry our project tag: refuse to
    change (or delete) what another deployment or person owns."""


def check_tags(kind: str, name: str, tags: dict[str, str], wanted: dict[str, str]) -> None:
    if any(tags.get(k) != v for k, v in wanted.items()):
        raise NotOurs(f"{kind} {name} exists but is not tagged {wanted}: not touching it")


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    """IAM and EventBridge Scheduler spell tags as a list of Key/Value pairs."""
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def tag_dict(tags: list[dict[str, str]]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags}
