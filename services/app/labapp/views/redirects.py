"""Redirects whose Location shows whether scheme, host and port survived the proxy."""

from __future__ import annotations

import hashlib

from flask import Blueprint, Response, abort, jsonify, redirect, request, url_for
from werkzeug.wrappers import Response as BaseResponse

bp = Blueprint("redirects", __name__)

REDIRECT_CODES = {301, 302, 303, 307, 308}


@bp.get("/redirect/external")
def external() -> BaseResponse:
    # Absolute URL built from what the app believes the request was: the proxy's headers decide.
    return redirect(url_for("redirects.landing", _external=True), code=302)


@bp.get("/redirect/relative")
def relative() -> BaseResponse:
    # A path, not a URL; under /sub/ (X-Forwarded-Prefix) the prefix is its first part.
    return redirect(request.script_root + "/landing", code=302)


@bp.route("/redirect/status/<int:code>", methods=["GET", "POST"])
def with_status(code: int) -> BaseResponse:
    if code not in REDIRECT_CODES:
        abort(404, f"redirect code {code} is not one of {sorted(REDIRECT_CODES)}")
    return redirect(url_for("redirects.landing", _external=True), code=code)


# POST and PUT too: a 307/308 makes the client resend its method and body here.
@bp.route("/landing", methods=["GET", "POST", "PUT"])
def landing() -> Response:
    digest = hashlib.sha256()
    size = 0
    while chunk := request.stream.read(1024 * 1024):
        digest.update(chunk)
        size += len(chunk)
    return jsonify(url=request.url, method=request.method, size=size, sha256=digest.hexdigest())


@bp.get("/dir/")
def directory() -> Response:
    # "/dir" gets Werkzeug's own trailing-slash redirect (308), the classic absolute-Location case.
    return jsonify(path=request.path)
