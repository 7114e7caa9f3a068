"""`python -m infra.deploy.aws` against moto's `mock_aws` (no AWS account, nothing leaves this
process).

moto 5 rejects Amazon MQ event source mappings ("Invalid EventSourceArn") and does not
implement API Gateway v2's UpdateStage: those calls are tested with botocore's Stubber, which
checks every request and response against the real service models, in the last section.
"""

from __future__ import annotations

import ast
import io
import json
import re
import zipfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from uuid import UUID

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from moto.iam import models as moto_iam_models

from infra.deploy.aws import http_api, lambdas, mapping, schedule
from infra.deploy.aws import iam as aws_iam
from infra.deploy.aws.__main__ import main, parser
from infra.deploy.aws.config import DeployConfig
from infra.deploy.aws.context import Deployment
from infra.deploy.aws.deploy import DeployError, deploy, remove
from infra.deploy.aws.plan import Plan
from infra.functions import FUNCTIONS, REPO, Function, by_name
from shopcore.platform import config as shop_config
from shopcore.platform import runtime
from tests.support.lambda_events import load_event

REGION = "eu-west-1"
ENV = {
    "DATABASE_URL": "postgresql://shop:s3cret@db.example.com:5432/write_db",
    "READ_DATABASE_URL": "postgresql://shop:s3cret@db.example.com:5432/read_db",
    "RELAY_DATABASE_URL": "postgresql://shop_relay:s3cret@db.example.com:5432/write_db",
    "BROKER_URL": "amqps://shop:s3cret@b-1.mq.eu-west-1.amazonaws.com:5671/",
}
BROKER = "arn:aws:mq:eu-west-1:123456789012:broker:shop:b-9bcfa592-423a-4942-879d-eb284b418fc8"
SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:shop-mq-AbCdEf"
HTTP = [f for f in FUNCTIONS if f.trigger == "http"]


@cache
def managed_policies() -> str:
    everything = json.loads(moto_iam_models.aws_managed_policies_data)
    names = [p.split("/")[-1] for p in (aws_iam.BASIC_EXECUTION, aws_iam.VPC_ACCESS)]
    return json.dumps({name: everything[name] for name in names})


@pytest.fixture
def environment(monkeypatch) -> Iterator[None]:
    """Fake credentials (nothing may reach AWS), the URLs a deploy hands to the functions."""
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    # AWSLambdaBasicExecutionRole and friends exist in moto only when it loads AWS's managed
    # policies; all ~1,300 of them cost ~2 s per mock, so it gets just the ones a deploy uses
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    monkeypatch.setattr(moto_iam_models, "aws_managed_policies_data", managed_policies())
    for function in FUNCTIONS:
        for name in function.database_urls:
            monkeypatch.delenv(name, raising=False)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    runtime.current().reset(shop_config.SETTINGS)
    yield
    runtime.current().reset(shop_config.SETTINGS)


@pytest.fixture
def session(environment) -> Iterator[boto3.Session]:
    with mock_aws():
        yield boto3.Session(region_name=REGION)


def write_bundle(path: Path, content: str) -> None:
    with zipfile.ZipFile(path, "w") as bundle:
        info = zipfile.ZipInfo("lambda_handler.py", date_time=(1980, 1, 1, 0, 0, 0))
        bundle.writestr(info, content)


@pytest.fixture
def bundles(tmp_path) -> Path:
    """Small stand-ins for `python -m infra.deploy.bundle`'s dist/<name>.zip."""
    for function in FUNCTIONS:
        write_bundle(
            tmp_path / f"{function.name}.zip", f"def handler(e, c):\n    return {function.name!r}\n"
        )
    return tmp_path


@pytest.fixture
def cfg(bundles) -> DeployConfig:
    return DeployConfig(region=REGION, bundle_dir=bundles)


def expected_routes(functions: list[Function]) -> set[str]:
    """Written out from infra/functions.py here, not taken from infra.deploy.aws: path-only routing
    as the local gateway does it, plus each API's health and OpenAPI document."""
    routes = {"ANY /health", "ANY /openapi.json"}
    for function in functions:
        for _method, path in function.routes:
            routes |= {f"ANY {path}", f"ANY {path}/{{proxy+}}"}
    return routes


def snapshot(session: boto3.Session) -> dict:
    """The ids and settings of everything in the (mock) account that a deploy could touch."""
    lam, iam = session.client("lambda"), session.client("iam")
    gw, scheduler = session.client("apigatewayv2"), session.client("scheduler")
    functions = {
        f["FunctionName"]: {**f, "Tags": lam.list_tags(Resource=f["FunctionArn"])["Tags"]}
        for f in lam.list_functions()["Functions"]
    }
    roles = {r["RoleName"]: r for r in iam.list_roles()["Roles"]}
    apis = {}
    for api in gw.get_apis()["Items"]:
        api_id = api["ApiId"]
        integrations = {i["IntegrationId"]: i for i in gw.get_integrations(ApiId=api_id)["Items"]}
        apis[api["Name"]] = {
            "id": api_id,
            "tags": api.get("Tags"),
            "routes": {
                r["RouteKey"]: (
                    r["RouteId"],
                    integrations[r["Target"].split("/")[1]]["IntegrationUri"],
                )
                for r in gw.get_routes(ApiId=api_id)["Items"]
            },
            "integrations": integrations,
            "stages": {
                s["StageName"]: s.get("AutoDeploy") for s in gw.get_stages(ApiId=api_id)["Items"]
            },
        }
    groups = [g["Name"] for g in scheduler.list_schedule_groups()["ScheduleGroups"]]
    schedules = {
        s["Name"]: scheduler.get_schedule(Name=s["Name"], GroupName=s["GroupName"])
        for s in scheduler.list_schedules()["Schedules"]
    }
    return {
        "functions": functions,
        "roles": roles,
        "apis": apis,
        "groups": groups,
        "schedules": schedules,
    }


def ids(state: dict) -> dict:
    """What must survive a redeploy untouched."""
    return {
        "functions": {
            n: (f["FunctionArn"], f["CodeSha256"], f["LastModified"])
            for n, f in state["functions"].items()
        },
        "roles": {n: r["RoleId"] for n, r in state["roles"].items()},
        "apis": {
            n: (a["id"], a["routes"], sorted(a["integrations"])) for n, a in state["apis"].items()
        },
        "schedules": {n: s["LastModificationDate"] for n, s in state["schedules"].items()},
    }


# --- deploy, redeploy, converge, teardown under mock_aws ----------------------------------


def test_deploy_creates_exactly_the_expected_resources(session, cfg):
    plan, endpoints = deploy(cfg, session)
    state = snapshot(session)
    account = session.client("sts").get_caller_identity()["Account"]

    # one Lambda function per definition, configured from it
    assert set(state["functions"]) == {f"shop-{f.name.replace('_', '-')}" for f in FUNCTIONS}
    for function in FUNCTIONS:
        deployed = state["functions"][cfg.function_name(function)]
        assert deployed["Handler"] == "lambda_handler.handler"
        assert deployed["Runtime"] == "python3.11"
        assert deployed["Timeout"] == function.timeout_seconds
        assert deployed["MemorySize"] == 512
        assert deployed["Role"] == f"arn:aws:iam::{account}:role/shop/{cfg.role_name(function)}"
        assert deployed["Tags"] == {"project": "shop", "managed-by": "infra.deploy.aws"}
        variables = deployed["Environment"]["Variables"]
        uses_broker = function.trigger in ("schedule", "queue")
        assert set(variables) == set(function.database_urls) | (
            {"BROKER_URL"} if uses_broker else set()
        )
        settings = shop_config.settings()
        for name in function.database_urls:
            assert variables[name] == getattr(settings, name.lower())
    relay_env = state["functions"]["shop-outbox-relay"]["Environment"]["Variables"]
    assert relay_env == {
        "RELAY_DATABASE_URL": ENV["RELAY_DATABASE_URL"],
        "BROKER_URL": ENV["BROKER_URL"],
    }
    assert state["functions"]["shop-analytics"]["Environment"]["Variables"] == {
        "ANALYTICS_DATABASE_URL": ENV["READ_DATABASE_URL"],
        "ANALYTICS_OUTBOX_DATABASE_URL": ENV["DATABASE_URL"],
    }

    # a role per function (basic execution only: no VPC, no broker given) and the scheduler's
    iam = session.client("iam")
    assert set(state["roles"]) == {cfg.role_name(f) for f in FUNCTIONS} | {"shop-scheduler"}
    for function in FUNCTIONS:
        attached = iam.list_attached_role_policies(RoleName=cfg.role_name(function))[
            "AttachedPolicies"
        ]
        assert [p["PolicyName"] for p in attached] == ["AWSLambdaBasicExecutionRole"]
        assert iam.list_role_policies(RoleName=cfg.role_name(function))["PolicyNames"] == []
        trust = state["roles"][cfg.role_name(function)]["AssumeRolePolicyDocument"]
        assert trust["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
    scheduler_trust = state["roles"]["shop-scheduler"]["AssumeRolePolicyDocument"]["Statement"][0]
    assert scheduler_trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    invoke = iam.get_role_policy(RoleName="shop-scheduler", PolicyName="invoke-scheduled-functions")
    relay_arn = state["functions"]["shop-outbox-relay"]["FunctionArn"]
    assert invoke["PolicyDocument"]["Statement"] == [
        {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": [relay_arn]}
    ]

    # an HTTP API per gateway: every route of infra/functions.py to its function, $default stage
    assert set(state["apis"]) == {"shop-command-api", "shop-query-api"}
    for port in ("command", "query"):
        functions = [f for f in HTTP if f.port == port]
        api = state["apis"][f"shop-{port}-api"]
        assert api["tags"] == cfg.tags
        assert set(api["routes"]) == expected_routes(functions)
        for function in functions:
            arn = state["functions"][cfg.function_name(function)]["FunctionArn"]
            for _method, path in function.routes:
                assert api["routes"][f"ANY {path}"][1] == arn
                assert api["routes"][f"ANY {path}/{{proxy+}}"][1] == arn
            # API Gateway may invoke it, from this API only
            policy = json.loads(
                session.client("lambda").get_policy(FunctionName=cfg.function_name(function))[
                    "Policy"
                ]
            )
            [statement] = policy["Statement"]
            assert statement["Principal"] == {"Service": "apigateway.amazonaws.com"}
            assert statement["Condition"]["ArnLike"]["AWS:SourceArn"] == (
                f"arn:aws:execute-api:{REGION}:{account}:{api['id']}/*/*"
            )
        assert (
            api["routes"]["ANY /health"][1]
            == state["functions"][cfg.function_name(functions[0])]["FunctionArn"]
        )
        assert {i["PayloadFormatVersion"] for i in api["integrations"].values()} == {"2.0"}
        assert api["stages"] == {"$default": True}
    assert {e.port: e.api_id for e in endpoints} == {
        "command": state["apis"]["shop-command-api"]["id"],
        "query": state["apis"]["shop-query-api"]["id"],
    }

    # the relay's schedule, in the project's (tagged) group, invoking with the scheduler role
    assert "shop" in state["groups"]
    [(name, sched)] = state["schedules"].items()
    relay = by_name("outbox_relay")
    assert name == "shop-outbox-relay"
    assert sched["ScheduleExpression"] == f"rate({relay.schedule_minutes} minute)"
    assert sched["Target"]["Arn"] == relay_arn
    assert sched["Target"]["RoleArn"] == state["roles"]["shop-scheduler"]["Arn"]
    assert sched["State"] == "ENABLED"

    # no broker given: the mapping is reported skipped, not half-made
    assert {s.action for s in plan.of("event-source-mapping")} == {"skip"}
    assert {s.action for s in plan.steps} == {"create", "skip"}


def test_the_schedule_sends_the_canonical_scheduled_event(session, cfg):
    deploy(cfg, session)
    sched = session.client("scheduler").get_schedule(Name="shop-outbox-relay", GroupName="shop")

    sent = json.loads(sched["Target"]["Input"])

    canonical = load_event("eventbridge_scheduled")
    assert set(sent) == set(canonical)
    assert set(sent["detail"]) == set(canonical["detail"])
    assert sent["detail-type"] == canonical["detail-type"] == "Scheduled Event"
    assert sent["source"] == canonical["source"]
    # filled in by EventBridge Scheduler on every run
    assert sent["resources"] == ["<aws.scheduler.schedule-arn>"]


def test_a_second_deploy_changes_nothing(session, cfg):
    deploy(cfg, session)
    before = ids(snapshot(session))

    plan, _ = deploy(cfg, session)

    assert plan.changes == []
    assert {s.action for s in plan.steps} == {"unchanged", "skip"}
    assert ids(snapshot(session)) == before


def test_a_deploy_converges_what_differs_and_only_that(session, cfg, bundles, monkeypatch):
    deploy(cfg, session)
    gw = session.client("apigatewayv2")
    query_api = next(a for a in gw.get_apis()["Items"] if a["Name"] == "shop-query-api")
    [integration] = gw.get_integrations(ApiId=query_api["ApiId"])["Items"]
    gw.create_route(
        ApiId=query_api["ApiId"],
        RouteKey="GET /old",
        Target=f"integrations/{integration['IntegrationId']}",
    )
    write_bundle(bundles / "outbox_relay.zip", "def handler(e, c):\n    return 'v2'\n")
    monkeypatch.setenv(
        "RELAY_DATABASE_URL", "postgresql://shop_relay:other@db.example.com/write_db"
    )
    runtime.current().reset(shop_config.SETTINGS)

    plan, _ = deploy(cfg, session)

    assert [(s.kind, s.name, s.action, s.detail) for s in plan.changes] == [
        ("lambda", "shop-outbox-relay", "update", "code, $RELAY_DATABASE_URL"),
        ("route", "shop-query-api GET /old", "delete", ""),
    ]
    relay = session.client("lambda").get_function(FunctionName="shop-outbox-relay")["Configuration"]
    assert relay["Environment"]["Variables"]["RELAY_DATABASE_URL"].endswith(
        "other@db.example.com/write_db"
    )
    assert "GET /old" not in {
        r["RouteKey"] for r in gw.get_routes(ApiId=query_api["ApiId"])["Items"]
    }


def test_subnets_put_every_function_in_the_vpc(session, cfg):
    subnet, group = "subnet-0123456789abcdef0", "sg-0123456789abcdef0"  # moto does not check
    deploy(cfg, session)
    in_vpc = DeployConfig(
        region=REGION, bundle_dir=cfg.bundle_dir, subnet_ids=(subnet,), security_group_ids=(group,)
    )

    plan, _ = deploy(in_vpc, session)

    assert {s.name for s in plan.of("lambda") if s.action == "update"} == {
        in_vpc.function_name(f) for f in FUNCTIONS
    }
    assert all(s.detail == "VpcConfig" for s in plan.of("lambda"))
    iam, lam = session.client("iam"), session.client("lambda")
    for function in FUNCTIONS:
        attached = iam.list_attached_role_policies(RoleName=in_vpc.role_name(function))[
            "AttachedPolicies"
        ]
        assert {p["PolicyName"] for p in attached} == {
            "AWSLambdaBasicExecutionRole",
            "AWSLambdaVPCAccessExecutionRole",
        }
        vpc_config = lam.get_function(FunctionName=in_vpc.function_name(function))["Configuration"][
            "VpcConfig"
        ]
        assert (vpc_config["SubnetIds"], vpc_config["SecurityGroupIds"]) == ([subnet], [group])


def test_teardown_leaves_nothing_it_created_and_everything_else(session, cfg):
    """Someone else's role, function and API, untagged, in the same account, survive."""
    iam, lam, gw = session.client("iam"), session.client("lambda"), session.client("apigatewayv2")
    theirs = iam.create_role(RoleName="shop-theirs", Path="/shop/", AssumeRolePolicyDocument="{}")[
        "Role"
    ]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("x.py", "")
    lam.create_function(
        FunctionName="shop-theirs",
        Runtime="python3.11",
        Role=theirs["Arn"],
        Handler="x.h",
        Code={"ZipFile": buffer.getvalue()},
    )
    gw.create_api(Name="shop-query-api", ProtocolType="HTTP")  # same name, not tagged
    before = snapshot(session)
    deploy(cfg, session)

    plan = remove(cfg, session)

    assert {s.action for s in plan.steps} == {"delete"}
    after = snapshot(session)
    assert set(after["functions"]) == set(before["functions"]) == {"shop-theirs"}
    assert set(after["roles"]) == set(before["roles"])
    assert [a["id"] for a in after["apis"].values()] == [a["id"] for a in before["apis"].values()]
    assert after["groups"] == before["groups"] == ["default"]
    assert after["schedules"] == {}
    assert remove(cfg, session).steps == []


def test_deploy_refuses_to_take_over_a_resource_it_did_not_create(session, cfg, capsys):
    iam = session.client("iam")
    iam.create_role(RoleName="shop-create-product", AssumeRolePolicyDocument="{}")

    assert main(["deploy", "--region", REGION, "--bundle-dir", str(cfg.bundle_dir)], session) == 1

    assert "shop-create-product exists but is not tagged" in capsys.readouterr().err


def test_a_real_deploy_needs_every_bundle(session, cfg, tmp_path):
    (cfg.bundle_dir / "projector.zip").unlink()
    with pytest.raises(DeployError, match=r"projector\.zip"):
        deploy(cfg, session)
    assert session.client("lambda").list_functions()["Functions"] == []


# --- the dry run --------------------------------------------------------------------------


PLAN_LINE = re.compile(
    r"^(?P<action>\w+) +(?P<kind>[\w-]+) +(?P<name>.+?)(?:  \((?P<detail>.*)\))?$"
)


def printed_plan(text: str) -> dict[tuple[str, str], tuple[str, str]]:
    """{(kind, name): (action, detail)} of every step line `python -m infra.deploy.aws` printed."""
    steps = {}
    for line in text.splitlines():
        match = PLAN_LINE.match(line)
        if match and not line.startswith(("--", "note:")) and " API: " not in line:
            steps[match["kind"], match["name"]] = (match["action"], match["detail"] or "")
    return steps


def test_dry_run_plan_matches_the_function_definitions_and_writes_nothing(session, cfg, capsys):
    calls: list[str] = []
    session.events.register("before-call", lambda model, **_: calls.append(model.name))
    argv = ["deploy", "--dry-run", "--region", REGION, "--bundle-dir", str(cfg.bundle_dir)]

    assert main([*argv, "--mq-broker-arn", BROKER, "--mq-secret-arn", SECRET], session) == 0

    printed = capsys.readouterr().out
    assert calls, "the dry run must read the account to know what exists"
    assert all(name.startswith(("Get", "List", "Describe")) for name in calls), set(calls)
    assert "s3cret" not in printed  # URLs carry passwords: the plan names variables only
    assert "dry run, nothing changed" in printed
    steps = printed_plan(printed)
    assert {action for action, _ in steps.values()} == {"create"}
    for function in FUNCTIONS:
        detail = f"python3.11, {function.timeout_seconds} s, {function.name}.zip"
        assert steps["lambda", cfg.function_name(function)] == ("create", detail)
        assert ("iam-role", cfg.role_name(function)) in steps
    routes = {name for kind, name in steps if kind == "route"}
    assert routes == {
        f"shop-{port}-api {route}"
        for port in ("command", "query")
        for route in expected_routes([f for f in HTTP if f.port == port])
    }
    [(name, schedule_step)] = [(n, v) for (k, n), v in steps.items() if k == "schedule"]
    relay = by_name("outbox_relay")
    assert (name, schedule_step) == (
        "shop-outbox-relay",
        ("create", f"rate({relay.schedule_minutes} minute)"),
    )
    mappings = {name for kind, name in steps if kind == "event-source-mapping"}
    assert mappings == {f"shop-projector <- {q}" for q in by_name("projector").queues}
    assert snapshot(session)["functions"] == {}


def test_dry_run_after_a_deploy_reports_unchanged(session, cfg):
    deploy(cfg, session)
    plan, _ = deploy(cfg, session, dry_run=True)
    assert {s.action for s in plan.steps} == {"unchanged", "skip"}


def test_rate_expressions_use_aws_units():
    assert schedule.rate(1) == "rate(1 minute)"
    assert schedule.rate(5) == "rate(5 minutes)"


def test_every_function_has_the_lambda_handler_the_deploy_names():
    for function in FUNCTIONS:
        source = REPO / "functions" / function.name / "lambda_handler.py"
        tree = ast.parse(source.read_text())
        [handler] = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "handler"]
        assert [a.arg for a in handler.args.args] == ["event", "context"]


# --- Stubber: what moto cannot do -----------------------------------------------------------


def stubbed(service: str) -> tuple[object, Stubber]:
    client = boto3.client(
        service, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    return client, Stubber(client)


def stub_deployment(clients: dict, **config) -> Deployment:
    session = boto3.Session(
        region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    return Deployment(DeployConfig(region=REGION, **config), Plan(), session, clients)


MQ = {"mq_broker_arn": BROKER, "mq_secret_arn": SECRET}


def uuid(tag: str) -> str:
    """A mapping UUID (the API wants 36 characters) recognisable by its tag."""
    return str(UUID(int=int.from_bytes(tag.encode().ljust(16, b"-"))))


def mapping_response(
    queue: str, tag: str, batch_size: int = mapping.BATCH_SIZE, vhost: str = "/"
) -> dict:
    access = [{"Type": "BASIC_AUTH", "URI": SECRET}]
    if vhost != "/":
        access.append({"Type": "VIRTUAL_HOST", "URI": vhost})
    return {
        "UUID": uuid(tag),
        "EventSourceArn": BROKER,
        "FunctionArn": "arn:aws:lambda:eu-west-1:123456789012:function:shop-projector",
        "Queues": [queue],
        "BatchSize": batch_size,
        "SourceAccessConfigurations": access,
        "State": "Enabled",
    }


LIST = {"FunctionName": "shop-projector", "EventSourceArn": BROKER}


def test_amazon_mq_mappings_one_per_queue_are_created_then_left_alone():
    """Stubber: moto 5 answers CreateEventSourceMapping for an Amazon MQ broker with
    "Invalid EventSourceArn"."""
    queues = by_name("projector").queues
    lam, stub = stubbed("lambda")
    stub.add_response("list_event_source_mappings", {"EventSourceMappings": []}, LIST)
    for n, queue in enumerate(queues):
        expected = {
            "EventSourceArn": BROKER,
            "FunctionName": "shop-projector",
            "Queues": [queue],
            "SourceAccessConfigurations": [{"Type": "BASIC_AUTH", "URI": SECRET}],
            "BatchSize": mapping.BATCH_SIZE,
            "Enabled": True,
            "Tags": {"project": "shop", "managed-by": "infra.deploy.aws"},
        }
        stub.add_response(
            "create_event_source_mapping", mapping_response(queue, f"uuid-{n}"), expected
        )
    d = stub_deployment({"lambda": lam}, **MQ)
    with stub:
        mapping.ensure_mappings(d)
    stub.assert_no_pending_responses()
    assert [(s.name, s.action) for s in d.plan.steps] == [
        (f"shop-projector <- {q}", "create") for q in queues
    ]

    # the second time they exist as wanted: one listing, no writes
    lam, stub = stubbed("lambda")
    existing = [mapping_response(q, f"uuid-{n}") for n, q in enumerate(queues)]
    stub.add_response("list_event_source_mappings", {"EventSourceMappings": existing}, LIST)
    d = stub_deployment({"lambda": lam}, **MQ)
    with stub:
        mapping.ensure_mappings(d)
    assert {s.action for s in d.plan.steps} == {"unchanged"}


def test_amazon_mq_mappings_converge():
    """Stubber, as moto 5 rejects Amazon MQ mappings: a drifted batch size is updated, a
    mapping for a queue the projector no longer reads is deleted, and a changed virtual host
    (which UpdateEventSourceMapping cannot change) replaces the mapping."""
    product, order = by_name("projector").queues
    lam, stub = stubbed("lambda")
    existing = [
        mapping_response(product, "a", batch_size=10),
        mapping_response(order, "b"),
        mapping_response("old-events", "c"),
    ]
    stub.add_response("list_event_source_mappings", {"EventSourceMappings": existing}, LIST)
    stub.add_response(
        "update_event_source_mapping",
        mapping_response(product, "a"),
        {
            "UUID": uuid("a"),
            "FunctionName": "shop-projector",
            "BatchSize": mapping.BATCH_SIZE,
            "Enabled": True,
        },
    )
    stub.add_response(
        "delete_event_source_mapping", mapping_response("old-events", "c"), {"UUID": uuid("c")}
    )
    d = stub_deployment({"lambda": lam}, **MQ)
    with stub:
        mapping.ensure_mappings(d)
    stub.assert_no_pending_responses()
    assert [(s.name, s.action) for s in d.plan.changes] == [
        (f"shop-projector <- {product}", "update"),
        ("shop-projector <- old-events", "delete"),
    ]

    lam, stub = stubbed("lambda")
    stub.add_response(
        "list_event_source_mappings",
        {"EventSourceMappings": [mapping_response(product, "a"), mapping_response(order, "b")]},
        LIST,
    )
    for tag, queue in (("a", product), ("b", order)):
        stub.add_response(
            "delete_event_source_mapping", mapping_response(queue, tag), {"UUID": uuid(tag)}
        )
        stub.add_response(
            "create_event_source_mapping",
            mapping_response(queue, tag + "2", vhost="shop"),
            {
                "EventSourceArn": BROKER,
                "FunctionName": "shop-projector",
                "Queues": [queue],
                "SourceAccessConfigurations": [
                    {"Type": "BASIC_AUTH", "URI": SECRET},
                    {"Type": "VIRTUAL_HOST", "URI": "shop"},
                ],
                "BatchSize": mapping.BATCH_SIZE,
                "Enabled": True,
                "Tags": {"project": "shop", "managed-by": "infra.deploy.aws"},
            },
        )
    d = stub_deployment({"lambda": lam}, mq_vhost="shop", **MQ)
    with stub:
        mapping.ensure_mappings(d)
    stub.assert_no_pending_responses()


def test_only_the_projector_role_may_use_the_broker(session, cfg):
    """With a broker, the projector's role (and no other) gets what Lambda's Amazon MQ poller
    needs, scoped to that broker and that secret. (The roles are real moto writes; only the
    mapping call is beyond moto, and stubbed above.)"""
    with_broker = DeployConfig(region=REGION, bundle_dir=cfg.bundle_dir, **MQ)
    d = Deployment(with_broker, Plan(), session)
    for function in FUNCTIONS:
        aws_iam.ensure_function_role(d, function)

    client = session.client("iam")
    for function in FUNCTIONS:
        inline = client.list_role_policies(RoleName=with_broker.role_name(function))
        assert inline["PolicyNames"] == (
            ["amazon-mq-trigger"] if function.trigger == "queue" else []
        )
    document = client.get_role_policy(RoleName="shop-projector", PolicyName="amazon-mq-trigger")
    resources = {
        s["Action"] if isinstance(s["Action"], str) else "ec2": s["Resource"]
        for s in document["PolicyDocument"]["Statement"]
    }
    assert resources == {
        "mq:DescribeBroker": BROKER,
        "secretsmanager:GetSecretValue": SECRET,
        "ec2": "*",
    }


def test_a_stage_without_auto_deploy_is_updated():
    """Stubber: moto 5 does not implement API Gateway v2's UpdateStage."""
    gw, stub = stubbed("apigatewayv2")
    stub.add_response(
        "get_stages",
        {"Items": [{"StageName": "$default", "AutoDeploy": False}]},
        {"ApiId": "abc123"},
    )
    stub.add_response(
        "update_stage",
        {"StageName": "$default", "AutoDeploy": True},
        {"ApiId": "abc123", "StageName": "$default", "AutoDeploy": True},
    )
    d = stub_deployment({"apigatewayv2": gw})
    with stub:
        http_api.ensure_stage(d, "shop-query-api", "abc123")
    stub.assert_no_pending_responses()
    assert [(s.kind, s.action) for s in d.plan.steps] == [("stage", "update")]

    gw, stub = stubbed("apigatewayv2")
    stub.add_response(
        "get_stages",
        {"Items": [{"StageName": "$default", "AutoDeploy": True}]},
        {"ApiId": "abc123"},
    )
    d = stub_deployment({"apigatewayv2": gw})
    with stub:
        http_api.ensure_stage(d, "shop-query-api", "abc123")
    assert [(s.kind, s.action) for s in d.plan.steps] == [("stage", "unchanged")]


def test_a_function_is_created_once_its_new_role_can_be_assumed(tmp_path):
    """Stubber (moto accepts a role at once): real IAM takes seconds before Lambda may assume
    a new role, and create_function says so; the deploy waits and retries."""
    lam, stub = stubbed("lambda")
    sts, sts_stub = stubbed("sts")
    identity = {"Account": "123456789012", "Arn": "arn:aws:iam::123456789012:user/deployer"}
    sts_stub.add_response("get_caller_identity", {**identity, "UserId": "AIDAEXAMPLE"}, {})
    stub.add_client_error("get_function", "ResourceNotFoundException", "Function not found")
    stub.add_client_error(
        "create_function",
        "InvalidParameterValueException",
        "The role defined for the function cannot be assumed by Lambda.",
    )
    created = {"FunctionName": "shop-projector", "State": "Pending"}
    stub.add_response("create_function", created)
    stub.add_response("get_function", {"Configuration": {**created, "State": "Active"}})
    write_bundle(tmp_path / "projector.zip", "")
    d = stub_deployment({"lambda": lam, "sts": sts}, bundle_dir=tmp_path)
    waits: list[float] = []

    with stub, sts_stub:
        arn = lambdas.ensure_function(
            d, by_name("projector"), "arn:aws:iam::1:role/r", waits.append
        )

    stub.assert_no_pending_responses()
    assert waits == [3.0]
    assert arn == "arn:aws:lambda:eu-west-1:123456789012:function:shop-projector"


def test_the_commands_in_the_deploy_guide_are_valid():
    """docs/deploy-aws.md's `python -m infra.deploy.aws` examples parse with the real command
    line."""
    text = (REPO / "docs" / "deploy-aws.md").read_text().replace("\\\n", " ")
    commands = [
        line.split("python -m infra.deploy.aws", 1)[1].split()
        for line in text.splitlines()
        if line.startswith("python -m infra.deploy.aws ")
    ]
    assert len(commands) >= 4
    for argv in commands:
        args = parser().parse_args(argv)
        assert args.region == REGION
    for function in FUNCTIONS:
        assert f"`{function.name}`" in text
        for variable in function.database_urls:
            assert variable in text
