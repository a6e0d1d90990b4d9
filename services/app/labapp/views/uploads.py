"""Upload routes: streamed to disk in bounded memory (labapp.storage), hashed on the way.

``POST /upload`` (multipart, field ``file``) and ``PUT /upload/<name>`` (raw body, with
Content-Length or chunked) answer 201 ``{"name", "size", "sha256"}``. Anything that stops an
upload before its end (client abort, over-limit, bad multipart) deletes the temp file, so
nothing partial is ever visible under a real name. ``GET /files/<name>`` is authorised here and
served by nginx through X-Accel-Redirect.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import cast
from urllib.parse import quote

from flask import Blueprint, Response, abort, current_app, jsonify, request, send_file
from werkzeug.utils import secure_filename

import labsettings as lab
from labsettings import AppSettings

from ..body import Body
from ..storage import PendingUpload, StreamingRequest

X_ACCEL_PREFIX = "/_lab_files/"

bp = Blueprint("uploads", __name__)


def _settings() -> AppSettings:
    return current_app.config["LAB"]


def _pending() -> PendingUpload:
    settings = _settings()
    return PendingUpload(settings[lab.UPLOAD_DIR], settings.upload_write_bytes)


def safe_name(raw: str) -> str:
    if "\x00" in raw:
        abort(400, "file name contains a NUL byte")
    name = secure_filename(raw)
    if not name:
        abort(400, f"file name {raw!r} has nothing usable once path parts are removed")
    return name


def _created(result: dict[str, object]) -> Response:
    response = jsonify(result)
    response.status_code = 201
    return response


@bp.post("/upload")
def upload_multipart() -> Response:
    pending: list[PendingUpload] = []

    def sink() -> PendingUpload:
        part = _pending()
        pending.append(part)
        return part

    cast(StreamingRequest, request).file_sink = sink
    try:
        field = request.files.get("file")  # Werkzeug's parser reads the body (within its deadline)
        if field is None or not field.filename:
            abort(400, "multipart upload needs a file in the field 'file'")
        name = safe_name(field.filename)
        target = cast(PendingUpload, field.stream)
        result = target.commit(name)
        pending.remove(target)
        return _created(result)
    finally:
        for part in pending:
            part.discard()


@bp.put("/upload/<name>")
def upload_raw(name: str) -> Response:
    name = safe_name(name)
    stream = cast(io.RawIOBase, request.stream)  # 413 here when Content-Length is over the limit
    part = _pending()
    try:
        # Read as it arrives, into the worker's pooled buffers with no copy in between
        # (labapp.patches.pywsgi gives gevent's wsgi.input the readinto Werkzeug's stream uses), the
        # whole body within LAB_UPLOAD_BODY_S (labapp.body).
        part.receive(Body(request.environ, stream))
        if request.content_length is not None and part.size != request.content_length:
            abort(400, f"body ended after {part.size} of {request.content_length} bytes")
        return _created(part.commit(name))
    except BaseException:
        part.discard()
        raise


def _stored(name: str) -> tuple[str, Path]:
    name = safe_name(name)
    path = _settings()[lab.UPLOAD_DIR] / name
    if not path.is_file():
        abort(404, f"no uploaded file named {name!r}")
    return name, path


@bp.get("/files/<name>")
def download(name: str) -> Response:
    name, path = _stored(name)
    if not _settings()[lab.X_ACCEL]:
        return send_file(path, mimetype="application/octet-stream", conditional=True)
    # nginx serves the bytes (sendfile, Content-Length, ranges) from its internal location.
    response = Response(status=200, mimetype="application/octet-stream")
    response.headers["X-Accel-Redirect"] = X_ACCEL_PREFIX + quote(name)
    return response


@bp.delete("/files/<name>")
def delete(name: str) -> Response:
    # Lets the test suites remove the hundreds of MiB they upload, in either mode.
    _, path = _stored(name)
    path.unlink(missing_ok=True)
    return Response(status=204)
