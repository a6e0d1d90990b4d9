"""Where uploads go: a temp file in the upload dir, hashed as it is written, renamed to its real
name only when complete, so an aborted, over-limit or malformed upload never leaves a partial
file under a real name. ``StreamingRequest`` lets a view send multipart file parts there.

A raw body (``PendingUpload.receive``) is read as it arrives (labapp.body): while the worker
receives one chunk, a thread of gevent's pool hashes and writes the one before (hashlib and
os.write release the GIL), so receiving, hashing and writing overlap instead of taking turns on
the worker's one Python thread. The chunks lie in buffers lent by the worker's pool only while
their bytes are there: a fast upload holds two, a slow one none while it waits (make bench:
upload.app_vs_ideal_ratio, upload.app_rss_growth_mib, upload.kib_per_slow_upload).
"""

from __future__ import annotations

import hashlib
import os
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import gevent
from flask import Request

import labsettings

from .body import POOL, Body


class PendingUpload:
    """A temp file in the upload dir that hashes what is written; ``commit`` renames it.

    Each os.write is at most ``piece`` bytes (LAB_UPLOAD_WRITE_KIB). On a local page cache the
    kernel's copy is most of an upload's cost, and on the lab's VMs it is cheaper in small pieces:
    1 GiB written in 16 KiB pieces cost 0.5-0.85 s of system time, in 1 MiB pieces 1.8-2.2 s
    (32 KiB: 1.2, 256 KiB: 1.7), the pages coming back from the hypervisor each time
    (docs/BENCHMARKS.md, "Upload"). On a FUSE mount (GlusterFS) each write is a request to the
    filesystem's daemon instead, and larger pieces win (docs/SCALING.md)."""

    def __init__(self, directory: Path, piece: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        # The worker's host and pid in the name: a SIGKILLed worker cannot discard its temp files,
        # so gunicorn's master removes them by pid when it reaps the worker (child_exit hook).
        fd, path = tempfile.mkstemp(
            prefix=labsettings.temp_prefix(socket.gethostname(), os.getpid()), dir=directory
        )
        os.fchmod(fd, 0o644)  # nginx's workers serve committed files via X-Accel-Redirect
        self.path = Path(path)
        self._fd = fd
        self._sha256 = hashlib.sha256()
        self._piece = piece
        self.size = 0
        # The chunk a pool thread is hashing and writing, if any: the file is closed only after it.
        self._storing: Any = None

    def write(self, data: bytes | memoryview) -> int:
        """Hash and write ``data`` now (Werkzeug's multipart parser hands file parts here)."""
        self._sha256.update(data)
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view[: self._piece]) :]
        self.size += len(data)
        return len(data)

    def receive(self, body: Body) -> None:
        """The whole of ``body``: each chunk is hashed and written by a pool thread while the
        next one is received. An error from either side propagates; the chunk in flight still
        finishes before the file is closed."""
        threads = gevent.get_hub().threadpool
        while True:
            size = body.ready()  # waits with no buffer held
            data, buffer = body.take(size, POOL) if size else (memoryview(b""), None)
            if self._storing is not None:
                # Raises the thread's error (a full disk) here. Cleared only after: a greenlet
                # killed while waiting leaves it set, so discard() waits for the thread.
                self._storing.get()
                self._storing = None
            if not data:
                return
            self._storing = threads.spawn(self.write, data)
            if buffer is not None:
                # Back to the pool once stored, not when the next bytes come: a client that
                # sends a burst and stalls must not keep it.
                self._storing.rawlink(lambda _stored, lent=buffer: POOL.give(lent))

    def seek(self, *_args: Any) -> int:
        # Werkzeug rewinds a finished part before wrapping it; the bytes are already on disk.
        return 0

    def commit(self, name: str) -> dict[str, object]:
        if self._storing is not None:
            raise RuntimeError("commit before the last chunk was stored")
        self._close()
        self.path.replace(self.path.with_name(name))
        return {"name": name, "size": self.size, "sha256": self._sha256.hexdigest()}

    def discard(self) -> None:
        """Remove the temp file now; close it once no pool thread writes to it any more (a
        descriptor closed under a running os.write could be reused by another file meanwhile)."""
        self.path.unlink(missing_ok=True)
        storing, self._storing = self._storing, None
        if storing is None or storing.ready():
            self._close()
        else:
            storing.rawlink(lambda _result: self._close())

    def _close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:  # once: a failed commit is discarded after it closed the file
            os.close(fd)


class StreamingRequest(Request):
    """Lets a view decide where multipart file parts go (Werkzeug would spool them to /tmp)."""

    file_sink: Callable[[], PendingUpload] | None = None

    def _get_file_stream(self, *args: Any, **kwargs: Any) -> IO[bytes]:
        if self.file_sink is not None:
            return self.file_sink()  # type: ignore[return-value]
        return super()._get_file_stream(*args, **kwargs)
