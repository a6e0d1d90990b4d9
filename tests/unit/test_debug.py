from __future__ import annotations

import os
import socket


def test_healthz_reports_the_broker_beside_the_status(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    # No relay runs under the test client (gunicorn's post_worker_init starts it): not reachable yet.
    assert response.get_json() == {"status": "ok", "broker": "unreachable"}


def test_healthz_without_a_broker_says_off(make_app):
    body = make_app(fix_broker=False).test_client().get("/healthz").get_json()
    assert body == {"status": "ok", "broker": "off"}


def test_debug_request_shows_what_the_proxy_told_the_app(client, proxied):
    body = client.get("/debug/request", headers=proxied).get_json()
    assert body["scheme"] == "https"
    assert body["host"] == "localhost:8443"
    assert body["url"] == "https://localhost:8443/debug/request"
    assert body["remote_addr"] == "203.0.113.7"
    assert body["request_id"] == "req-from-nginx"
    assert body["protocol"] == "HTTP/1.1"
    assert set(body) == {
        "method",
        "protocol",
        "scheme",
        "host",
        "url_root",
        "url",
        "remote_addr",
        "headers",
        "request_id",
        "served_by",
    }
    assert body["served_by"] == {"host": socket.gethostname(), "pid": os.getpid()}


def test_proxy_fix_trusts_exactly_one_hop(client, proxied):
    proxied["X-Forwarded-For"] = "6.6.6.6, 203.0.113.7"  # a forged value, then the one nginx appended
    assert client.get("/debug/request", headers=proxied).get_json()["remote_addr"] == "203.0.113.7"


def test_without_proxy_fix_the_app_sees_the_proxy(make_app, proxied):
    body = make_app(fix_proxy=False).test_client().get("/debug/request", headers=proxied).get_json()
    assert body["scheme"] == "http"
    assert body["remote_addr"] == "127.0.0.1"


def test_request_id_is_echoed_or_made(client):
    assert client.get("/healthz", headers={"X-Request-ID": "abc"}).headers["X-Request-ID"] == "abc"
    made = client.get("/healthz").headers["X-Request-ID"]
    assert len(made) == 32


def test_debug_settings_lists_every_fix(client):
    body = client.get("/debug/settings").get_json()
    assert body["max_upload_mb"] == 4
    assert all(body[k] is True for k in ("fix_proxy", "fix_drain_body", "fix_json_errors", "fix_form_memory"))


def test_served_by_names_the_swarm_node(client, monkeypatch):
    """On Swarm, compose.swarm.yaml sets LAB_NODE_NAME from the task's {{.Node.Hostname}}."""
    monkeypatch.setenv("LAB_NODE_NAME", "node2")
    assert client.get("/debug/request").get_json()["served_by"]["node"] == "node2"
