"""The lab's stethoscope: what the app sees once the proxy is done with the request."""

from __future__ import annotations

import os
import socket
import ssl
import time

import requests
import urllib3.util.ssl_
from flask import Blueprint, Response, abort, current_app, g, jsonify, request
from werkzeug.http import dump_cookie

import labsettings as lab

from .. import chat, heap
from ..errors import error_response

bp = Blueprint("debug", __name__)


def served_by() -> dict[str, object]:
    """Which process answered: the host (a container's is its id) and the worker's pid; on Swarm
    also the node (LAB_NODE_NAME, set from the task's template)."""
    node = lab.NODE_NAME.value()
    return {"host": socket.gethostname(), "pid": os.getpid(), **({"node": node} if node else {})}


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


# Enough to pass any LAB_MAX_HEADER_KIB the lab runs with, bounded so it cannot fill memory.
SET_COOKIE_MAX_BYTES = 1024 * 1024


@bp.get("/debug/set-cookie")
def set_cookie() -> Response:
    """A Set-Cookie of ``bytes`` bytes of value: a session cookie grown large after a login, to
    show which layer's response-head limit refuses it (header-size-layers)."""
    size = request.args.get("bytes", type=int)
    if size is None or not 0 <= size <= SET_COOKIE_MAX_BYTES:
        abort(400, f"bytes: a whole number from 0 to {SET_COOKIE_MAX_BYTES}")
    response = jsonify(cookie_bytes=size)
    # dump_cookie with no size check: Werkzeug would warn past browsers' usual 4093 bytes.
    cookie = dump_cookie("lab_big", "c" * size, secure=True, httponly=True, samesite="Lax", max_size=0)
    response.headers.add("Set-Cookie", cookie)
    return response


OUTBOUND_TIMEOUT_S = 5


@bp.get("/debug/outbound")
def outbound() -> Response:
    """An HTTPS request from the app to the lab's own nginx (its /healthz), verified against the
    lab's CA, as any app calls an API. Under gevent it must go through gevent's ssl: with the app
    imported before the worker patched (gunicorn --preload, an early `import requests`), urllib3
    holds the unpatched SSLContext and the call dies of RecursionError (patch-order)."""
    settings = current_app.config["LAB"]
    url = settings.self_url + "/healthz"
    # The class urllib3 builds its contexts from: gevent's once patched first, else the original.
    context_class = urllib3.util.ssl_.SSLContext
    module = getattr(context_class, "__module__", "none")  # urllib3 types it as possibly None
    patched = context_class is ssl.SSLContext and module.startswith("gevent")
    started = time.perf_counter()
    try:
        answer = requests.get(url, verify=str(settings[lab.SELF_CA]), timeout=OUTBOUND_TIMEOUT_S)
    except (requests.RequestException, RecursionError) as error:
        abort(502, f"the app's outbound HTTPS request to {url} failed: {type(error).__name__}: "
                   f"{str(error)[:200]} (urllib3's SSLContext is {module}'s)")  # fmt: skip
    return jsonify(
        url=url,
        status=answer.status_code,
        seconds=round(time.perf_counter() - started, 3),
        ssl_context=f"{module}.{getattr(context_class, '__name__', 'none')}",
        ssl_patched_first=patched,
    )


@bp.get("/debug/settings")
def debug_settings() -> Response:
    return jsonify(current_app.config["LAB"].public())


@bp.post("/debug/malloc-trim")
def malloc_trim() -> Response:
    """This worker's RSS, then glibc's free pages given back and its RSS again: growth that the
    trim takes back was the allocator's, not the app's (labapp/heap.py)."""
    before = heap.rss_kib()
    if not heap.trim():
        return error_response(501, "this worker's C library has no malloc_trim (not glibc)")
    return jsonify(rss_kib_before=before, rss_kib_after=heap.rss_kib(), served_by=served_by())
