"""Re-exported for the tests: the local emulation as real processes
(infra/harness/local_system.py)."""

from infra.harness.local_system import LocalSystem, free_port

__all__ = ["LocalSystem", "free_port"]
