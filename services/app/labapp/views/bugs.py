"""Deliberately broken routes, named after what they break (see the scenario catalogue)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

import labsettings as lab

from ..errors import error_response
from ..middleware import UNBOUNDED_HEAD
from .websockets import echo_loop

bp = Blueprint("bugs", __name__, url_prefix="/bugs")


@bp.post("/early-reject")
def early_reject() -> Response:
    # Answers before reading the body: without drain_body the worker closes on unread data.
    return error_response(403, "rejected before reading the upload (early-reject)")


@bp.route("/ws-no-flag")
def ws_no_flag() -> Response:
    # Missing websocket=True: gevent-websocket has already sent 101, then routing refuses it.
    return echo_loop()


@bp.get("/big-header")
def big_header() -> Response:
    # nginx: "upstream sent too big header" -> 502, a gateway error on demand (html-errors scenario):
    # a header as large as nginx's proxy_buffer_size (LAB_MAX_HEADER_KIB), the head larger still,
    # sent past the app's own bound on heads (labapp.middleware.bounded_response_head).
    padding = current_app.config["LAB"][lab.MAX_HEADER_KIB] * 1024
    request.environ[UNBOUNDED_HEAD] = True
    response = jsonify(padding_bytes=padding)
    response.headers["X-Lab-Padding"] = "x" * padding
    return response
