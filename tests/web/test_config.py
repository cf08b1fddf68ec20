"""Settings are data: every one documented, read from CITYWOK_* only by the shell."""

from __future__ import annotations

from pathlib import Path

import pytest

from citywok.errors import ConfigError
from citywok.web.core.config import Settings, load_settings, settings_reference


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_documented(name: str) -> None:
    field = Settings.model_fields[name]
    assert field.description and len(field.description) > 15, f"{name} lacks a description"


def test_settings_table_in_docs_is_current() -> None:
    """docs/web.md carries the generated table (regenerate: python -m citywok.web.core.config)."""
    doc = Path(__file__).parents[2] / "docs" / "web.md"
    assert settings_reference() in doc.read_text()


def test_environment_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYWOK_ANONYMOUS_RATE_LIMIT", "3/minute")
    monkeypatch.setenv("CITYWOK_ALLOWED_HOSTS", "a.example, b.example")
    monkeypatch.setenv("CITYWOK_ALLOWED_PORTS", "[8080, 8443]")
    monkeypatch.setenv("CITYWOK_INDEX", "/srv/index")
    s = load_settings()
    assert s.anonymous_rate_limit == "3/minute"
    assert s.allowed_hosts == ["a.example", "b.example"]
    assert s.allowed_ports == [8080, 8443]
    monkeypatch.setenv("CITYWOK_DATA_DIR", "/srv/citywok")
    s = load_settings()
    # The service's own state lives apart from the index, which a snapshot replaces.
    assert s.keys_path == Path("/srv/citywok/keys.sqlite")
    assert s.shares_path == Path("/srv/citywok/shares.sqlite")


def test_defaults() -> None:
    s = Settings()
    assert s.anonymous_rate_limit is None and s.key_rate_limit == "100/hour"
    assert s.rate_limit_storage == "memory://"
    assert s.fetch_allow_loopback is False and s.sentry_dsn is None
    assert s.cors_origins == [] and s.trusted_proxies == []


@pytest.mark.parametrize("overrides", [
    {"cors_origins": ["*"], "cors_allow_credentials": True},
    {"anonymous_rate_limit": "lots"},
    {"rate_limit_storage": "mongodb://x"},
    {"port": 70000},
    {"no_such_setting": 1},
])
def test_invalid_settings(overrides: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        load_settings(**overrides)


@pytest.mark.parametrize(("settings", "limit"), [
    # A person's own machine: nobody else can be anonymous there.
    ({}, None), ({"host": "::1"}, None), ({"host": "localhost"}, None),
    ({"host": "127.0.0.2"}, None),
    # Reachable by others: the public limit, unless one is set.
    ({"host": "0.0.0.0"}, "10/hour"), ({"host": "192.168.1.20"}, "10/hour"),
    ({"host": "::"}, "10/hour"), ({"host": "citywok.example"}, "10/hour"),
    # Behind a proxy on this machine, the clients are the proxy's: limited.
    ({"trusted_proxies": ["127.0.0.1"]}, "10/hour"),
    # Set, it applies wherever it listens; empty means not set.
    ({"anonymous_rate_limit": "500/hour"}, "500/hour"),
    ({"host": "0.0.0.0", "anonymous_rate_limit": "3/minute"}, "3/minute"),
    ({"host": "0.0.0.0", "anonymous_rate_limit": ""}, "10/hour"),
])
def test_the_anonymous_limit_follows_the_address(settings: dict[str, object],
                                                 limit: str | None) -> None:
    assert load_settings(**settings).anonymous_limit == limit
