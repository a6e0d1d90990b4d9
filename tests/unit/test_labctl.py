"""scripts/lab's own behaviour that needs no stack."""

from __future__ import annotations

from pathlib import Path

import pytest

from labctl import nginxctl


def test_missing_nginx_is_explained_with_install_commands(monkeypatch):
    monkeypatch.setattr(nginxctl.shutil, "which", lambda _name: None)
    monkeypatch.setattr(Path, "exists", lambda _self: False)
    with pytest.raises(SystemExit) as stopped:
        nginxctl.native_env()
    message = str(stopped.value)
    assert "nginx is not installed" in message and "apt-get install" in message


def test_native_env_points_nginx_at_the_keepalive_pool(monkeypatch):
    monkeypatch.setenv("LAB_APP_PORT", "8123")
    env = nginxctl.native_env()
    assert env["LAB_UPSTREAM"] == "127.0.0.1:8123"
    assert env["LAB_PROXY_TARGET"] == "lab_app"
