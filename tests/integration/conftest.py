import pytest

from shopcore.platform import runtime
from shopcore.platform.config import SETTINGS


@pytest.fixture(autouse=True)
def _services(services, monkeypatch):
    """Every integration test runs against the run's isolated stack; the relay does not
    linger watching the outbox after draining it."""
    monkeypatch.setenv("RELAY_WATCH", "false")
    runtime.current().reset(SETTINGS)
    return services
