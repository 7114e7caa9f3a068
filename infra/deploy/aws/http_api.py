"""API Gateway HTTP APIs: one per gateway of the local emulation (the command and the query
API, infra/functions.py `port`), so each keeps its own base URL and its own /openapi.json.

Routes mirror the local gateway (infra/local/gateway.py), which dispatches on the path alone:
each route path of a function becomes `ANY <path>` and `ANY <path>/{proxy+}`, and the function
itself answers a wrong method with its JSON 405, as it does locally. /health and
/openapi.json (`ANY`, so HEAD is answered and another method gets the JSON 405) go to the API's
first function, as locally.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infra.deploy.aws.context import Deployment, collect
from infra.deploy.aws.permissions import ensure_permission
from infra.deploy.aws.plan import CREATE, DELETE, UNCHANGED, UPDATE
from infra.functions import FUNCTIONS, Function
from shopcore.openapi.routes import META

STAGE = "$default"  # served at the API's root URL, no stage prefix in paths
PAYLOAD_FORMAT = "2.0"  # what apig-wsgi's v2 path (shopcore/platform/aws_lambda.py) reads
MAX_INTEGRATION_TIMEOUT_MS = 30_000  # HTTP APIs' ceiling


@dataclass(frozen=True)
class Endpoint:
    port: str
    api_id: str
    url: str


def gateways() -> dict[str, list[Function]]:
    """The HTTP functions grouped by the gateway (port) that serves them, in definition order."""
    groups: dict[str, list[Function]] = {}
    for function in FUNCTIONS:
        if function.trigger == "http":
            groups.setdefault(function.port, []).append(function)
    return groups


def route_keys(functions: list[Function]) -> dict[str, Function]:
    """Every route of one API, and the function it invokes."""
    keys: dict[str, Function] = {}
    for function in functions:
        for _method, path in function.routes:
            keys[f"ANY {path}"] = function
            keys[f"ANY {path}/{{proxy+}}"] = function
    for route in META:
        keys[f"ANY {route.path}"] = functions[0]
    return keys


def ensure_http_apis(d: Deployment, function_arns: dict[str, str]) -> list[Endpoint]:
    return [
        _ensure_api(d, port, functions, function_arns) for port, functions in gateways().items()
    ]


def _ensure_api(
    d: Deployment, port: str, functions: list[Function], arns: dict[str, str]
) -> Endpoint:
    gw = d.client("apigatewayv2")
    name = d.config.api_name(port)
    api = find_api(d, name)
    if api is None:
        if not d.plan.add("http-api", name, CREATE, f"{port} API, HTTP"):
            api = {"ApiId": "", "ApiEndpoint": "(assigned on creation)"}
        else:
            api = gw.create_api(
                Name=name,
                ProtocolType="HTTP",
                Description=f"shop {port} API",
                Tags=d.config.tags,
            )
    else:
        d.plan.add("http-api", name, UNCHANGED)
    api_id = api["ApiId"]

    targets = {f.name: _ensure_integration(d, name, api_id, f, arns[f.name]) for f in functions}
    _ensure_routes(d, name, api_id, {k: targets[f.name] for k, f in route_keys(functions).items()})
    _ensure_integrations_used(d, name, api_id, set(targets.values()))
    ensure_stage(d, name, api_id)
    for f in functions:
        source = d.arn("execute-api", f"{api_id or '<new>'}/*/*")
        ensure_permission(
            d, d.config.function_name(f), f"{name}-invoke", "apigateway.amazonaws.com", source
        )
    return Endpoint(port, api_id, api["ApiEndpoint"])


def find_api(d: Deployment, name: str) -> dict[str, Any] | None:
    """Ours by name and tag; an untagged API of the same name belongs to someone else."""
    for api in collect(d.client("apigatewayv2"), "get_apis", "Items"):
        tags = api.get("Tags") or {}
        if api["Name"] == name and all(tags.get(k) == v for k, v in d.config.tags.items()):
            return api
    return None


def _ensure_integration(
    d: Deployment, api_name: str, api_id: str, function: Function, function_arn: str
) -> str:
    """The Lambda proxy integration of `function`; returns its route target."""
    gw = d.client("apigatewayv2")
    timeout = min(function.timeout_seconds * 1000, MAX_INTEGRATION_TIMEOUT_MS)
    want = {"PayloadFormatVersion": PAYLOAD_FORMAT, "TimeoutInMillis": timeout}
    existing = [] if not api_id else collect(gw, "get_integrations", "Items", ApiId=api_id)
    current = next((i for i in existing if i.get("IntegrationUri") == function_arn), None)
    label = f"{api_name} -> {function.name}"
    if current is None:
        if not d.plan.add("integration", label, CREATE, f"Lambda proxy, payload {PAYLOAD_FORMAT}"):
            return f"integrations/<{function.name}>"
        current = gw.create_integration(
            ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=function_arn, **want
        )
    else:
        stale = [k for k, v in want.items() if current.get(k) != v]
        if d.plan.add("integration", label, UPDATE if stale else UNCHANGED, ", ".join(stale)):
            gw.update_integration(ApiId=api_id, IntegrationId=current["IntegrationId"], **want)
    return f"integrations/{current['IntegrationId']}"


def _ensure_routes(d: Deployment, api_name: str, api_id: str, want: dict[str, str]) -> None:
    gw = d.client("apigatewayv2")
    existing = (
        {}
        if not api_id
        else {r["RouteKey"]: r for r in collect(gw, "get_routes", "Items", ApiId=api_id)}
    )
    for key, target in want.items():
        current = existing.get(key)
        if current is None:
            if d.plan.add("route", f"{api_name} {key}", CREATE, target):
                gw.create_route(ApiId=api_id, RouteKey=key, Target=target)
        else:
            action = UNCHANGED if current.get("Target") == target else UPDATE
            if d.plan.add("route", f"{api_name} {key}", action, target):
                gw.update_route(ApiId=api_id, RouteId=current["RouteId"], Target=target)
    # a route no longer in infra/functions.py goes
    for key in sorted(set(existing) - set(want)):
        if d.plan.add("route", f"{api_name} {key}", DELETE):
            gw.delete_route(ApiId=api_id, RouteId=existing[key]["RouteId"])


def _ensure_integrations_used(d: Deployment, api_name: str, api_id: str, used: set[str]) -> None:
    """Delete integrations no route targets any more (a function that left this API)."""
    if not api_id:
        return
    gw = d.client("apigatewayv2")
    for integration in collect(gw, "get_integrations", "Items", ApiId=api_id):
        target = f"integrations/{integration['IntegrationId']}"
        if target not in used and d.plan.add(
            "integration", f"{api_name} -> {integration.get('IntegrationUri')}", DELETE
        ):
            gw.delete_integration(ApiId=api_id, IntegrationId=integration["IntegrationId"])


def ensure_stage(d: Deployment, api_name: str, api_id: str) -> None:
    """The $default stage with auto-deploy: every route change is live without a deployment."""
    gw = d.client("apigatewayv2")
    stages = (
        {}
        if not api_id
        else {s["StageName"]: s for s in collect(gw, "get_stages", "Items", ApiId=api_id)}
    )
    current = stages.get(STAGE)
    label = f"{api_name} {STAGE}"
    if current is None:
        if d.plan.add("stage", label, CREATE, "auto-deploy"):
            gw.create_stage(ApiId=api_id, StageName=STAGE, AutoDeploy=True, Tags=d.config.tags)
    else:
        action = UNCHANGED if current.get("AutoDeploy") else UPDATE
        if d.plan.add("stage", label, action, "auto-deploy"):
            gw.update_stage(ApiId=api_id, StageName=STAGE, AutoDeploy=True)
