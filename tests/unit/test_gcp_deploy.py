"""`python -m infra.deploy.gcp deploy|teardown --dry-run` against infra/functions.py.

Nothing reaches Google Cloud. The printed script is read (every function with its entry point,
trigger and variables; the relay's schedule; the bridge to the projector) and then run by bash
with a stand-in `gcloud` that records each call, which shows the script runs top to bottom and
what gcloud would receive once bash has filled in the secrets.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from infra.deploy.gcp import deploy
from infra.functions import FUNCTIONS, REPO, Function

PROJECT, REGION = "shop-test", "europe-west1"
SECRETS = {
    "COMMAND_DATABASE_URL": "postgresql://shop_command:s3cret-1@db1:5432,db2:5432/write_db",
    "RELAY_DATABASE_URL": "postgresql://shop_relay:s3cret-2@db/write_db",
    "PROJECTOR_DATABASE_URL": "postgresql://shop_projector:s3cret-3@db/read_db",
    "ANALYTICS_DATABASE_URL": "postgresql://shop_analytics:s3cret-4@db/read_db",
    "ANALYTICS_OUTBOX_DATABASE_URL": "postgresql://shop_analytics:s3cret-4@db/write_db",
    "BROKER_URL": "amqps://shop:s3cret-5@mq:5671/shop",
}


@cache
def script(action: str) -> str:
    argv = [sys.executable, "-m", "infra.deploy.gcp", action, "--dry-run"]
    argv += ["--project", PROJECT, "--region", REGION]
    env = {**os.environ, **SECRETS}
    return subprocess.run(
        argv, cwd=REPO, env=env, capture_output=True, text=True, check=True
    ).stdout


def commands(action: str, *prefix: str) -> list[list[str]]:
    """The plain command lines starting with `prefix`, split as bash would (no expansion)."""
    lines = [shlex.split(line) for line in script(action).splitlines() if line.startswith("gcloud")]
    return [words for words in lines if words[: len(prefix)] == list(prefix)]


def flag(words: list[str], name: str) -> str:
    return words[words.index(name) + 1]


def env_vars(words: list[str]) -> dict[str, str]:
    value = flag(words, "--set-env-vars")
    assert value.startswith("^|^")  # gcloud's escape: `|` separates, URLs may hold commas
    return dict(pair.split("=", 1) for pair in value[3:].split("|"))


def deployed(name: str) -> list[str]:
    [words] = [w for w in commands("deploy", "gcloud", "functions", "deploy") if w[3] == name]
    return words


def captured_url(name: str) -> str:
    """The script variable holding the URL of function `name`, checked to be its URL."""
    variable = deploy.url_variable(next(f for f in FUNCTIONS if f.name == name))
    describe = rf'^{variable}="\$\(gcloud functions describe {name} .*value\(serviceConfig.uri\)'
    assert re.search(describe, script("deploy"), re.M), f"{variable} is not {name}'s URL"
    return f"${variable}"


def test_deploys_exactly_the_defined_functions() -> None:
    names = [words[3] for words in commands("deploy", "gcloud", "functions", "deploy")]
    assert names == [f.name for f in FUNCTIONS]


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.name)
def test_function_is_deployed_from_its_bundle_with_its_entry_point(function: Function) -> None:
    words = deployed(function.name)
    assert "--gen2" in words and "--trigger-http" in words
    assert flag(words, "--runtime") == "python311"
    assert flag(words, "--entry-point") == function.target
    assert flag(words, "--source") == f"dist/gcp/{function.name}"
    assert flag(words, "--timeout") == f"{function.timeout_seconds}s"
    assert (flag(words, "--project"), flag(words, "--region")) == ("$PROJECT", "$REGION")
    assert f"python -m zipfile -e dist/gcp/{function.name}.zip dist/gcp/{function.name}" in (
        script("deploy")
    )


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.name)
def test_only_http_functions_are_public(function: Function) -> None:
    words = deployed(function.name)
    public = function.trigger == "http"
    assert ("--allow-unauthenticated" in words) == public
    assert ("--no-allow-unauthenticated" in words) == (not public)
    bindings = commands("deploy", "gcloud", "functions", "add-invoker-policy-binding")
    bound = {w[3]: flag(w, "--member") for w in bindings}
    assert (function.name in bound) == (not public)
    if not public:
        assert bound[function.name] == "serviceAccount:$INVOKER"


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.name)
def test_function_gets_its_own_database_urls_and_nothing_else(function: Function) -> None:
    env = env_vars(deployed(function.name))
    urls = {name for name in env if name.endswith("_URL")}
    expected = set(function.database_urls)
    if function.trigger in ("schedule", "queue"):
        expected.add("BROKER_URL")
    assert urls == expected
    for name in urls:
        assert env[name] == f"${name}"  # bash fills it in from the deploying shell
        assert f': "${{{name}:?' in script("deploy")  # and stops early if it is unset
    if function.trigger == "schedule":
        assert int(env["RELAY_BUDGET_SECONDS"]) < function.timeout_seconds


def test_the_relay_is_scheduled_every_schedule_minutes_with_an_oidc_token() -> None:
    scheduled = [f for f in FUNCTIONS if f.trigger == "schedule"]
    jobs = commands("deploy", "gcloud", "scheduler", "jobs", "create", "http")
    assert len(jobs) == len(scheduled) >= 1
    for function, job in zip(scheduled, jobs, strict=True):
        url = captured_url(function.name)
        assert flag(job, "--schedule") == f"*/{function.schedule_minutes} * * * *"
        assert flag(job, "--uri") == url and flag(job, "--oidc-token-audience") == url
        assert flag(job, "--oidc-service-account-email") == "$INVOKER"
        assert flag(job, "--http-method") == "POST"
        headers = dict(h.split("=", 1) for h in flag(job, "--headers").split(","))
        assert headers["ce-specversion"] == "1.0"
        assert headers["ce-type"] == "google.cloud.scheduler.job.v1.executed"
        assert {"ce-id", "ce-source"} <= set(headers)


def test_the_bridge_pushes_the_projector_queues_to_the_projector() -> None:
    [function] = [f for f in FUNCTIONS if f.trigger == "queue"]
    [bridge] = commands("deploy", "gcloud", "run", "deploy")
    assert bridge[3] == deploy.bridge_name(function)
    args = flag(bridge, "--args").split(",")
    assert args[:2] == ["-m", "infra.deploy.gcp.bridge"]
    assert args[args.index("--target") + 1] == captured_url(function.name)
    assert "--id-token" in args
    assert args[args.index("--health-port") + 1] == flag(bridge, "--port")
    assert flag(bridge, "--service-account") == "$INVOKER"
    assert flag(bridge, "--min-instances") == "1" and "--no-cpu-throttling" in bridge
    assert env_vars(bridge) == {"BROKER_URL": "$BROKER_URL"}


def test_dry_run_prints_no_secret() -> None:
    for action in ("deploy", "teardown"):
        assert "s3cret" not in script(action)


@pytest.mark.parametrize("action", ["deploy", "teardown"])
def test_scripts_are_valid_bash(action: str) -> None:
    subprocess.run(["bash", "-n"], input=script(action), text=True, check=True)


def test_teardown_deletes_everything_deploy_creates() -> None:
    deleted = {w[3] for w in commands("teardown", "gcloud", "functions", "delete")}
    assert deleted == {f.name for f in FUNCTIONS}
    [job] = commands("teardown", "gcloud", "scheduler", "jobs", "delete")
    [created_job] = commands("deploy", "gcloud", "scheduler", "jobs", "create", "http")
    assert job[4] == created_job[5]
    [service] = commands("teardown", "gcloud", "run", "services", "delete")
    [bridge] = commands("deploy", "gcloud", "run", "deploy")
    assert service[4] == bridge[3]
    [account] = commands("teardown", "gcloud", "iam", "service-accounts", "delete")
    assert account[4] == "$INVOKER"
    assert all("--quiet" in w for w in commands("teardown", "gcloud"))


# --- the script run by bash, against a stand-in gcloud -----------------------------------------

FAKE_GCLOUD = """\
#!{python}
import json, os, sys
args = sys.argv[1:]
with open(os.environ["GCLOUD_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
if args[:2] == ["functions", "describe"]:
    print(f"https://{{args[2].replace('_', '-')}}-abc123-ew.a.run.app")
fail = os.environ["GCLOUD_FAIL"]
sys.exit(1 if "describe" in args[:3] and args[0] == "iam" or fail in args else 0)
"""


def run_script(action: str, tmp_path: Path, **overrides: str) -> tuple[int, list[list[str]]]:
    fake = tmp_path / "bin" / "gcloud"
    fake.parent.mkdir(exist_ok=True)
    fake.write_text(FAKE_GCLOUD.format(python=sys.executable))
    fake.chmod(0o755)
    log = tmp_path / "gcloud.log"
    path = f"{fake.parent}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}/usr/bin:/bin"
    env = {"PATH": path, "PYTHONPATH": str(REPO), "GCLOUD_LOG": str(log), "GCLOUD_FAIL": "-"}
    done = subprocess.run(
        ["bash", "-c", script(action)],
        cwd=tmp_path,  # the bundles land in tmp_path/dist/gcp
        env={**env, **SECRETS, **overrides},
        capture_output=True,
        text=True,
        timeout=120,
    )
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return done.returncode, calls


def test_deploy_script_runs_through_and_hands_gcloud_the_secrets(tmp_path: Path) -> None:
    status, calls = run_script("deploy", tmp_path)
    assert status == 0
    for function in FUNCTIONS:  # the bundle is unpacked where --source points
        assert (tmp_path / "dist" / "gcp" / function.name / "main.py").is_file()
    deploys = {c[2]: c for c in calls if c[:2] == ["functions", "deploy"]}
    assert list(deploys) == [f.name for f in FUNCTIONS]
    command_env = env_vars(deploys["create_product"])
    assert command_env["COMMAND_DATABASE_URL"] == SECRETS["COMMAND_DATABASE_URL"]  # commas kept
    assert env_vars(deploys["projector"])["BROKER_URL"] == SECRETS["BROKER_URL"]
    [job] = [c for c in calls if c[:4] == ["scheduler", "jobs", "create", "http"]]
    assert flag(job, "--uri") == "https://outbox-relay-abc123-ew.a.run.app"
    assert (
        flag(job, "--oidc-service-account-email")
        == f"shop-invoker@{PROJECT}.iam.gserviceaccount.com"
    )
    [bridge] = [c for c in calls if c[:2] == ["run", "deploy"]]
    assert "--target,https://projector-abc123-ew.a.run.app," in flag(bridge, "--args") + ","
    assert ["iam", "service-accounts", "create", "shop-invoker"] in [c[:4] for c in calls]


def test_deploy_script_stops_before_anything_when_a_secret_is_missing(tmp_path: Path) -> None:
    status, calls = run_script("deploy", tmp_path, BROKER_URL="")
    assert status != 0 and calls == []
    assert not (tmp_path / "dist").exists()


def test_teardown_tries_every_delete_and_reports_a_failure(tmp_path: Path) -> None:
    status, calls = run_script("teardown", tmp_path, GCLOUD_FAIL="projector-bridge")
    assert status == 1
    deletes = [c for c in calls if "delete" in c]
    assert len(deletes) == len(FUNCTIONS) + 3  # functions, scheduler job, bridge, account
