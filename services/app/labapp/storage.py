"""Where uploads go: a temp file in the upload dir, hashed as it is written, renamed to its real
name only when complete, so an aborted, over-limit or malformed upload never leaves a partial
file under a real name. ``StreamingRequest`` lets a view send multipart file parts there.
"""

from __future__ import annotations

import hashlib
import os
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from flask import Request

CHUNK = 1024 * 1024
TEMP_PREFIX = ".partial-"


def temp_prefix(host: str, pid: int) -> str:
    """Also spelled out in gunicorn.conf.py (child_exit), which must not import the app.

    The host as well as the pid: app replicas share the uploads volume, and the workers of
    every container have the same few pids (each container's gunicorn master is pid 1)."""
    return f"{TEMP_PREFIX}{host}-{pid}-"


class PendingUpload:
    """A temp file in the upload dir that hashes what is written; ``commit`` renames it."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        # The worker's host and pid in the name: a SIGKILLed worker cannot discard its temp files,
        # so gunicorn's master removes them by pid when it reaps the worker (child_exit hook).
        fd, path = tempfile.mkstemp(prefix=temp_prefix(socket.gethostname(), os.getpid()), dir=directory)
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
