"""Uploads streamed to disk in bounded memory, hashed on the way, renamed only when complete.

``POST /upload`` (multipart, field ``file``) and ``PUT /upload/<name>`` (raw body, with
Content-Length or chunked) answer 201 ``{"name", "size", "sha256"}``. Anything that stops an
upload before its end (client abort, over-limit, bad multipart) deletes the temp file, so
nothing partial is ever visible under a real name. ``GET /files/<name>`` is authorised here and
served by nginx through X-Accel-Redirect.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, cast
from urllib.parse import quote

from flask import Blueprint, Request, Response, abort, current_app, jsonify, request, send_file
from werkzeug.utils import secure_filename

from .settings import LabSettings

CHUNK = 1024 * 1024
TEMP_PREFIX = ".partial-"
X_ACCEL_PREFIX = "/_lab_files/"

bp = Blueprint("uploads", __name__)


def temp_prefix(pid: int) -> str:
    """Also spelled out in gunicorn.conf.py (child_exit), which must not import the app."""
    return f"{TEMP_PREFIX}{pid}-"


class PendingUpload:
    """A temp file in the upload dir that hashes what is written; ``commit`` renames it."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        # The worker's pid in the name: a SIGKILLed worker cannot discard its temp files, so
        # gunicorn's master removes them by pid when it reaps the worker (child_exit hook).
        fd, path = tempfile.mkstemp(prefix=temp_prefix(os.getpid()), dir=directory)
        os.fchmod(fd, 0o644)  # nginx's workers serve committed files via X-Accel-Redirect
        self.path = Path(path)
        self._file: IO[bytes] = os.fdopen(fd, "wb")
        self._sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._sha256.update(data)
        self.size += len(data)
        return self._file.write(data)

    def seek(self, *_args: Any) -> int:
        # Werkzeug rewinds a finished part before wrapping it; the bytes are already on disk.
        return 0

    def commit(self, name: str) -> dict[str, object]:
        self._file.close()
        self.path.replace(self.path.with_name(name))
        return {"name": name, "size": self.size, "sha256": self._sha256.hexdigest()}

    def discard(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


class StreamingRequest(Request):
    """Lets a view decide where multipart file parts go (Werkzeug would spool them to /tmp)."""

    file_sink: Callable[[], PendingUpload] | None = None

    def _get_file_stream(self, *args: Any, **kwargs: Any) -> IO[bytes]:
        if self.file_sink is not None:
            return self.file_sink()  # type: ignore[return-value]
        return super()._get_file_stream(*args, **kwargs)


def _settings() -> LabSettings:
    return current_app.config["LAB"]


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
        part = PendingUpload(_settings().upload_dir)
        pending.append(part)
        return part

    request.file_sink = sink
    try:
        field = request.files.get("file")
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
    stream = request.stream  # 413 here when Content-Length is over the limit
    part = PendingUpload(_settings().upload_dir)
    try:
        while chunk := stream.read(CHUNK):
            part.write(chunk)
        if request.content_length is not None and part.size != request.content_length:
            abort(400, f"body ended after {part.size} of {request.content_length} bytes")
        return _created(part.commit(name))
    except BaseException:
        part.discard()
        raise


def _stored(name: str) -> tuple[str, Path]:
    name = safe_name(name)
    path = _settings().upload_dir / name
    if not path.is_file():
        abort(404, f"no uploaded file named {name!r}")
    return name, path


@bp.get("/files/<name>")
def download(name: str) -> Response:
    name, path = _stored(name)
    if not _settings().x_accel:
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
