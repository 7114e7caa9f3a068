"""`python -m infra.deploy.gcp deploy|teardown [--dry-run] [--project P] [--region R]`.

--dry-run prints the bash script; without it the script runs (it needs gcloud, logged in, and
for deploy each function's URL variables in the environment: see docs/deploy-gcp.md).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from infra.deploy.gcp.deploy import deploy_script, teardown_script
from infra.functions import REPO


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.deploy.gcp", description=__doc__)
    parser.add_argument("action", choices=["deploy", "teardown"])
    parser.add_argument("--dry-run", action="store_true", help="print the script, run nothing")
    parser.add_argument("--project", help="default: gcloud's configured project")
    parser.add_argument("--region", default="us-central1")
    args = parser.parse_args(argv)
    build = deploy_script if args.action == "deploy" else teardown_script
    script = build(args.project, args.region)
    if args.dry_run:
        print(script, end="")
        return 0
    if shutil.which("gcloud") is None:
        raise SystemExit("gcloud not found: install the Google Cloud CLI, or use --dry-run")
    # the script's `python` is this interpreter (the project's virtual environment)
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(
        ["bash", "-c", script], cwd=REPO, env={**os.environ, "PATH": path}
    ).returncode


if __name__ == "__main__":
    sys.exit(main())
