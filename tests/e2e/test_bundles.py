"""Each function's bundle runs from the bundle alone.

`python -m infra.deploy.bundle --platform native` builds the five zips with real wheels from the
lock files (for this machine's interpreter, so they run here; the aws build differs only in
the platform tag pip selects). Each zip is unpacked next to a fresh virtual environment with
nothing installed, and a Python isolated from the repository (no site-packages, no user site,
PYTHONPATH = the bundle) imports the entry points and invokes them: the HTTP functions through
functions-framework's app (GET /health, GET /openapi.json), the event functions by building
their app (the target must exist), and every Lambda handler by importing it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from infra.functions import FUNCTIONS, REPO, Function

pytestmark = pytest.mark.slow  # about 30 s: pip installs three sets of wheels

# Runs inside the bundle's interpreter: prints what it found as JSON.
PROBE = """
import json, sys
from pathlib import Path

bundle = Path(sys.argv[1]).resolve()
target, signature = sys.argv[2:4]
found = {"path": sys.path}
for module in ("infra", "tests"):
    try:
        __import__(module)
        found[module] = "importable"
    except ModuleNotFoundError:
        found[module] = None

import functions_framework, shopcore
found["homes"] = [m.__file__ for m in (functions_framework, shopcore)]
app = functions_framework.create_app(target, str(bundle / "main.py"), signature)
client = app.test_client()
if signature == "http":
    health = client.get("/health")
    document = client.get("/openapi.json")
    found["health"] = health.status_code
    found["openapi"] = [document.status_code, document.get_json().get("openapi")]
else:
    found["routes"] = sorted({rule.rule for rule in app.url_map.iter_rules()})
print(json.dumps(found))
"""

LAMBDA_PROBE = """
import json
import lambda_handler
print(json.dumps({"handler": callable(getattr(lambda_handler, "handler", None))}))
"""


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("bundles")
    argv = [sys.executable, "-m", "infra.deploy.bundle", "--platform", "native"]
    argv += ["--out", str(work / "dist"), "--cache-dir", str(work / "pip-cache")]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return {f.name: work / "dist" / f"{f.name}.zip" for f in FUNCTIONS}


@pytest.fixture(scope="module")
def clean_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment with nothing installed, not even pip."""
    home = tmp_path_factory.mktemp("venv")
    venv.create(home, with_pip=False)
    return home / "bin" / "python"


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.name)
def test_bundle_holds_the_entry_points_core_and_dependencies_only(
    function: Function, bundles: dict[str, Path]
) -> None:
    with zipfile.ZipFile(bundles[function.name]) as bundle:
        names = bundle.namelist()
    tops = {name.split("/")[0] for name in names}
    assert "main.py" in names
    has_handler = (REPO / "functions" / function.name / "lambda_handler.py").is_file()
    assert ("lambda_handler.py" in names) == has_handler
    assert {"shopcore", "functions_framework", "psycopg", "flask"} <= tops
    assert "shopcore/openapi/command.json" in names
    assert not tops & {"tests", "infra", "functions", "bin", "benchmarks"}
    assert not [n for n in names if n.endswith((".pyc", ".pyo")) or "__pycache__" in n]
    assert ("apig_wsgi" in tops) == (function.trigger == "http")


def run_in_bundle(python: Path, bundle: Path, code: str, *args: str) -> dict:
    """Run `code` with only the bundle importable; returns the JSON it printed last."""
    elsewhere = bundle.parent / f"{bundle.name}-cwd"
    elsewhere.mkdir(exist_ok=True)
    done = subprocess.run(
        # -s -S: no user site, no site-packages; -P: not the working directory either
        [str(python), "-s", "-S", "-P", "-c", code, str(bundle), *args],
        cwd=elsewhere,
        env={"PYTHONPATH": str(bundle), "LOG_LEVEL": "WARNING", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def unpack(zipped: Path, into: Path) -> Path:
    with zipfile.ZipFile(zipped) as bundle:
        bundle.extractall(into)
    return into


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.name)
def test_entry_point_imports_and_answers_from_the_bundle_alone(
    function: Function, bundles: dict[str, Path], clean_python: Path, tmp_path: Path
) -> None:
    unpacked = unpack(bundles[function.name], tmp_path / function.name)
    found = run_in_bundle(clean_python, unpacked, PROBE, function.target, function.signature_type)

    assert found["infra"] is None and found["tests"] is None
    assert all(Path(home).is_relative_to(unpacked) for home in found["homes"])
    assert not [p for p in found["path"] if p.startswith(str(REPO))]
    if function.signature_type == "http":
        assert found["health"] == 200
        status, version = found["openapi"]
        assert status == 200 and version.startswith("3.")
    else:
        assert "/" in found["routes"]


@pytest.mark.parametrize(
    "function",
    [f for f in FUNCTIONS if (f.source.parent / "lambda_handler.py").is_file()],
    ids=lambda f: f.name,
)
def test_lambda_handler_imports_from_the_bundle_alone(
    function: Function, bundles: dict[str, Path], clean_python: Path, tmp_path: Path
) -> None:
    unpacked = unpack(bundles[function.name], tmp_path / function.name)
    assert run_in_bundle(clean_python, unpacked, LAMBDA_PROBE) == {"handler": True}
