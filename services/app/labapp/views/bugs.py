"""Deliberately broken routes, named after what they break (see the scenario catalogue)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from ..errors import error_response
from .websockets import echo_loop

bp = Blueprint("bugs", __name__, url_prefix="/bugs")

# Larger than nginx's proxy_buffer_size (4k/8k): a real-world 502 (huge cookies, JWTs in headers).
BIG_HEADER_BYTES = 32 * 1024


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
    # nginx: "upstream sent too big header" -> 502, a gateway error on demand (html-errors scenario).
    response = jsonify(padding_bytes=BIG_HEADER_BYTES)
    response.headers["X-Lab-Padding"] = "x" * BIG_HEADER_BYTES
    return response
