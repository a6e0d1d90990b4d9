"""The upload reference: the least Python can do to store an upload the way the app does.

One thread, blocking sockets, one connection at a time: read the request head, then
``recv_into`` one reused 1 MiB buffer, sha256 and ``os.write`` each piece into a temp file in the
upload dir, rename it when the body is complete, answer 201 with the app's JSON
(``{"name", "size", "sha256"}``). No framework, no WSGI, no copies. The bench runs it behind the
same nginx (the bench server's ``/ideal/`` location, the baseline's upload settings) and straight,
in the same run as the app: ``upload.app_vs_ideal_ratio``.

Run by the bench as a script (standard library only): ``ideal_receiver.py PORT UPLOAD_DIR``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import socket
import sys
import tempfile
from pathlib import Path

CHUNK = 1024 * 1024
HEAD_MAX = 64 * 1024
TEMP_PREFIX = ".partial-ideal-"
SAFE_NAME = re.compile(r"[A-Za-z0-9._-]+")


def _respond(conn: socket.socket, status: str, body: dict[str, object]) -> None:
    payload = json.dumps(body).encode()
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    )
    conn.sendall(head.encode() + payload)


def _read_head(conn: socket.socket) -> tuple[bytes, bytes]:
    """The request head and whatever part of the body arrived with it."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = conn.recv(HEAD_MAX)
        if not piece or len(data) > HEAD_MAX:
            raise ConnectionError("request head incomplete")
        data += piece
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        view = view[os.write(fd, view) :]


def handle(conn: socket.socket, buffer: memoryview, directory: Path) -> None:
    head, body_start = _read_head(conn)
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = dict(line.split(":", 1) for line in lines[1:] if ":" in line)
    length = {k.strip().lower(): v.strip() for k, v in headers.items()}.get("content-length")
    name = target.rsplit("/", 1)[-1]
    if method != "PUT" or length is None or not SAFE_NAME.fullmatch(name):
        _respond(conn, "400 Bad Request", {"code": 400, "msg": "PUT /ideal/<name> with Content-Length"})
        return
    fd, temp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=directory)
    digest = hashlib.sha256()
    size = 0
    try:
        piece = memoryview(body_start)
        remaining = int(length)
        while True:
            digest.update(piece)
            _write_all(fd, piece)
            size += len(piece)
            remaining -= len(piece)
            if remaining <= 0:
                break
            got = conn.recv_into(buffer, min(len(buffer), remaining))
            if not got:
                raise ConnectionError(f"body ended after {size} of {length} bytes")
            piece = buffer[:got]
        os.close(fd)
        fd = -1
        os.replace(temp, directory / name)
        temp = ""
    finally:
        if fd >= 0:
            os.close(fd)
        if temp:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
    _respond(conn, "201 Created", {"name": name, "size": size, "sha256": digest.hexdigest()})


def serve(port: int, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    buffer = memoryview(bytearray(CHUNK))
    with socket.create_server(("127.0.0.1", port), backlog=16) as listener:
        while True:
            conn, _ = listener.accept()
            with conn, contextlib.suppress(OSError, ValueError):
                handle(conn, buffer, directory)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    serve(int(sys.argv[1]), Path(sys.argv[2]))
