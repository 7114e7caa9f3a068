"""Remove everything a deploy created, found by the project tag (never by name alone)."""

from __future__ import annotations

from infra.deploy.aws import iam
from infra.deploy.aws.context import Deployment, collect, tag_dict
from infra.deploy.aws.plan import DELETE


def teardown(d: Deployment) -> None:
    # The triggers first, so nothing invokes a function while it goes; the roles last, as
    # the functions run with them until they are gone.
    _schedule_groups(d)
    _http_apis(d)
    _functions(d)
    _roles(d)


def _ours(d: Deployment, tags: dict[str, str]) -> bool:
    return all(tags.get(k) == v for k, v in d.config.tags.items())


def _schedule_groups(d: Deployment) -> None:
    scheduler = d.client("scheduler")
    for group in collect(scheduler, "list_schedule_groups", "ScheduleGroups"):
        tags = tag_dict(scheduler.list_tags_for_resource(ResourceArn=group["Arn"])["Tags"])
        # deleting a group deletes its schedules
        if _ours(d, tags) and d.plan.add("schedule-group", group["Name"], DELETE):
            scheduler.delete_schedule_group(Name=group["Name"])


def _http_apis(d: Deployment) -> None:
    gw = d.client("apigatewayv2")
    for api in collect(gw, "get_apis", "Items"):
        # routes, integrations and stages go with their API
        if _ours(d, api.get("Tags") or {}) and d.plan.add("http-api", api["Name"], DELETE):
            gw.delete_api(ApiId=api["ApiId"])


def _functions(d: Deployment) -> None:
    lam = d.client("lambda")
    prefix = f"{d.config.project}-"
    for function in collect(lam, "list_functions", "Functions"):
        name = function["FunctionName"]
        if not name.startswith(prefix):
            continue
        if not _ours(d, lam.list_tags(Resource=function["FunctionArn"])["Tags"]):
            continue
        # mappings outlive their function otherwise; permissions go with it
        for mapping in collect(
            lam, "list_event_source_mappings", "EventSourceMappings", FunctionName=name
        ):
            label = f"{name} <- {', '.join(mapping.get('Queues') or [])}"
            if d.plan.add("event-source-mapping", label, DELETE):
                lam.delete_event_source_mapping(UUID=mapping["UUID"])
        if d.plan.add("lambda", name, DELETE):
            lam.delete_function(FunctionName=name)


def _roles(d: Deployment) -> None:
    client = d.client("iam")
    for role in collect(client, "list_roles", "Roles", PathPrefix=d.config.iam_path):
        tags = tag_dict(client.list_role_tags(RoleName=role["RoleName"])["Tags"])
        if _ours(d, tags):
            iam.delete_role(d, role["RoleName"])
