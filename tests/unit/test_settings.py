from __future__ import annotations

import ast
import os
import runpy
from pathlib import Path

import pytest

import labsettings

GUNICORN_CONF = Path(__file__).resolve().parents[2] / "services" / "app" / "gunicorn.conf.py"


@pytest.mark.parametrize(("raw", "expected"), [("0", False), ("off", False), ("1", True), ("", True)])
def test_fix_flags(monkeypatch, raw, expected):
    monkeypatch.setenv("LAB_FIX_PROXY", raw)
    assert labsettings.AppSettings.from_env()[labsettings.FIX_PROXY] is expected


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
    assert labsettings.AppSettings.from_env()[labsettings.FIX_DRAIN_BODY] is False


def test_the_scenario_env_did_not_leak_into_this_process():
    assert os.environ.get("GUNICORN_WORKER_CLASS") != "sync"
    assert os.environ.get("LAB_FIX_DRAIN_BODY") != "0"


@pytest.mark.parametrize(("raw", "expected"), [("auto", max(2, os.cpu_count() or 1)), ("3", 3), ("1", 1)])
def test_gunicorn_workers_default_to_one_per_core_and_at_least_two(monkeypatch, raw, expected):
    monkeypatch.setenv("GUNICORN_WORKERS", raw)
    assert labsettings.GUNICORN_WORKERS.value() == expected
    assert labsettings.GUNICORN_WORKERS.default == "auto"


@pytest.mark.parametrize("raw", ["0", "-2", "many"])
def test_gunicorn_workers_refuse_what_is_not_a_count(monkeypatch, raw):
    monkeypatch.setenv("GUNICORN_WORKERS", raw)
    with pytest.raises(ValueError, match="GUNICORN_WORKERS"):
        labsettings.GUNICORN_WORKERS.value()


@pytest.mark.parametrize(
    "url",
    [
        "redis://redis:6379/0",
        "redis://localhost",
        "rediss://user:pw@cache.example:6380/2",
        "unix:///run/r.sock",
    ],
)
def test_broker_urls_redis_py_reads_are_accepted(url):
    assert labsettings.broker_url(url) == url


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://redis:6379", "want redis://"),
        ("redis//redis:6379", "want redis://"),
        ("redis://:6379/0", "no host"),
        ("redis://redis:port/0", "Port"),
        ("redis://redis:6379/zero", "database number"),
        ("unix://relative/r.sock", "absolute"),
    ],
)
def test_malformed_broker_urls_say_what_is_wrong(url, why):
    with pytest.raises(ValueError, match=why):
        labsettings.broker_url(url)


def test_app_settings_are_read_through_their_declarations(monkeypatch):
    monkeypatch.setenv("LAB_WS_MAX_MESSAGE", "1024")
    monkeypatch.setenv("LAB_FIX_FORM_MEMORY", "0")
    settings = labsettings.AppSettings.from_env()
    assert settings[labsettings.WS_MAX_MESSAGE] == 1024
    shown = settings.public()
    assert shown["ws_max_message_bytes"] == 1024  # its field, declared: not "ws_max_message"
    assert shown["max_form_memory_mb"] is None  # Werkzeug's own limit applies with the fix off
    assert list(shown) == [s.field_name for s in labsettings.SETTINGS.values() if s.public]
    assert "upload_dir" not in shown and "broker_url" not in shown


def test_the_upload_write_piece_is_16_kib_unless_set_and_a_count():
    assert labsettings.AppSettings.from_env({}).upload_write_bytes == 16 * 1024
    settings = labsettings.AppSettings.from_env({"LAB_UPLOAD_WRITE_KIB": "1024"})
    assert settings.upload_write_bytes == 1024 * 1024
    with pytest.raises(ValueError, match="LAB_UPLOAD_WRITE_KIB: want 1 or more"):
        labsettings.AppSettings.from_env({"LAB_UPLOAD_WRITE_KIB": "0"})


def test_an_app_setting_is_replaced_by_its_field_name_and_only_an_app_setting():
    settings = labsettings.AppSettings.from_env({})
    assert settings.replace(fix_proxy=False)[labsettings.FIX_PROXY] is False
    with pytest.raises(TypeError, match="not an app setting: fix_prxy"):
        settings.replace(fix_prxy=False)
    with pytest.raises(KeyError):
        settings[labsettings.GUNICORN_WORKERS]


def _environ_reads(source: str) -> list[str]:
    """Reads of a LAB_* name from os.environ in ``source``: os.environ[...], os.environ.get(...),
    os.getenv(...), "..." in os.environ."""

    def is_environ(node: ast.expr) -> bool:
        return isinstance(node, ast.Attribute) and node.attr == "environ" and ast.unparse(node.value) == "os"

    def lab_name(node: ast.expr | None) -> bool:
        return isinstance(node, ast.Constant) and str(node.value).startswith("LAB_")

    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and is_environ(node.value):
            if lab_name(node.slice):
                found.append(ast.unparse(node))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
            environ_get = node.func.attr == "get" and is_environ(node.func.value)
            getenv = node.func.attr == "getenv" and ast.unparse(node.func.value) == "os"
            if (environ_get or getenv) and lab_name(node.args[0]):
                found.append(ast.unparse(node))
        elif isinstance(node, ast.Compare) and lab_name(node.left) and any(map(is_environ, node.comparators)):
            found.append(ast.unparse(node))
    return found


ROOT = GUNICORN_CONF.parents[2]
TOOL_SOURCES = sorted(
    p
    for p in [
        *(ROOT / "scripts" / "labctl").rglob("*.py"),
        *(ROOT / "services" / "app").rglob("*.py"),
        *(ROOT / "nginx" / "scenarios").glob("*/check.py"),
    ]
    if p.name != "labsettings.py"
)


@pytest.mark.parametrize("path", TOOL_SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_tools_read_lab_settings_through_their_declarations(path):
    found = _environ_reads(path.read_text())
    assert found == [], f"{path.relative_to(ROOT)} reads {found}: read labsettings.<SETTING>.value() instead"


def test_the_environ_reader_sees_every_form():
    source = """
os.environ.get("LAB_A", "")
os.environ["LAB_B"]
os.getenv("LAB_C")
if "LAB_D" in os.environ: pass
os.environ.get("HOME")
os.environ["LAB_E"] = "1"  # a write: the tests' (and setdefault's) way
env.get("LAB_F")
"""
    assert _environ_reads(source) == [
        "os.environ.get('LAB_A', '')",
        "os.environ['LAB_B']",
        "os.getenv('LAB_C')",
        "'LAB_D' in os.environ",
    ]
