"""python -m infra.deploy.aws deploy|teardown: see docs/deploy-aws.md."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from infra.deploy.aws.config import DeployConfig
from infra.deploy.aws.context import NotOurs
from infra.deploy.aws.deploy import DeployError, deploy, remove
from infra.functions import REPO


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m infra.deploy.aws", description=__doc__)
    p.add_argument("command", choices=("deploy", "teardown"))
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    p.add_argument("--region", help="default: boto3's (AWS_REGION, your AWS config's profile)")
    p.add_argument("--project", default="shop", help="name prefix and tag of every resource")
    p.add_argument("--bundle-dir", type=Path, default=REPO / "dist", help="holds <name>.zip")
    p.add_argument(
        "--subnet-ids", type=_csv, default=(), help="comma-separated; puts the functions in a VPC"
    )
    p.add_argument("--security-group-ids", type=_csv, default=())
    p.add_argument("--mq-broker-arn", default="", help="Amazon MQ for RabbitMQ broker")
    p.add_argument("--mq-secret-arn", default="", help="Secrets Manager secret: username, password")
    p.add_argument("--mq-vhost", default="/")
    p.add_argument("--memory", type=int, default=512, help="MB per function")
    p.add_argument(
        "--env",
        type=_pair,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extra variable for every function (repeatable), e.g. COMMAND_API_KEYS=...",
    )
    return p


def config_from(args: argparse.Namespace) -> DeployConfig:
    return DeployConfig(
        region=args.region,
        project=args.project,
        bundle_dir=args.bundle_dir,
        subnet_ids=args.subnet_ids,
        security_group_ids=args.security_group_ids,
        mq_broker_arn=args.mq_broker_arn,
        mq_secret_arn=args.mq_secret_arn,
        mq_vhost=args.mq_vhost,
        memory_mb=args.memory,
        extra_env=tuple(args.env),
    )


def main(argv: list[str] | None = None, session: boto3.Session | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    session = session or boto3.Session(region_name=args.region)
    args.region = args.region or session.region_name
    if not args.region:
        p.error("no region: pass --region or set AWS_REGION")
    if bool(args.mq_broker_arn) != bool(args.mq_secret_arn):
        p.error("--mq-broker-arn and --mq-secret-arn go together")
    if args.subnet_ids and not args.security_group_ids:
        p.error("--subnet-ids needs --security-group-ids")
    config = config_from(args)
    try:
        if args.command == "deploy":
            plan, endpoints = deploy(config, session, dry_run=args.dry_run)
        else:
            plan, endpoints = remove(config, session, dry_run=args.dry_run), []
    except (DeployError, NotOurs, ClientError, BotoCoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(plan.render())
    for endpoint in endpoints:
        print(f"{endpoint.port} API: {endpoint.url}")
    urls = {e.port: e.url for e in endpoints}
    if not args.dry_run and {"command", "query"} <= set(urls):
        print(
            "check it: shop verify"
            f" --command-url {urls.get('command')} --query-url {urls.get('query')}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
