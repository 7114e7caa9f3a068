import pytest

from shopcore.platform.config import settings


@pytest.fixture(autouse=True)
def _services(services, monkeypatch):
    """Every integration test runs against the run's isolated stack; the relay does not
    linger watching the outbox after draining it."""
    monkeypatch.setenv("RELAY_WATCH", "false")
    settings.cache_clear()
    return services
