"""`shop`: the one operator command. Each subcommand is an existing module's `main`, with that
module's own options and `--help`:

    shop run                     # the whole system locally (python -m infra.local)
    shop migrate                 # python -m infra.ops.migrate
    shop verify                  # python -m infra.ops.verify
    shop reconcile               # python -m infra.ops.reconcile (exit 1 on any drift)
    shop dead-letters list | replay ID... | replay --all | discard ID...
    shop soak                    # python -m infra.harness.soak
    shop bench                   # python -m benchmarks (needs the [bench] extra, wrk, pgbench)

Installed as a console script ([project.scripts] in pyproject.toml). Everything after the
subcommand's name goes to its module unchanged, and modules are imported only when chosen:
`shop --help` loads none of them.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType

from infra.functions import REPO

PROG = "shop"


@dataclass(frozen=True)
class Command:
    module: str  # its `main(argv, prog=...)` runs the subcommand
    summary: str  # one line in `shop --help`
    needs_checkout: bool = False  # runs the functions from functions/ beside infra/


COMMANDS: dict[str, Command] = {
    "run": Command(
        "infra.local.__main__",
        "run the whole system locally: command API :8080, query API :8081 (Ctrl-C stops)",
        needs_checkout=True,
    ),
    "migrate": Command(
        "infra.ops.migrate", "apply the SQL migrations to both databases, creating them if missing"
    ),
    "verify": Command(
        "infra.ops.verify",
        "check a running deployment end to end: health, a product, an order, its analytics",
    ),
    "reconcile": Command(
        "infra.ops.reconcile",
        "compare the read models with the write database; exit 1 on any difference",
    ),
    "dead-letters": Command(
        "infra.ops.dead_letters",
        "list | replay ID... | replay --all | discard ID...: the parked messages",
    ),
    "soak": Command(
        "infra.harness.soak",
        "minutes of orders under random faults in a sandbox; exit 1 on any drift",
        needs_checkout=True,
    ),
    "bench": Command(
        "benchmarks.__main__",
        "the benchmark suite in a sandbox (needs the [bench] extra, wrk and pgbench)",
        needs_checkout=True,
    ),
}

HELP = ("-h", "--help")


def parser() -> argparse.ArgumentParser:
    """For `shop --help` and for refusing an unknown subcommand; a known one never reaches it."""
    top = argparse.ArgumentParser(
        prog=PROG,
        description="Operate the shop analytics system. `shop COMMAND --help` for a command's "
        "options.",
    )
    commands = top.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in COMMANDS.items():
        commands.add_parser(name, help=command.summary, add_help=False)
    return top


def load(module: str) -> ModuleType:
    return importlib.import_module(module)


def missing_checkout(command: Command) -> list[str]:
    functions = REPO / "functions"
    if command.needs_checkout and not functions.is_dir():
        return [
            f"the functions' sources ({functions} not found): run it from a source checkout "
            "installed with `pip install -e .` (make install), or in the Docker image"
        ]
    return []


def missing_for_bench() -> tuple[list[str], list[str]]:
    """What `shop bench` lacks: (Python packages, everything else), each with its remedy."""
    modules = [m for m in ("benchmarks", "psutil", "matplotlib") if not _importable(m)]
    python = []
    if "benchmarks" in modules:
        python.append("the benchmark suite (benchmarks/): run it from a source checkout")
        modules.remove("benchmarks")
    if modules:
        python.append(
            f"Python packages {', '.join(modules)}: pip install -e '.[bench]' in the checkout "
            "(`make bench` installs them)"
        )
    wrk = os.environ.get("BENCH_WRK", "wrk")
    tools = {wrk: "apt-get install wrk (`make bench` installs it)"}
    tools["pgbench"] = "apt-get install postgresql-client"
    other = [f"{tool}: {remedy}" for tool, remedy in tools.items() if shutil.which(tool) is None]
    return python, other


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False


def _refuse(name: str, missing: Sequence[str]) -> int:
    print(f"{PROG} {name}: cannot run, missing:", file=sys.stderr)
    for line in missing:
        print(f"  - {line}", file=sys.stderr)
    return 2


def dispatch(name: str, argv: list[str]) -> int:
    command = COMMANDS[name]
    asks_help = any(arg in HELP for arg in argv)
    missing = missing_checkout(command)
    if name == "bench":
        python, other = missing_for_bench()
        if python and asks_help:  # the suite's own help needs its packages: say what is missing
            print(f"usage: {PROG} bench [options]  ({command.summary})")
            print("its options are listed once these are installed:")
            print("\n".join(f"  - {line}" for line in python))
            return 0
        missing += python + other
    if missing and not asks_help:
        return _refuse(name, missing)
    main: Callable[..., int | None] = load(command.module).main
    try:
        return int(main(argv, prog=f"{PROG} {name}") or 0)
    except KeyboardInterrupt:  # what the command had in hand was cleaned up on the way out
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in COMMANDS:
        return dispatch(args[0], args[1:])
    # `shop`, `shop --help`, an unknown command: the help (exit 0) or the refusal (exit 2)
    namespace, rest = parser().parse_known_args(args)
    return dispatch(namespace.command, rest)


if __name__ == "__main__":
    sys.exit(main())
