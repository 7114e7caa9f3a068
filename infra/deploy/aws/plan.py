"""The plan: every resource a deploy or teardown looked at, and what it does (or would do).

Each step is recorded before it is applied, and `Plan.add` answers whether to apply it, so
`--dry-run` runs the very same code path and simply never writes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

CREATE, UPDATE, UNCHANGED, DELETE, SKIP = "create", "update", "unchanged", "delete", "skip"
WRITES = {CREATE, UPDATE, DELETE}


@dataclass(frozen=True)
class Step:
    kind: str  # "lambda", "iam-role", "route", ...
    name: str
    action: str  # one of CREATE, UPDATE, UNCHANGED, DELETE, SKIP
    detail: str = ""


@dataclass
class Plan:
    dry_run: bool = False
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, kind: str, name: str, action: str, detail: str = "") -> bool:
        """Record a step; True when the caller should now make that change."""
        self.steps.append(Step(kind, name, action, detail))
        return action in WRITES and not self.dry_run

    def note(self, text: str) -> None:
        """Something the operator should know that is not a resource (a default, a skip)."""
        if text not in self.notes:
            self.notes.append(text)

    def of(self, kind: str) -> list[Step]:
        return [s for s in self.steps if s.kind == kind]

    @property
    def changes(self) -> list[Step]:
        return [s for s in self.steps if s.action in WRITES]

    def render(self) -> str:
        width = max((len(s.kind) for s in self.steps), default=0)
        lines = [
            f"{s.action:<9} {s.kind:<{width}}  {s.name}" + (f"  ({s.detail})" if s.detail else "")
            for s in self.steps
        ]
        counts = Counter(s.action for s in self.steps)
        summary = ", ".join(f"{counts[a]} {a}" for a in (CREATE, UPDATE, DELETE, UNCHANGED, SKIP))
        lines.append(f"-- {'dry run, nothing changed' if self.dry_run else 'done'}: {summary}")
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)
