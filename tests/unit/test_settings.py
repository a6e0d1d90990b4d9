from __future__ import annotations

import os
import runpy
from pathlib import Path

import pytest

from labapp.settings import LabSettings

GUNICORN_CONF = Path(__file__).resolve().parents[2] / "services" / "app" / "gunicorn.conf.py"


@pytest.mark.parametrize(("raw", "expected"), [("0", False), ("off", False), ("1", True), ("", True)])
def test_fix_flags(monkeypatch, raw, expected):
    monkeypatch.setenv("LAB_FIX_PROXY", raw)
    assert LabSettings.from_env().fix_proxy is expected


def test_gunicorn_defaults_to_the_gevent_websocket_worker(monkeypatch):
    monkeypatch.delenv("LAB_SCENARIO", raising=False)
    monkeypatch.delenv("GUNICORN_WORKER_CLASS", raising=False)
    conf = runpy.run_path(str(GUNICORN_CONF))
    assert conf["worker_class"] == "geventwebsocket.gunicorn.workers.GeventWebSocketWorker"
    assert conf["control_socket_disable"] is True


def test_gunicorn_conf_applies_a_scenario_env_file(monkeypatch, tmp_path):
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "app.env").write_text(
        "# comment\nGUNICORN_WORKER_CLASS=sync\nLAB_FIX_DRAIN_BODY=0\n"
    )
    # gunicorn.conf.py writes os.environ itself: give it a copy, or its values outlive the test.
    environ = {
        k: v for k, v in os.environ.items() if k not in {"GUNICORN_WORKER_CLASS", "LAB_FIX_DRAIN_BODY"}
    }
    monkeypatch.setattr(
        os, "environ", {**environ, "LAB_SCENARIOS_DIR": str(tmp_path), "LAB_SCENARIO": "demo"}
    )
    assert runpy.run_path(str(GUNICORN_CONF))["worker_class"] == "sync"
    assert LabSettings.from_env().fix_drain_body is False


def test_the_scenario_env_did_not_leak_into_this_process():
    assert os.environ.get("GUNICORN_WORKER_CLASS") != "sync"
    assert os.environ.get("LAB_FIX_DRAIN_BODY") != "0"
