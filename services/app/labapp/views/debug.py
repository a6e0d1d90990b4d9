"""The lab's stethoscope: what the app sees once the proxy is done with the request."""

from __future__ import annotations

import os
import socket

from flask import Blueprint, Response, current_app, g, jsonify, request

from .. import chat

bp = Blueprint("debug", __name__)


def served_by() -> dict[str, object]:
    """Which process answered: the host (a container's is its id) and the worker's pid."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


def request_view() -> dict[str, object]:
    return {
        "method": request.method,
        "protocol": request.environ.get("SERVER_PROTOCOL", ""),
        "scheme": request.scheme,
        "host": request.host,
        "url_root": request.url_root,
        "url": request.url,
        "remote_addr": request.remote_addr,
        "headers": dict(request.headers),
        "request_id": g.get("request_id", ""),
        "served_by": served_by(),
    }


@bp.get("/healthz")
def healthz() -> Response:
    """200 "ok" while the app serves. The broker's state is reported beside it, never folded into
    it: with Redis down only chat stops, so the app must stay in nginx's rotation and Docker's
    healthcheck (which read "status" alone)."""
    return jsonify(status="ok", broker=chat.room_of(current_app).state)


@bp.get("/debug/request")
def debug_request() -> Response:
    return jsonify(request_view())


@bp.get("/debug/settings")
def debug_settings() -> Response:
    return jsonify(current_app.config["LAB"].public())
