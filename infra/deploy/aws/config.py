"""What one deployment targets, and the AWS name of every resource it owns.

Names derive from the project name and infra/functions.py only, so a second deploy finds what
the first created, and teardown finds it again by the project tag.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from infra.functions import REPO, Function

MANAGED_BY = "infra.deploy.aws"


@dataclass(frozen=True)
class DeployConfig:
    region: str
    project: str = "shop"
    bundle_dir: Path = REPO / "dist"
    # The functions reach Postgres and RabbitMQ (Amazon MQ) through these, when they are private.
    subnet_ids: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    # The projector's trigger: the broker, the secret holding its username/password, the vhost.
    mq_broker_arn: str = ""
    mq_secret_arn: str = ""
    mq_vhost: str = "/"
    memory_mb: int = 512
    # extra variables for every function, e.g. COMMAND_API_KEYS or LOG_LEVEL
    extra_env: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    @property
    def tags(self) -> dict[str, str]:
        """On everything created, so teardown removes exactly what a deploy made."""
        return {"project": self.project, "managed-by": MANAGED_BY}

    @property
    def iam_path(self) -> str:
        return f"/{self.project}/"

    @property
    def has_broker(self) -> bool:
        return bool(self.mq_broker_arn)

    def function_name(self, function: Function) -> str:
        return f"{self.project}-{function.name.replace('_', '-')}"

    def role_name(self, function: Function) -> str:
        # one role per function: only the projector may read the broker's secret
        return self.function_name(function)

    @property
    def scheduler_role_name(self) -> str:
        return f"{self.project}-scheduler"

    def api_name(self, port: str) -> str:
        return f"{self.project}-{port}-api"

    @property
    def schedule_group(self) -> str:
        # schedules cannot carry tags; their group can, and deleting it deletes them
        return self.project

    def schedule_name(self, function: Function) -> str:
        return self.function_name(function)

    def bundle(self, function: Function) -> Path:
        return self.bundle_dir / f"{function.name}.zip"
