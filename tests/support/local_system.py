"""Re-exported for the tests: the local emulation as real processes (infra/local/process.py)."""

from infra.local.process import LocalSystem, free_port

__all__ = ["LocalSystem", "free_port"]
