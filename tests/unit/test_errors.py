from __future__ import annotations

import logging

import pytest


@pytest.mark.parametrize(
    ("method", "path", "status", "msg_part"),
    [
        ("GET", "/errors/crash", 500, "internal error"),
        ("GET", "/errors/validation", 400, "invalid email"),
        ("GET", "/errors/teapot", 418, "teapot"),
        ("GET", "/no/such/path", 404, "not found"),
        ("DELETE", "/healthz", 405, "not allowed"),
        ("GET", "/ws/echo", 400, "connect with a websocket"),
        ("GET", "/slow?seconds=abc", 400, "seconds must be a number"),
        ("GET", "/slow?seconds=9999", 400, "between 0 and"),
    ],
)
def test_every_error_is_the_json_envelope(client, method, path, status, msg_part):
    response = client.open(path, method=method, headers={"X-Request-ID": "rid-1"})
    assert response.status_code == status
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"code", "msg", "request_id"}
    assert body["code"] == status and body["request_id"] == "rid-1"
    assert msg_part in body["msg"].lower()
    assert "Traceback" not in response.get_data(as_text=True)


def test_405_keeps_allow(client):
    assert "GET" in client.delete("/healthz").headers["Allow"]


def test_crash_is_logged_with_its_request_id(client, caplog):
    logger = logging.getLogger("labapp")  # does not propagate: gunicorn's root logger is not ours
    logger.addHandler(caplog.handler)
    try:
        client.get("/errors/crash", headers={"X-Request-ID": "rid-crash"})
    finally:
        logger.removeHandler(caplog.handler)
    assert "rid-crash" in caplog.text and "RuntimeError" in caplog.text


def test_json_errors_switch_off_gives_html(make_app):
    app = make_app(fix_json_errors=False)
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as under gunicorn, not as in TESTING
    response = app.test_client().get("/errors/crash")
    assert response.status_code == 500 and response.mimetype == "text/html"
