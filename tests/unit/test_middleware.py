from __future__ import annotations

import io
import json
import logging

from werkzeug.test import EnvironBuilder

from labapp.middleware import drain_body, request_log


def early_answer(environ, start_response):
    start_response("403 FORBIDDEN", [("Content-Type", "text/plain")])
    return [b"no"]


def run(app, environ):
    captured = {}

    def start_response(status, headers, exc_info=None):
        captured["status"], captured["headers"] = status, headers

    body = app(environ, start_response)
    data = b"".join(body)
    if hasattr(body, "close"):  # as a WSGI server does
        body.close()
    return captured, data


def test_drain_reads_the_body_the_view_left():
    environ = EnvironBuilder(method="POST", data=b"x" * 100_000).get_environ()
    stream = environ["wsgi.input"]
    run(drain_body(early_answer, limit_bytes=10**6), environ)
    assert stream.read() == b""


def test_drain_stops_at_its_limit():
    environ = EnvironBuilder(method="POST", data=b"x" * 100_000).get_environ()
    stream = environ["wsgi.input"]
    run(drain_body(early_answer, limit_bytes=1000), environ)
    assert len(stream.read()) == 99_000


def test_drain_survives_a_broken_stream():
    environ = EnvironBuilder(method="POST", data=b"x" * 10).get_environ()

    class Broken(io.RawIOBase):
        def read(self, *_):
            raise OSError("peer reset")

    environ["wsgi.input"] = Broken()
    captured, _ = run(drain_body(early_answer, limit_bytes=1000), environ)
    assert captured["status"].startswith("403")


def test_request_log_echoes_id_and_logs_one_json_line(caplog):
    caplog.set_level(logging.INFO, logger="labapp.access")
    logging.getLogger("labapp.access").addHandler(caplog.handler)
    environ = EnvironBuilder(path="/x", headers={"X-Request-ID": "rid-9"}).get_environ()
    captured, _ = run(request_log(early_answer), environ)
    assert ("X-Request-ID", "rid-9") in captured["headers"]
    line = json.loads(caplog.records[-1].getMessage())
    assert line["request_id"] == "rid-9" and line["status"] == 403 and line["path"] == "/x"
    logging.getLogger("labapp.access").removeHandler(caplog.handler)


def test_websocket_requests_are_logged_as_101_when_the_session_ends(caplog):
    logging.getLogger("labapp.access").addHandler(caplog.handler)
    environ = EnvironBuilder(path="/ws/echo").get_environ()
    environ["wsgi.websocket"] = object()
    run(request_log(early_answer), environ)
    assert json.loads(caplog.records[-1].getMessage())["status"] == 101
    logging.getLogger("labapp.access").removeHandler(caplog.handler)


def test_a_stopping_worker_closes_each_connection_after_its_response(client, monkeypatch):
    from labapp.middleware import CloseWhenStopping

    assert "close" not in client.get("/healthz").headers.get("Connection", "")
    monkeypatch.setattr(CloseWhenStopping, "stopping", True)
    assert client.get("/healthz").headers["Connection"] == "close"
    assert client.get("/no/such/page").headers["Connection"] == "close"  # error responses too
