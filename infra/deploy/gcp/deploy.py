"""The Google Cloud deployment as a bash script, generated from infra/functions.py.

What each trigger becomes:
- http: a public HTTPS function (the API; COMMAND_API_KEYS guards the writes);
- schedule: a private HTTPS function and a Cloud Scheduler job that POSTs it a CloudEvent
  every `schedule_minutes`, with an OIDC token of the invoker service account;
- queue: a private HTTPS function and its bridge (infra/deploy/gcp/bridge.py), an always-on
  Cloud Run service that consumes the queues and POSTs each batch to it as a CloudEvent.
Secrets are never in the script: each function's URL variables are read by bash, at run time,
from the environment of the shell that runs it.
"""

from __future__ import annotations

import shlex

from infra.functions import FUNCTIONS, Function

RUNTIME = "python311"
BUNDLES = "dist/gcp"
INVOKER = "shop-invoker"  # the service account the scheduler and the bridge invoke with
HTTP_CONCURRENCY = 8  # requests an HTTP instance serves at once, each with a pooled connection
BRIDGE_PORT = 8080  # Cloud Run probes it: the bridge answers GET /health there
WHERE = ("--project", "$PROJECT", "--region", "$REGION")
SCHEDULER_WHERE = ("--project", "$PROJECT", "--location", "$REGION")


def sh(*words: str) -> str:
    """A command line; words naming a variable ($PROJECT) are double-quoted, for bash to expand."""

    def quote(word: str) -> str:
        if "$" not in word:
            return shlex.quote(word)
        assert not any(c in word for c in '"`\\'), word
        return f'"{word}"'

    return " ".join(quote(word) for word in words)


def kebab(function: Function) -> str:
    return function.name.replace("_", "-")


def job_name(function: Function) -> str:
    return f"{kebab(function)}-schedule"


def bridge_name(function: Function) -> str:
    return f"{kebab(function)}-bridge"


def url_variable(function: Function) -> str:
    return f"{function.name.upper()}_URL"


def cron(minutes: int) -> str:
    if 0 < minutes < 60:
        return f"*/{minutes} * * * *"
    if minutes % 60 == 0 and minutes < 24 * 60:
        return f"0 */{minutes // 60} * * *"
    raise ValueError(f"no cron schedule for every {minutes} minutes")


def env_vars(function: Function) -> dict[str, str]:
    """Variable -> its value as bash sees it (secrets come from the deploying shell)."""
    names = list(function.database_urls)
    if function.trigger in ("schedule", "queue"):
        names.append("BROKER_URL")  # the relay publishes; the projector parks dead letters
    values = {name: f"${name}" for name in names}
    if function.trigger == "schedule":
        # drain and watch for the whole slot until the next schedule, within the timeout
        budget = min(function.schedule_minutes * 60, function.timeout_seconds - 10)
        values["RELAY_BUDGET_SECONDS"] = str(budget)
    if function.port == "command":  # optional: when set, the writes need a key
        values["COMMAND_API_KEYS"] = "${COMMAND_API_KEYS:-}"
    if function.trigger == "http":
        values |= {"THREADS": str(HTTP_CONCURRENCY), "DB_POOL_MAX_SIZE": str(HTTP_CONCURRENCY)}
        # the request timeout, for functions-framework's gunicorn and for the analytics'
        # token waits, which end before it (shopcore/platform/http.py)
        values["CLOUD_RUN_TIMEOUT_SECONDS"] = str(function.timeout_seconds)
    return values


def set_env_vars(values: dict[str, str]) -> str:
    # gcloud's `^|^` escape: `|` between variables, as database URLs may hold commas (libpq's
    # multi-host URLs) but never a bare `|`
    return "^|^" + "|".join(f"{name}={value}" for name, value in values.items())


def trigger_note(function: Function) -> str:
    if function.trigger == "http":
        routes = ", ".join(f"{method} {path}" for method, path in function.routes)
        return f"{function.name}: HTTP ({routes}) -> a public HTTPS function"
    if function.trigger == "schedule":
        return (
            f"{function.name}: every {function.schedule_minutes} min -> a private HTTPS "
            "function + a Cloud Scheduler job"
        )
    return (
        f"{function.name}: RabbitMQ {', '.join(function.queues)} -> a private HTTPS "
        f"function + the {bridge_name(function)} service"
    )


def deploy_function(function: Function) -> list[str]:
    public = function.trigger == "http"
    command = [
        "gcloud", "functions", "deploy", function.name, "--gen2", *WHERE,
        "--runtime", RUNTIME,
        "--source", f"{BUNDLES}/{function.name}",
        "--entry-point", function.target,
        "--trigger-http",
        "--allow-unauthenticated" if public else "--no-allow-unauthenticated",
        "--timeout", f"{function.timeout_seconds}s",
    ]  # fmt: skip
    if public:  # more than one request at a time needs a whole CPU
        command += ["--concurrency", str(HTTP_CONCURRENCY), "--cpu", "1", "--memory", "512Mi"]
    else:  # one invocation at a time: it caches one connection and one channel
        command += ["--concurrency", "1"]
    lines = [sh(*command, "--set-env-vars", set_env_vars(env_vars(function)))]
    if not public:
        binding = ["gcloud", "functions", "add-invoker-policy-binding", function.name, *WHERE]
        lines.append(sh(*binding, "--member", "serviceAccount:$INVOKER"))
        describe = ["gcloud", "functions", "describe", function.name, "--gen2", *WHERE]
        uri = sh(*describe, "--format", "value(serviceConfig.uri)")
        lines.append(f'{url_variable(function)}="$({uri})"')
    return lines


def schedule(function: Function) -> list[str]:
    job, url = job_name(function), f"${url_variable(function)}"
    # Cloud Scheduler sends fixed headers: a binary-mode CloudEvent (same ce-id every run; the
    # relay does not deduplicate its schedules)
    headers = ",".join(
        [
            "Content-Type=application/json",
            "ce-specversion=1.0",
            f"ce-id={job}",
            "ce-type=google.cloud.scheduler.job.v1.executed",
            f"ce-source=//cloudscheduler.googleapis.com/projects/$PROJECT/locations/$REGION/jobs/{job}",
        ]
    )
    create = [
        "gcloud", "scheduler", "jobs", "create", "http", job, *SCHEDULER_WHERE,
        "--schedule", cron(function.schedule_minutes), "--time-zone", "Etc/UTC",
        "--uri", url, "--http-method", "POST",
        "--headers", headers, "--message-body", "{}",
        "--oidc-service-account-email", "$INVOKER", "--oidc-token-audience", url,
        "--attempt-deadline", f"{function.timeout_seconds + 20}s",
    ]  # fmt: skip
    return [
        "# `create` refuses an existing job and `update` takes other flags: re-create it",
        sh("gcloud", "scheduler", "jobs", "delete", job, *SCHEDULER_WHERE, "--quiet")
        + " >/dev/null 2>&1 || true",
        sh(*create),
    ]


def bridge(function: Function) -> list[str]:
    args = ["-m", "infra.deploy.gcp.bridge", "--target", f"${url_variable(function)}", "--id-token"]
    args += ["--health-port", str(BRIDGE_PORT)]
    command = [
        "gcloud", "run", "deploy", bridge_name(function), *WHERE,
        "--source", ".",  # the repository's Dockerfile: shopcore, infra and their dependencies
        "--command", "python", "--args", ",".join(args),
        "--port", str(BRIDGE_PORT), "--no-allow-unauthenticated",
        "--service-account", "$INVOKER",
        # always consuming: one instance, CPU allocated outside requests
        "--min-instances", "1", "--max-instances", "1", "--no-cpu-throttling",
        "--set-env-vars", set_env_vars({"BROKER_URL": "$BROKER_URL"}),
    ]  # fmt: skip
    return [sh(*command)]


def preamble(what: str, project: str | None, region: str, strict: bool) -> list[str]:
    project_value = shlex.quote(project) if project else '"$(gcloud config get-value project)"'
    return [
        "#!/usr/bin/env bash",
        f"# {what}, generated from infra/functions.py by `python -m infra.deploy.gcp`.",
        "# Run it from the repository root.",
        "set -euo pipefail" if strict else "set -uo pipefail",
        f"PROJECT={project_value}",
        f"REGION={shlex.quote(region)}",
        f'INVOKER="{INVOKER}@$PROJECT.iam.gserviceaccount.com"',
    ]


def required_variables() -> list[str]:
    users: dict[str, list[str]] = {}
    for function in FUNCTIONS:
        for name, value in env_vars(function).items():
            if value == f"${name}":
                users.setdefault(name, []).append(function.name)
    return [f': "${{{name}:?needed by {", ".join(who)}}}"' for name, who in users.items()]


def deploy_script(project: str | None = None, region: str = "us-central1") -> str:
    lines = preamble("Deploy the shop to Cloud Run functions", project, region, strict=True)
    lines += ["", "# Each function's secrets, from this shell's environment", *required_variables()]
    lines += ["", "# Bundles: main.py, shopcore/ and the pinned requirements.txt of each function"]
    lines.append(sh("rm", "-rf", BUNDLES))
    lines.append(sh("python", "-m", "infra.deploy.bundle", "--platform", "gcp", "--out", BUNDLES))
    for function in FUNCTIONS:  # gcloud takes a local source as a directory, not a zip
        zipped, unpacked = f"{BUNDLES}/{function.name}.zip", f"{BUNDLES}/{function.name}"
        lines.append(sh("python", "-m", "zipfile", "-e", zipped, unpacked))
    lines += ["", "# The identity Cloud Scheduler and the bridge call the private functions with"]
    account = ["gcloud", "iam", "service-accounts"]
    exists = sh(*account, "describe", "$INVOKER", "--project", "$PROJECT") + " >/dev/null 2>&1"
    create = sh(*account, "create", INVOKER, "--project", "$PROJECT", "--display-name", INVOKER)
    lines.append(f"{exists} || {create}")
    for function in FUNCTIONS:
        lines += ["", f"# {trigger_note(function)}", *deploy_function(function)]
        if function.trigger == "schedule":
            lines += schedule(function)
        elif function.trigger == "queue":
            lines += bridge(function)
    lines += ["", "# The API's addresses (each HTTP function has its own; the route paths follow)"]
    for function in FUNCTIONS:
        if function.trigger == "http":
            describe = ["gcloud", "functions", "describe", function.name, "--gen2", *WHERE]
            lines.append(sh(*describe, "--format", "value(serviceConfig.uri)"))
    return "\n".join(lines) + "\n"


def teardown_script(project: str | None = None, region: str = "us-central1") -> str:
    lines = preamble("Remove the shop from Google Cloud", project, region, strict=False)
    lines += [
        "# every delete is attempted, even after one fails (say, already gone); exit 1 if any did",
        "failed=0",
        "trap 'failed=1' ERR",
        "",
    ]
    for function in FUNCTIONS:
        if function.trigger == "queue":
            delete = ["gcloud", "run", "services", "delete", bridge_name(function), *WHERE]
            lines.append(sh(*delete, "--quiet"))
        if function.trigger == "schedule":
            delete = ["gcloud", "scheduler", "jobs", "delete", job_name(function)]
            lines.append(sh(*delete, *SCHEDULER_WHERE, "--quiet"))
    for function in FUNCTIONS:
        delete = ["gcloud", "functions", "delete", function.name, "--gen2", *WHERE, "--quiet"]
        lines.append(sh(*delete))
    account = ["gcloud", "iam", "service-accounts", "delete", "$INVOKER"]
    lines.append(sh(*account, "--project", "$PROJECT", "--quiet"))
    lines.append('exit "$failed"')
    return "\n".join(lines) + "\n"
