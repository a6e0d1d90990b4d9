"""Flask test-client fixtures: the app without gunicorn, nginx or a network."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from labapp import create_app
from labsettings import AppSettings


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.no_stack)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AppSettings:
    for name in (
        "LAB_FIX_PROXY",
        "LAB_FIX_DRAIN_BODY",
        "LAB_FIX_JSON_ERRORS",
        "LAB_FIX_FORM_MEMORY",
        "LAB_FIX_BROKER",
        "LAB_BROKER_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LAB_UPLOAD_DIR", str(tmp_path / "uploads"))
    monkeypatch.setenv("LAB_MAX_UPLOAD_MB", "4")
    return AppSettings.from_env()


@pytest.fixture
def make_app(settings: AppSettings):
    """Build an app with some settings changed: ``make_app(fix_proxy=False)``."""

    def build(**changes: object) -> Flask:
        app = create_app(settings.replace(**changes))
        app.config["TESTING"] = True
        return app

    return build


@pytest.fixture
def app(make_app) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


# What nginx sends upstream for https://localhost:8443 (see nginx/snippets/proxy.conf).
PROXIED = {
    "Host": "localhost:8443",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "localhost:8443",
    "X-Forwarded-Port": "8443",
    "X-Forwarded-For": "203.0.113.7",
    "X-Request-ID": "req-from-nginx",
}


@pytest.fixture
def proxied() -> dict[str, str]:
    return dict(PROXIED)
