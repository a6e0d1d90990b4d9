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


@pytest.mark.parametrize("reset", [False, True], ids=["close", "reset"])
@pytest.mark.parametrize("form", ["put", "multipart"])
def test_aborted_uploads_leave_nothing(lab: Lab, upload_dir: Path, form: str, reset: bool) -> None:
    worker = stackctl.children(stackctl.gunicorn_master())
    nginx_mark, app_mark = stackctl.log_offset(native.NGINX_ACCESS_LOG), stackctl.log_offset(native.APP_LOG)
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

    # Settled when nginx has logged every request (so it has closed their upstream connections)
    # and the app has logged every one it answered (it logs after the view's cleanup); a request
    # nginx dropped before the app read it leaves no app line, hence the quiet second after.
    def all_logged() -> list[dict] | None:
        entries = [e for e in stackctl.nginx_entries_since(nginx_mark) if e["uri"].startswith("/upload")]
        return entries if len(entries) >= len(CUTS) else None

    answered = sum(
        1
        for e in stackctl.wait_for(all_logged, 15, "nginx to log the aborted uploads")
        if e["upstream_status"]
    )
    stackctl.wait_for(
        lambda: (
            sum('"path": "/upload' in line for line in stackctl.log_lines_since(native.APP_LOG, app_mark))
            >= answered
        ),
        15,
        f"the app to log the {answered} aborted uploads it answered",
    )
    stackctl.wait_for(lambda: not stackctl.partial_files(upload_dir), 15, "aborted uploads' temp files to go")
    time.sleep(1)
    assert stackctl.partial_files(upload_dir) == [], "an aborted upload left its temp file"
    left = [n for n in names if (upload_dir / n).exists()]
    assert left == [], f"aborted uploads appeared under their names: {left}"
    assert stackctl.children(stackctl.gunicorn_master()) == worker, "an aborted upload cost a worker"
