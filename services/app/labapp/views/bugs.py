"""Deliberately broken routes, named after what they break (see the scenario catalogue)."""

from __future__ import annotations

from flask import Blueprint, Response

from ..errors import error_response
from .websockets import echo_loop

bp = Blueprint("bugs", __name__, url_prefix="/bugs")


@bp.post("/early-reject")
def early_reject() -> Response:
    # Answers before reading the body: without DrainBody the worker closes on unread data.
    return error_response(403, "rejected before reading the upload (early-reject)")


@bp.route("/ws-no-flag")
def ws_no_flag() -> Response:
    # Missing websocket=True: gevent-websocket has already sent 101, then routing refuses it.
    return echo_loop()
