"""patches.clienterrors against stock gevent on the same input: a head gevent cannot parse gets
the same status, with the envelope instead of an empty body; off (LAB_FIX_JSON_ERRORS=0), the
stock hook and request-line limit are back."""

from __future__ import annotations

import io
import json

from gevent import pywsgi

from labapp.patches import clienterrors, stock


def _handler() -> pywsgi.WSGIHandler:
    handler = object.__new__(pywsgi.WSGIHandler)
    handler.client_address = ("127.0.0.1", 1)
    handler.server = type("Server", (), {"error_log": io.StringIO()})()
    return handler


def test_the_same_status_as_stock_with_the_envelope_instead_of_an_empty_body(app):
    error = ValueError("got more than 100 headers")
    stock_status, stock_body = stock(clienterrors.HANDLE_CLIENT_ERROR)(_handler(), error)
    status, raw = pywsgi.WSGIHandler._handle_client_error(_handler(), error)
    stock_head, _, stock_page = stock_body.partition(b"\r\n\r\n")
    assert stock_status == status == "400" and b"Content-length: 0" in stock_head and stock_page == b""
    envelope = json.loads(raw.partition(b"\r\n\r\n")[2])
    assert envelope["code"] == 400 and envelope["msg"] == clienterrors.UNPARSED
    assert stock("gevent.pywsgi:MAX_REQUEST_LINE") == 8192 and pywsgi.MAX_REQUEST_LINE == 65536


def test_off_the_stock_hook_and_limit_are_back(make_app, monkeypatch):
    # A patch reads its setting from the environment, in the worker, as gunicorn starts it.
    monkeypatch.setenv("LAB_FIX_JSON_ERRORS", "0")
    make_app()
    try:
        assert pywsgi.WSGIHandler._handle_client_error is stock(clienterrors.HANDLE_CLIENT_ERROR)
        assert pywsgi.MAX_REQUEST_LINE == 8192
    finally:
        monkeypatch.delenv("LAB_FIX_JSON_ERRORS")
        make_app()  # the baseline's patches again, for the tests after this one
