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


@pytest.mark.parametrize(
    ("env", "recorded", "expected"),
    [
        (None, "host-drops-port", "host-drops-port"),  # `make reload` keeps the running scenario
        ("", "host-drops-port", ""),  # LAB_SCENARIO= explicitly: back to the baseline
        ("scheme-lost", "host-drops-port", "scheme-lost"),
        (None, None, ""),
    ],
)
def test_reload_keeps_the_running_scenario_unless_told(monkeypatch, tmp_path, env, recorded, expected):
    from labctl import paths

    record = tmp_path / "scenario"
    if recorded is not None:
        record.write_text(recorded + "\n")
    monkeypatch.setattr(paths, "SCENARIO_FILE", record)
    if env is None:
        monkeypatch.delenv("LAB_SCENARIO", raising=False)
    else:
        monkeypatch.setenv("LAB_SCENARIO", env)
    assert paths.scenario_for_reload() == expected
