"""`shop`, the operator command (infra/ops/cli.py): the installed console script answers
`--help` for itself and every subcommand from any directory, each subcommand hands its
arguments to the right module's `main`, and what an install needs beyond the code (the
migrations, the benchmark scripts) is packaged. Nothing here connects to a service."""

from __future__ import annotations

import fnmatch
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from infra.functions import REPO
from infra.ops import cli

SHOP = Path(sys.executable).with_name("shop")
SUBCOMMANDS = ["run", "migrate", "verify", "reconcile", "dead-letters", "soak", "bench"]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def shop(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert SHOP.exists(), f"{SHOP} is not installed: run `make install`"
    return subprocess.run([str(SHOP), *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_the_console_script_is_declared() -> None:
    assert PYPROJECT["project"]["scripts"] == {"shop": "infra.ops.cli:main"}


def test_shop_help_lists_every_subcommand(tmp_path: Path) -> None:
    # from outside the checkout: the install, not the working directory, finds the code
    done = shop("--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: shop")
    listed = re.findall(r"^    (\S+)", done.stdout, re.MULTILINE)
    assert listed == SUBCOMMANDS
    assert list(cli.COMMANDS) == SUBCOMMANDS


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_every_subcommand_answers_help(name: str, tmp_path: Path) -> None:
    done = shop(name, "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: shop {name}"), done.stdout
    assert "Traceback" not in done.stderr


def test_the_subcommands_options_are_the_modules_own(tmp_path: Path) -> None:
    assert "--command-url" in shop("verify", "--help", cwd=tmp_path).stdout
    assert "--set-role-passwords" in shop("migrate", "--help", cwd=tmp_path).stdout
    assert "--fault-every" in shop("soak", "--help", cwd=tmp_path).stdout
    assert "replay" in shop("dead-letters", "--help", cwd=tmp_path).stdout


def test_no_subcommand_or_an_unknown_one_is_refused_with_the_list(tmp_path: Path) -> None:
    for args in ([], ["rebuild-everything"]):
        done = shop(*args, cwd=tmp_path)
        assert done.returncode == 2
        assert done.stderr.startswith("usage: shop")
    assert "choose from 'run', 'migrate'" in shop("nope", cwd=tmp_path).stderr


def test_a_subcommands_own_refusal_is_its_exit_status(tmp_path: Path) -> None:
    done = shop("dead-letters", "replay", cwd=tmp_path)  # neither ids nor --all
    assert done.returncode == 2
    assert "name the ids to replay, or --all" in done.stderr


class FakeModules:
    """cli.load's stand-in: records which module's main ran, with what."""

    def __init__(self, result: int | None = 0) -> None:
        self.result = result
        self.calls: list[tuple[str, list[str], str]] = []

    def __call__(self, module: str) -> Any:
        def main(argv: list[str], prog: str) -> int | None:
            self.calls.append((module, argv, prog))
            return self.result

        return SimpleNamespace(main=main)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeModules:
    modules = FakeModules()
    monkeypatch.setattr(cli, "load", modules)
    monkeypatch.setattr(cli, "missing_for_bench", lambda: ([], []))
    return modules


@pytest.mark.parametrize(
    ("name", "module"),
    [
        ("run", "infra.local.__main__"),
        ("migrate", "infra.ops.migrate"),
        ("verify", "infra.ops.verify"),
        ("reconcile", "infra.ops.reconcile"),
        ("dead-letters", "infra.ops.dead_letters"),
        ("soak", "infra.harness.soak"),
        ("bench", "benchmarks.__main__"),
    ],
)
def test_each_subcommand_calls_its_modules_main_with_the_rest(
    fake: FakeModules, name: str, module: str
) -> None:
    assert cli.main([name, "--some-option", "x", "--", "-y"]) == 0
    assert fake.calls == [(module, ["--some-option", "x", "--", "-y"], f"shop {name}")]


@pytest.mark.parametrize(("returned", "status"), [(None, 0), (0, 0), (1, 1)])
def test_the_modules_result_is_the_exit_status(
    fake: FakeModules, returned: int | None, status: int
) -> None:
    fake.result = returned
    assert cli.main(["reconcile"]) == status


def test_the_dispatched_modules_take_a_prog() -> None:
    """What the fake stands for: every module's main accepts (argv, prog=...)."""
    import inspect

    for command in cli.COMMANDS.values():
        if command.module == "benchmarks.__main__" and cli.missing_for_bench()[0]:
            continue  # its imports need the [bench] extra
        parameters = inspect.signature(cli.load(command.module).main).parameters
        assert list(parameters)[:2] == ["argv", "prog"], command.module


def test_bench_says_what_is_missing_instead_of_failing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "load", FakeModules())
    monkeypatch.setattr(
        cli, "missing_for_bench", lambda: (["Python packages psutil: pip ..."], ["wrk: apt ..."])
    )
    assert cli.main(["bench", "--quick"]) == 2
    err = capsys.readouterr().err
    assert "shop bench: cannot run, missing:" in err
    assert "  - Python packages psutil" in err and "  - wrk: apt" in err
    assert cli.load.calls == []  # type: ignore[attr-defined]
    # its help still answers, saying what its options need
    assert cli.main(["bench", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: shop bench") and "psutil" in out


def test_bench_requirements_name_their_remedy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCH_WRK", "/nonexistent/wrk")
    monkeypatch.setattr(cli, "_importable", lambda module: module != "matplotlib")
    python, other = cli.missing_for_bench()
    assert python == [
        "Python packages matplotlib: pip install -e '.[bench]' in the checkout "
        "(`make bench` installs them)"
    ]
    assert other[0].startswith("/nonexistent/wrk: apt-get install wrk")


def test_the_commands_that_run_the_functions_need_their_sources(
    fake: FakeModules, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(cli, "REPO", tmp_path)  # an install without functions/ beside infra/
    assert cli.main(["run"]) == 2
    assert cli.main(["migrate"]) == 0
    assert [call[0] for call in fake.calls] == ["infra.ops.migrate"]


# What an install needs beyond the Python code is package data (pyproject.toml)


def _packaged(package: str, relative: str) -> bool:
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"].get(package, [])
    return any(fnmatch.fnmatch(relative, pattern) for pattern in patterns)


@pytest.mark.parametrize("package", ["infra", "benchmarks"])
def test_every_data_file_the_tools_read_is_package_data(package: str) -> None:
    root = REPO / package
    data = [
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.is_file()
        and path.suffix not in (".py", ".pyc", ".md", ".sh")
        and "__pycache__" not in path.parts
    ]
    assert data, package
    assert [f for f in data if not _packaged(package, f)] == []


def test_the_migrations_are_package_data_and_found_beside_the_module() -> None:
    from infra.ops import migrate

    assert migrate.MIGRATIONS == REPO / "infra" / "migrations"
    for side in ("write", "read"):
        files = sorted((migrate.MIGRATIONS / side).glob("*.sql"))
        assert files
        assert all(_packaged("infra", f"migrations/{side}/{f.name}") for f in files)


def test_shop_is_packaged_with_the_code_it_runs() -> None:
    find = PYPROJECT["tool"]["setuptools"]["packages"]["find"]
    assert {"shopcore*", "infra*", "benchmarks*"} <= set(find["include"])


def test_the_docker_image_runs_shop_from_app() -> None:
    """No Docker here: the image's `shop` is pip's console script for infra.ops.cli, which
    imports infra from /app (PYTHONPATH), where functions/ and the migrations are too."""
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"^\s*PYTHONPATH=/app\b", dockerfile, re.MULTILINE)
    assert "WORKDIR /app" in dockerfile
    lines = dockerfile.splitlines()
    install = lines.index("RUN pip install . && rm -rf build ./*.egg-info")
    assert "COPY pyproject.toml ./" in lines[:install]
    for folder in ("infra", "functions"):
        assert f"COPY {folder}/ {folder}/" in lines
    assert lines[-1] == 'CMD ["shop", "run"]'
