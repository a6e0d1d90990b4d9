"""One JSON error envelope for every error: ``{"code", "msg", "request_id"}``.

Registered only while ``LAB_FIX_JSON_ERRORS`` is on; without it Flask and Werkzeug answer
with their stock HTML pages, which is the html-errors scenario.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.routing.exceptions import WebsocketMismatch

from . import envelope

log = logging.getLogger("labapp")

WEBSOCKET_ONLY_MSG = "this endpoint is a websocket: connect with a websocket client (Upgrade: websocket)"
NOT_A_WEBSOCKET_MSG = "this endpoint is not a websocket: send a plain HTTP request"
# What of a handshake reached the app: a client diagnosing its proxy learns at once which pieces it
# dropped (Upgrade and Connection are hop-by-hop: forwarded only when the proxy is told to; the
# protocol says whether the proxy spoke HTTP/1.1 upstream).
HANDSHAKE_SEEN_HEADER = "X-Lab-Handshake-Seen"


def error_response(code: int, msg: str) -> Response:
    response = jsonify(envelope.fields(code, msg, g.get("request_id", "")))
    response.status_code = code
    return response


def _http_error(exc: HTTPException) -> Response:
    response = error_response(exc.code or 500, exc.description or exc.name)
    # Keep what the stock response would have carried, e.g. Allow on 405.
    for name, value in exc.get_response().headers.items():
        if name.lower() not in {"content-type", "content-length"}:
            response.headers[name] = value
    if exc.code == 400 and _unupgraded_handshake(request.environ):
        # A websocket route reached without its upgrade (the proxy spoke HTTP/1.0, or dropped
        # Connection): say what of the handshake arrived, as for a websocket-only route.
        response.headers[HANDSHAKE_SEEN_HEADER] = handshake_seen(request.environ)
    return response


def _unupgraded_handshake(environ: dict[str, object]) -> bool:
    return "HTTP_SEC_WEBSOCKET_VERSION" in environ and "wsgi.websocket" not in environ


def handshake_seen(environ: dict[str, object]) -> str:
    return "; ".join(
        f"{name}={environ.get(key) or '(none)'}"
        for name, key in (
            ("protocol", "SERVER_PROTOCOL"),
            ("upgrade", "HTTP_UPGRADE"),
            ("connection", "HTTP_CONNECTION"),
        )
    )


def _websocket_mismatch(_exc: WebsocketMismatch) -> Response:
    # A handshake as Werkzeug's routing tells one (Upgrade: websocket and Connection: upgrade):
    # Upgrade alone, its Connection dropped by the proxy, is a websocket route's lost handshake.
    connection = str(request.environ.get("HTTP_CONNECTION", "")).lower()
    upgrade_asked = any(token.strip(" \t") == "upgrade" for token in connection.split(","))
    if upgrade_asked and str(request.environ.get("HTTP_UPGRADE", "")).lower() == "websocket":
        return error_response(400, NOT_A_WEBSOCKET_MSG)  # a handshake for a plain route
    response = error_response(400, WEBSOCKET_ONLY_MSG)
    response.headers[HANDSHAKE_SEEN_HEADER] = handshake_seen(request.environ)
    return response


def _unhandled(_exc: Exception) -> Response:
    # The traceback goes to the app log under the request id; the client gets the envelope only.
    log.exception("unhandled exception request_id=%s", g.get("request_id", ""))
    return error_response(500, InternalServerError.description)


def register(app: Flask) -> None:
    app.register_error_handler(WebsocketMismatch, _websocket_mismatch)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unhandled)
