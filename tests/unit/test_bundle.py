"""infra.deploy.bundle without the network: the committed lock files pin what each function
requires, and a bundle holds exactly its entry points, shopcore and the pins
(tests/e2e/test_bundles.py builds real ones with real wheels and runs them)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from infra.deploy import bundle
from infra.functions import FUNCTIONS, REPO, Function


def lock_pins(function: Function) -> dict[str, tuple[str, bool]]:
    """name -> (version, aws only) of every line of the function's requirements.lock."""
    pins = {}
    for line in bundle.lock_path(function).read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        requirement, _, comment = line.partition("  #")
        name, version = requirement.split("==")
        assert name == canonicalize_name(name) and version, line
        pins[name] = (version, comment.strip() == "aws only")
    return pins


def shopcore_files() -> set[str]:
    root = REPO / "shopcore"
    return {
        f"shopcore/{p.relative_to(root).as_posix()}"
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.name)
def test_lock_pins_a_version_allowed_by_every_requirement(function: Function) -> None:
    pins = lock_pins(function)
    for line in bundle.requirements(function) + bundle.aws_extra(function):
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in {bundle.lock_path(function)}: run --lock"
        version, _aws_only = pins[name]
        assert requirement.specifier.contains(version), f"{name}=={version} vs {requirement}"


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.name)
def test_only_the_lambda_adapter_of_http_functions_is_aws_only(function: Function) -> None:
    aws_only = {name for name, (_version, only) in lock_pins(function).items() if only}
    extra = {canonicalize_name(Requirement(r).name) for r in bundle.aws_extra(function)}
    assert aws_only == extra
    assert bool(extra) == (function.trigger == "http")


@pytest.fixture(scope="module")
def gcp_bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("gcp")
    return {path.stem: path for path in bundle.build("gcp", out)}


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.name)
def test_gcp_bundle_is_main_shopcore_and_pinned_requirements(
    function: Function, gcp_bundles: dict[str, Path]
) -> None:
    with zipfile.ZipFile(gcp_bundles[function.name]) as zipped:
        assert set(zipped.namelist()) == {"main.py", "requirements.txt"} | shopcore_files()
        assert zipped.read("main.py") == function.source.read_bytes()
        requirements = zipped.read("requirements.txt").decode().splitlines()
    listed = [line for line in requirements if not line.startswith("#")]
    wanted = [f"{n}=={v}" for n, (v, aws_only) in lock_pins(function).items() if not aws_only]
    assert listed == wanted


def test_bundles_are_reproducible(gcp_bundles: dict[str, Path], tmp_path: Path) -> None:
    again = {path.stem: path.read_bytes() for path in bundle.build("gcp", tmp_path)}
    assert again == {name: path.read_bytes() for name, path in gcp_bundles.items()}


def test_aws_layout_puts_the_site_at_the_root_without_bytecode_or_scripts(tmp_path: Path):
    site = tmp_path / "site"
    for name in ("pkg/__init__.py", "pkg/__pycache__/x.cpython-311.pyc", "pkg/mod.pyc",
                 "pkg-1.0.dist-info/METADATA", "bin/flask"):  # fmt: skip
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text("")
    function = FUNCTIONS[0]
    entry_points = {n for n in bundle.ENTRY_POINTS if (function.source.parent / n).is_file()}
    names = set(bundle.contents(function, "aws", site))
    site_files = {"pkg/__init__.py", "pkg-1.0.dist-info/METADATA"}
    assert names == entry_points | site_files | shopcore_files()
