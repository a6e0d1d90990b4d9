"""Clients that give up mid-upload, at random points: nothing may appear under the upload's
name, no temp file (.partial-*) may stay behind, and the worker must keep serving (same pid)."""

from __future__ import annotations

import random
import socket
import struct
import time
from pathlib import Path

import pytest

from labctl import native
from support.lab import Lab

from . import report, stackctl
from .rawhttp import tls_socket

DECLARED = 8 * 1024 * 1024
SEED = 5  # fixed: a failure replays with the same cut points
CUTS = [0, *sorted(random.Random(SEED).sample(range(1, DECLARED), 6)), DECLARED - 1]


def put_head(lab: Lab, name: str) -> bytes:
    return (
        f"PUT /upload/{name} HTTP/1.1\r\nHost: {lab.host}\r\nContent-Length: {DECLARED}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()


def multipart_head(lab: Lab, name: str) -> bytes:
    part = (
        f'--XB\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    )
    return (
        f"POST /upload HTTP/1.1\r\nHost: {lab.host}\r\nContent-Type: multipart/form-data; boundary=XB\r\n"
        f"Content-Length: {len(part) + DECLARED}\r\nConnection: close\r\n\r\n{part}"
    ).encode()


class QuietWatch:
    def __init__(self, log: Path, upload_dir: Path, quiet_s: float = 1.0) -> None:
        self.log, self.upload_dir, self.quiet_s = log, upload_dir, quiet_s
        self._last = (stackctl.log_offset(log), time.monotonic())

    def settled(self) -> bool:
        size = stackctl.log_offset(self.log)
        if size != self._last[0] or stackctl.partial_files(self.upload_dir):
            self._last = (size, time.monotonic())
            return False
        return time.monotonic() - self._last[1] >= self.quiet_s


@pytest.mark.parametrize("reset", [False, True], ids=["close", "reset"])
@pytest.mark.parametrize("form", ["put", "multipart"])
def test_aborted_uploads_leave_nothing(lab: Lab, upload_dir: Path, form: str, reset: bool) -> None:
    worker = stackctl.children(stackctl.gunicorn_master())
    names = []
    for index, cut in enumerate(CUTS):
        name = f"aborted-{form}-{'rst' if reset else 'fin'}-{index}.bin"
        names.append(name)
        sock = tls_socket(lab)
        head = put_head(lab, name) if form == "put" else multipart_head(lab, name)
        sock.sendall(head + b"a" * cut)
        if reset:  # SO_LINGER 0: the client vanishes with a TCP RST instead of a TLS close
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
        report.tally("client aborts mid-upload", f"{form}-{'rst' if reset else 'fin'}")

    # Settled once the app is quiet: no temp file and no new app log line for a whole second
    # (an upload nginx passed on late would show as one or the other). With a RST the kernel
    # may drop the request unread, so counting log lines per request cannot work.
    quiet = QuietWatch(native.APP_LOG, upload_dir)
    stackctl.wait_for(quiet.settled, 20, "the app to settle after the aborted uploads", interval=0.25)
    assert stackctl.partial_files(upload_dir) == [], "an aborted upload left its temp file"
    left = [n for n in names if (upload_dir / n).exists()]
    assert left == [], f"aborted uploads appeared under their names: {left}"
    assert stackctl.children(stackctl.gunicorn_master()) == worker, "an aborted upload cost a worker"
