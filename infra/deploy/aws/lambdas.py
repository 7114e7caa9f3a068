"""The Lambda functions: one per entry of infra/functions.py, its bundle, its configuration.

Idempotent: the code is compared by SHA-256 with what is deployed, the configuration field
by field; only what differs is updated.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from infra.deploy.aws.context import Deployment, check_tags, error_code, is_missing
from infra.deploy.aws.plan import CREATE, UNCHANGED, UPDATE
from infra.functions import Function
from shopcore.platform.config import settings

RUNTIME = "python3.11"
HANDLER = "lambda_handler.handler"
# must match the platform of the wheels in the bundle (psycopg[binary] is compiled code)
ARCHITECTURE = "x86_64"
# The relay publishes and the projector parks messages; the HTTP functions never touch the
# broker, so its credentials stay out of their environment.
BROKER_TRIGGERS = frozenset({"schedule", "queue"})
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", ""}


def environment(d: Deployment, function: Function) -> dict[str, str]:
    """The function's variables, valued from the deployer's environment with the functions'
    own defaults (shopcore.platform.config): each database URL it reads, BROKER_URL if it uses
    the broker."""
    cfg = settings()
    env = {var: getattr(cfg, var.lower()) for var in function.database_urls}
    if function.trigger in BROKER_TRIGGERS:
        env["BROKER_URL"] = cfg.broker_url
    for var, url in env.items():
        if urlsplit(url).hostname in LOCAL_HOSTS:
            d.plan.note(f"{var} points at this machine ({url.split('@')[-1]}); set it first")
    env.update(d.config.extra_env)
    return env


def desired(d: Deployment, function: Function, role_arn: str) -> dict[str, Any]:
    """The configuration fields of update_function_configuration (create takes them too)."""
    return {
        "FunctionName": d.config.function_name(function),
        "Runtime": RUNTIME,
        "Handler": HANDLER,
        "Role": role_arn,
        "Timeout": function.timeout_seconds,
        "MemorySize": d.config.memory_mb,
        "Description": f"{function.name} ({function.trigger})",
        "Environment": {"Variables": environment(d, function)},
        "VpcConfig": {
            "SubnetIds": list(d.config.subnet_ids),
            "SecurityGroupIds": list(d.config.security_group_ids),
        },
    }


def differences(want: dict[str, Any], have: dict[str, Any]) -> list[str]:
    """Names of the configuration fields (and variables) that differ from what is deployed."""
    out = [
        key
        for key in ("Runtime", "Handler", "Role", "Timeout", "MemorySize", "Description")
        if want[key] != have.get(key)
    ]
    vpc, have_vpc = want["VpcConfig"], have.get("VpcConfig") or {}
    if any(sorted(vpc[k]) != sorted(have_vpc.get(k) or []) for k in vpc):
        out.append("VpcConfig")
    env = want["Environment"]["Variables"]
    have_env = (have.get("Environment") or {}).get("Variables") or {}
    out += [
        f"${var}" for var in sorted(set(env) | set(have_env)) if env.get(var) != have_env.get(var)
    ]
    return out


def code_sha256(code: bytes) -> str:
    """As Lambda reports CodeSha256: base64 of the zip's SHA-256."""
    return base64.b64encode(hashlib.sha256(code).digest()).decode()


def ensure_function(
    d: Deployment, function: Function, role_arn: str, sleep: Callable[[float], None] = time.sleep
) -> str:
    lam = d.client("lambda")
    name = d.config.function_name(function)
    bundle = d.config.bundle(function)
    code = bundle.read_bytes() if bundle.is_file() else None
    want = desired(d, function, role_arn)
    current = _function(d, name)
    if code is None:
        d.plan.note(f"{bundle} is not built (python -m infra.deploy.bundle): code not compared")
    if current is None:
        detail = f"{RUNTIME}, {function.timeout_seconds} s, {bundle.name}"
        if d.plan.add("lambda", name, CREATE, detail):
            _create(lam, _creation(want, d, code), sleep)
            lam.get_waiter("function_active_v2").wait(FunctionName=name)
        return d.arn("lambda", f"function:{name}")

    have = current["Configuration"]
    changes = differences(want, have)
    new_code = code is not None and code_sha256(code) != have.get("CodeSha256")
    action = UPDATE if changes or new_code else UNCHANGED
    detail = ", ".join((["code"] if new_code else []) + changes)
    if d.plan.add("lambda", name, action, detail):
        # Lambda refuses a second update while the first is in progress: wait between them
        if new_code:
            lam.update_function_code(FunctionName=name, ZipFile=code)
            lam.get_waiter("function_updated_v2").wait(FunctionName=name)
        if changes:
            lam.update_function_configuration(**want)
            lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    return have["FunctionArn"]


def _creation(want: dict[str, Any], d: Deployment, code: bytes | None) -> dict[str, Any]:
    """create_function's parameters: the configuration plus what only creation sets."""
    params = {
        **want,
        "Code": {"ZipFile": code},
        "Architectures": [ARCHITECTURE],
        "PackageType": "Zip",
        "Tags": d.config.tags,
    }
    if not d.config.subnet_ids:
        del params["VpcConfig"]  # outside any VPC: no network interfaces to create
    return params


def _create(lam: Any, params: dict[str, Any], sleep: Callable[[float], None]) -> None:
    """create_function, retried while a role created seconds ago is not yet assumable by
    Lambda (IAM is eventually consistent; AWS says to expect a few seconds)."""
    for attempt in range(10):
        try:
            lam.create_function(**params)
            return
        except ClientError as exc:
            message = exc.response.get("Error", {}).get("Message", "")
            propagating = error_code(exc) == "InvalidParameterValueException"
            if not (propagating and "assume" in message) or attempt == 9:
                raise
            sleep(3.0)


def _function(d: Deployment, name: str) -> dict[str, Any] | None:
    try:
        current = d.client("lambda").get_function(FunctionName=name)
    except ClientError as exc:
        if is_missing(exc):
            return None
        raise
    check_tags("Lambda function", name, current.get("Tags") or {}, d.config.tags)
    return current
