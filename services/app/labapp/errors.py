"""One JSON error envelope for every error: ``{"code", "msg", "request_id"}``.

Registered only while ``LAB_FIX_JSON_ERRORS`` is on; without it Flask and Werkzeug answer
with their stock HTML pages, which is the html-errors scenario.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, g, jsonify
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.routing.exceptions import WebsocketMismatch

log = logging.getLogger("labapp")

WEBSOCKET_ONLY_MSG = "this endpoint is a websocket: connect with a websocket client (Upgrade: websocket)"


def error_response(code: int, msg: str) -> Response:
    response = jsonify(code=code, msg=msg, request_id=g.get("request_id", ""))
    response.status_code = code
    return response


def _http_error(exc: HTTPException) -> Response:
    response = error_response(exc.code or 500, exc.description or exc.name)
    # Keep what the stock response would have carried, e.g. Allow on 405.
    for name, value in exc.get_response().headers.items():
        if name.lower() not in {"content-type", "content-length"}:
            response.headers[name] = value
    return response


def _websocket_mismatch(_exc: WebsocketMismatch) -> Response:
    return error_response(400, WEBSOCKET_ONLY_MSG)


def _unhandled(_exc: Exception) -> Response:
    # The traceback goes to the app log under the request id; the client gets the envelope only.
    log.exception("unhandled exception request_id=%s", g.get("request_id", ""))
    return error_response(500, InternalServerError.description)


def register(app: Flask) -> None:
    app.register_error_handler(WebsocketMismatch, _websocket_mismatch)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unhandled)
