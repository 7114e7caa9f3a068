"""The deployment files agree with the code: docker-compose.yml (generated from
infra.functions.FUNCTIONS by infra.local.compose), .env.example, each function's requirements.txt.
Nothing runs; the files are only read."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from psycopg.conninfo import conninfo_to_dict

from infra.functions import FUNCTIONS, REPO, Function
from infra.local import compose as compose_file
from infra.local.__main__ import FUNCTION_ROLES
from infra.ops.migrate import role_passwords

COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
# variable -> (role, the CONTRACT URL whose database it uses), as the local run connects
ROLE_OF = {variable: (role, base) for variable, role, base in FUNCTION_ROLES}
SOURCE_DIRS = ("shopcore", "infra", "functions", "tests")

# CONTRACT.md, "Configuration": these names and local defaults are promised to clients.
CONTRACT_VARIABLES = {
    "DATABASE_URL": "postgresql://localhost:5432/write_db",
    "READ_DATABASE_URL": "postgresql://localhost:5432/read_db",
    "BROKER_URL": "amqp://guest:guest@localhost:5672/",
    "COMMAND_SERVICE_PORT": "8080",
    "QUERY_SERVICE_PORT": "8081",
}

# `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?err}` and bare `$VAR`; `$$` escapes.
INTERPOLATION = re.compile(
    r"(?<!\$)\$(?:\{(?P<braced>\w+)(?P<op>:?[-?+])?(?P<arg>[^}]*)\}|(?P<bare>\w+))"
)


@cache
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@cache
def env_example() -> dict[str, str]:
    """NAME -> value of every assignment in .env.example; each must follow a comment line."""
    variables: dict[str, str] = {}
    previous = ""
    for number, line in enumerate(ENV_EXAMPLE.read_text().splitlines(), 1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            name, sep, value = stripped.partition("=")
            assert sep and re.fullmatch(r"[A-Z][A-Z0-9_]*", name), f"line {number}: {line!r}"
            assert name not in variables, f".env.example sets {name} twice"
            assert previous.startswith("#"), f".env.example: {name} has no comment above it"
            variables[name] = value
        previous = stripped
    return variables


def strings(node: object) -> list[str]:
    if isinstance(node, dict):
        return [s for value in node.values() for s in strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in strings(value)]
    return [node] if isinstance(node, str) else []


def interpolations() -> list[tuple[str, str | None]]:
    """(name, default or None) for every variable docker compose interpolates: in values, not in
    comments or keys."""
    found = []
    for text in strings(compose()):
        for match in INTERPOLATION.finditer(text):
            name = match["braced"] or match["bare"]
            default = match["arg"] if match["op"] in (":-", "-") else None
            found.append((name, default))
    return found


@cache
def python_sources() -> dict[Path, str]:
    this_file = Path(__file__).resolve()
    return {
        path: path.read_text()
        for folder in SOURCE_DIRS
        for path in sorted((REPO / folder).rglob("*.py"))
        if path.resolve() != this_file
    }


def is_read_by_code(name: str) -> bool:
    """The name appears quoted in the source, or is built as f"{prefix}_SUFFIX" from a quoted
    prefix (infra/local/__main__.py builds COMMAND_WORKERS that way)."""
    text = "\n".join(python_sources().values())
    if re.search(rf"""["']{name}["']""", text):
        return True
    for cut in (m.start() for m in re.finditer("_", name)):
        prefix, suffix = name[:cut], name[cut:]
        if re.search(rf"""["']{prefix}["']""", text) and re.search(rf"""\}}{suffix}["']""", text):
            return True
    return False


def _constant(node: ast.expr) -> object:
    allowed = (ast.Constant, ast.BinOp, ast.UnaryOp, ast.operator, ast.unaryop)
    if not all(isinstance(n, allowed) for n in ast.walk(node)):
        raise ValueError("not a constant expression")
    return eval(compile(ast.Expression(node), "<default>", "eval"), {"__builtins__": {}})


def code_defaults(name: str) -> set[str]:
    """Defaults the code falls back to for `name`: `os.environ.get("NAME", default)` and
    helpers like config's `_int("NAME", default)` (not a test's `setenv`/`setdefault`)."""
    defaults = set()
    for source in python_sources().values():
        for node in ast.walk(ast.parse(source)):
            if not (isinstance(node, ast.Call) and len(node.args) == 2):
                continue
            func, first = node.func, node.args[0]
            is_environ_get = (
                isinstance(func, ast.Attribute)
                and func.attr == "get"
                and ast.unparse(func.value).endswith("environ")
            )
            if not (is_environ_get or isinstance(func, ast.Name)):
                continue
            if not (isinstance(first, ast.Constant) and first.value == name):
                continue
            try:
                defaults.add(str(_constant(node.args[1])))
            except ValueError:
                continue
    return defaults


def same_value(a: str, b: str) -> bool:
    try:
        return float(a) == float(b)
    except ValueError:
        return a == b


def services() -> dict[str, dict]:
    return compose()["services"]


def app_services() -> dict[str, dict]:
    """Services running our image (everything but the backing services)."""
    ours = services()["migrate"]["image"]
    return {
        name: svc
        for name, svc in services().items()
        if svc.get("image") == ours and name != "migrate"
    }


def command(service: dict) -> list[str]:
    value = service["command"]
    return value.split() if isinstance(value, str) else [str(part) for part in value]


def test_compose_file_is_the_one_generated_from_the_function_definitions() -> None:
    assert COMPOSE.read_text() == compose_file.render(), (
        "docker-compose.yml differs from what infra/functions.py gives: "
        "run `python -m infra.local.compose` (and edit infra/local/compose.py, not the YAML)"
    )


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.name)
def test_every_function_service_has_the_platform_timeout(function: Function) -> None:
    env = services()[function.name]["environment"]
    assert env["CLOUD_RUN_TIMEOUT_SECONDS"] == str(function.timeout_seconds)


def test_every_service_is_a_function_the_backing_services_or_their_emulators() -> None:
    fixed = {"postgres", "rabbitmq", "migrate", "relay_scheduler", "projector_trigger"}
    gateways = {f"{f.port}_gateway" for f in FUNCTIONS if f.port}
    assert set(services()) == fixed | gateways | {f.name for f in FUNCTIONS}


def test_compose_file_parses_into_services() -> None:
    assert isinstance(compose(), dict)
    assert isinstance(services(), dict) and services()


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.name)
def test_every_function_has_a_service_serving_it(function: Function) -> None:
    assert function.name in services(), f"no compose service named {function.name}"
    argv = command(services()[function.name])
    assert argv[0] == "functions-framework"
    assert argv[argv.index("--target") + 1] == function.target
    assert argv[argv.index("--source") + 1] == f"functions/{function.name}/main.py"
    signature = argv[argv.index("--signature-type") + 1] if "--signature-type" in argv else "http"
    assert signature == function.signature_type


def test_every_compose_variable_is_in_env_example_with_the_same_default() -> None:
    referenced = interpolations()
    assert referenced, "docker-compose.yml interpolates no variables"
    for name, default in referenced:
        assert name in env_example(), f"docker-compose.yml uses ${name}; add it to .env.example"
        if default is not None:
            assert same_value(default, env_example()[name]), (
                f"docker-compose.yml defaults {name} to {default!r}, "
                f".env.example to {env_example()[name]!r}"
            )


@pytest.mark.parametrize("name", sorted(env_example()))
def test_env_example_variable_is_read_by_the_code_with_that_default(name: str) -> None:
    assert is_read_by_code(name), f".env.example lists {name}, but no code reads it"
    defaults = code_defaults(name)
    for default in defaults:
        assert same_value(default, env_example()[name]), (
            f"the code defaults {name} to {default!r}, .env.example to {env_example()[name]!r}"
        )


def test_every_variable_the_code_reads_is_in_env_example() -> None:
    pattern = re.compile(r"""os\.environ\.get\(\s*["'](\w+)["']|_(?:int|float)\(\s*["'](\w+)["']""")
    read = {a or b for text in python_sources().values() for a, b in pattern.findall(text)}
    assert "DATABASE_URL" in read  # the pattern still matches how config.py reads settings
    assert read <= set(env_example()), f"missing from .env.example: {read - set(env_example())}"


@pytest.mark.parametrize(("name", "default"), sorted(CONTRACT_VARIABLES.items()))
def test_contract_variables_have_contract_defaults(name: str, default: str) -> None:
    assert env_example().get(name) == default


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.name)
def test_function_folder_has_main_and_requirements(function: Function) -> None:
    folder = REPO / "functions" / function.name
    assert function.source == folder / "main.py"
    assert (folder / "main.py").is_file()
    assert (folder / "requirements.txt").is_file()


def requirements(function: Function) -> dict[str, Requirement]:
    lines = (REPO / "functions" / function.name / "requirements.txt").read_text().splitlines()
    parsed = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    return {canonicalize_name(r.name): r for r in parsed}


def project_dependencies() -> dict[str, Requirement]:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    parsed = [Requirement(dep) for dep in pyproject["project"]["dependencies"]]
    return {canonicalize_name(r.name): r for r in parsed}


def imported_distributions(source: Path) -> set[str]:
    """Third-party distributions `source` imports, following imports into shopcore."""
    owners = metadata.packages_distributions()
    seen: set[Path] = set()
    found: set[str] = set()
    pending = [source]
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [(alias.name, ()) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules = [(node.module, tuple(alias.name for alias in node.names))]
            else:
                continue
            for module, names in modules:
                top = module.split(".")[0]
                if top == "shopcore":
                    base = REPO.joinpath(*module.split("."))
                    candidates = [base.with_suffix(".py"), base / "__init__.py"]
                    candidates += [base / f"{name}.py" for name in names]
                    pending += [c for c in candidates if c.is_file()]
                elif top != "__future__" and top not in sys.stdlib_module_names:
                    assert top in owners, f"{path.name} imports {top}, which nothing installs"
                    found |= {canonicalize_name(dist) for dist in owners[top]}
    return found


def provided_by(listed: dict[str, Requirement]) -> set[str]:
    """The listed distributions and their own direct dependencies (installed with them)."""
    provided = set(listed)
    for name in listed:
        for dependency in metadata.requires(name) or []:
            requirement = Requirement(dependency)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                provided.add(canonicalize_name(requirement.name))
    return provided


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.name)
def test_requirements_cover_what_the_function_imports(function: Function) -> None:
    listed = requirements(function)
    assert "functions-framework" in listed
    missing = imported_distributions(function.source) - provided_by(listed)
    assert not missing, f"functions/{function.name}/requirements.txt lacks {sorted(missing)}"


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.name)
def test_requirements_use_the_project_bounds(function: Function) -> None:
    project = project_dependencies()
    for name, requirement in requirements(function).items():
        if name in project:
            assert requirement.specifier == project[name].specifier, name
            assert requirement.extras == project[name].extras, name


@pytest.mark.parametrize("name", ["postgres", "rabbitmq"])
def test_backing_services_have_healthchecks(name: str) -> None:
    probe = {"postgres": "pg_isready", "rabbitmq": "rabbitmq-diagnostics"}[name]
    healthcheck = services()[name].get("healthcheck") or {}
    assert probe in healthcheck.get("test", [])


def test_app_services_wait_for_backing_services_and_migrations() -> None:
    assert set(app_services()) >= {f.name for f in FUNCTIONS}
    wanted = {
        "postgres": "service_healthy",
        "rabbitmq": "service_healthy",
        "migrate": "service_completed_successfully",
    }
    for name, service in app_services().items():
        conditions = {dep: spec["condition"] for dep, spec in service["depends_on"].items()}
        assert conditions == wanted, name
        assert "@rabbitmq:5672/" in service["environment"]["BROKER_URL"], name


def functions_run_by(service: str) -> list[Function]:
    """The functions an app service runs: its own, a gateway's port's, a trigger's."""
    trigger = {"relay_scheduler": "schedule", "projector_trigger": "queue"}.get(service)
    return [
        f
        for f in FUNCTIONS
        if service in (f.name, f"{f.port}_gateway") or (trigger and f.trigger == trigger)
    ]


def database_urls(env: dict) -> dict[str, dict[str, str]]:
    return {k: conninfo_to_dict(v) for k, v in env.items() if k.endswith("DATABASE_URL")}


@pytest.mark.parametrize("name", sorted(app_services()))
def test_app_services_connect_only_as_their_functions_roles(name: str) -> None:
    """Least privilege: no superuser URL, only the URL variables of the functions the service
    runs, each on the compose Postgres as that function's role, in the right database."""
    functions = functions_run_by(name)
    assert functions, name
    urls = database_urls(app_services()[name]["environment"])
    assert set(urls) == {v for f in functions for v in f.database_urls}
    databases = {"database_url": "write_db", "read_database_url": "read_db"}
    for function in functions:
        for variable in function.database_urls:
            role, base = ROLE_OF[variable]
            params = urls[variable]
            assert params["user"] == role == function.role, variable
            assert params["password"], variable
            assert (params["host"], params["port"]) == ("postgres", "5432"), variable
            assert params["dbname"] == databases[base], variable


def test_the_migration_gives_the_roles_the_passwords_the_services_use() -> None:
    migrate = services()["migrate"]
    assert command(migrate) == ["shop", "migrate", "--set-role-passwords"]
    env = migrate["environment"]
    assert conninfo_to_dict(env["DATABASE_URL"])["user"] == "postgres"
    assert conninfo_to_dict(env["READ_DATABASE_URL"])["dbname"] == "read_db"
    for name, service in app_services().items():
        for variable, url in service["environment"].items():
            if variable.endswith("_DATABASE_URL"):
                assert env[variable] == url, (name, variable)
    passwords = role_passwords(env)
    assert set(passwords) == {f.role for f in FUNCTIONS}


def test_http_services_check_health() -> None:
    http = [f.name for f in FUNCTIONS if f.signature_type == "http"]
    for name in [*http, "command_gateway", "query_gateway"]:
        probe = " ".join(services()[name]["healthcheck"]["test"])
        assert "/health" in probe, name


@pytest.mark.parametrize(
    ("service", "variable"),
    [("command_gateway", "COMMAND_SERVICE_PORT"), ("query_gateway", "QUERY_SERVICE_PORT")],
)
def test_gateways_publish_the_contract_ports(service: str, variable: str) -> None:
    default = CONTRACT_VARIABLES[variable]
    port = f"${{{variable}:-{default}}}"
    assert f"{port}:{port}" in services()[service]["ports"]
    argv = command(services()[service])
    assert argv[argv.index("--host") + 1] == "0.0.0.0"
    assert argv[argv.index("--port") + 1] == port
