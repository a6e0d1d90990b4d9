"""The lab's stethoscope: what the app sees once the proxy is done with the request."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, g, jsonify, request

bp = Blueprint("debug", __name__)


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
    }


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


@bp.get("/debug/request")
def debug_request() -> Response:
    return jsonify(request_view())


@bp.get("/debug/settings")
def debug_settings() -> Response:
    return jsonify(current_app.config["LAB"].public())
