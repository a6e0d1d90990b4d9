"""scripts/lab's own behaviour that needs no stack."""

from __future__ import annotations

from pathlib import Path

import pytest

from labctl import behaviours, nginx, probe
from labctl.behaviours import http3
from labctl.endpoints import Endpoint


def test_missing_nginx_is_explained_with_install_commands(monkeypatch):
    monkeypatch.setattr(nginx.shutil, "which", lambda _name: None)
    monkeypatch.setattr(Path, "exists", lambda _self: False)
    with pytest.raises(SystemExit) as stopped:
        nginx.native_env()
    message = str(stopped.value)
    assert "nginx is not installed" in message and "apt-get install" in message


def test_native_env_points_nginx_at_the_keepalive_pool(monkeypatch):
    monkeypatch.setenv("LAB_APP_PORT", "8123")
    env = nginx.native_env()
    assert env["LAB_UPSTREAM"] == "127.0.0.1:8123"
    assert env["LAB_PROXY_TARGET"] == "lab_app"
    # A new Socket.IO session: the app thrice, so that a handshake refused 503 is tried again.
    assert env["LAB_SOCKETIO_NEW_TARGET"] == "lab_sio_new"


STARTED = {"LAB_UPSTREAM": "127.0.0.1:8001", "LAB_MAX_UPLOAD_MB": "512", "LAB_SCENARIO": "host-drops-port"}


@pytest.mark.parametrize(
    ("environ", "scenario"),
    [
        ({}, "host-drops-port"),  # `make reload` keeps the running scenario
        ({"LAB_SCENARIO": ""}, ""),  # LAB_SCENARIO= explicitly: back to the baseline
        ({"LAB_SCENARIO": "scheme-lost"}, "scheme-lost"),
    ],
)
def test_reload_renders_what_the_stack_started_with(environ, scenario):
    # A shell with other LAB_APP_PORT / LAB_MAX_UPLOAD_MB values must not move the running stack.
    env = nginx.reload_env(
        {**environ, "LAB_UPSTREAM": "127.0.0.1:8000", "LAB_MAX_UPLOAD_MB": "4096"}, STARTED
    )
    assert env["LAB_UPSTREAM"] == "127.0.0.1:8001"
    assert env["LAB_MAX_UPLOAD_MB"] == "512"
    assert env["LAB_SCENARIO"] == scenario


@pytest.mark.parametrize(
    ("value", "port"),
    [
        ('h3=":8443"; ma=86400', 8443),
        ('h2=":443", h3=":9443"; ma=60', 9443),
        ('h3="alt.example:4433"', 4433),
        ('h3=""', 443),
        ("clear", None),
        ("", None),
        ('h3-29=":8443"', None),
    ],
)
def test_alt_svc_h3_port(value, port):
    assert probe.alt_svc_h3(value, 443) == port


def test_http3_is_not_probed_where_it_cannot_be_judged():
    state = behaviours.Probe(
        Endpoint("https://localhost:1", None, None), behaviours.Options(http3_unjudged="why")
    )
    results = list(http3.probe_http3(state))
    assert [(r.behaviour.id, r.verdict, r.seen) for r in results] == [
        (name, behaviours.NOT_PROBED, "why") for name in ("h3-advertised", "h3-answers", "h3-host")
    ]


def test_quic_goes_where_tcp_goes_for_the_advertised_port():
    from labctl import h3

    local = Endpoint("https://localhost:8443", None, None)
    assert h3.quic_address(local) == ("127.0.0.1", 8443)
    mapped = Endpoint("https://example.com", None, None, ((443, ("127.0.0.1", 9443)),))
    assert h3.quic_address(mapped, 443) == ("127.0.0.1", 9443)
    assert h3.quic_address(Endpoint("https://example.com", None, None), 8443) == ("example.com", 8443)
