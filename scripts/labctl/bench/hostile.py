"""What a slow or hostile client costs the app's workers (issue 28): the growth of their VmRSS
per trickling upload and per websocket client that does not read its echo.

Straight to gunicorn (plain TCP on the app port): nginx's per-address limits and its buffers are
not what this measures, and on loopback the kernel's buffers through nginx may take a whole
16 MiB echo (tcp_rmem grows to 32 MiB), leaving the worker nothing to hold.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from dataclasses import dataclass

from .. import endpoints, procs, wsclient
from . import bench_stack
from .settings import BenchSettings

MIB = 1024 * 1024
UNREAD_MESSAGE = 16 * MIB  # LAB_WS_MAX_MESSAGE's default: the largest the echo takes
TRICKLE_S = 3  # seconds of trickling (a byte a second each) before the sample
ECHO_START_S = 60.0  # gevent-websocket unmasks 16 MiB in seconds (issue 26), one after another
HOLD_S = 2.0  # sampled this long once every echo has started


@dataclass(frozen=True)
class Hostile:
    slow_uploads: int
    kib_per_slow_upload: float
    unread_websockets: int
    mib_per_unread_websocket: float


def workers_rss_kib(pids: list[int]) -> int:
    return sum(procs.rss_kib(pid) for pid in pids)


def slow_uploads(count: int, pids: list[int]) -> float:
    """KiB of worker memory per upload that trickles a byte a second: the peak over TRICKLE_S."""
    address = ("127.0.0.1", endpoints.app_port())
    before = workers_rss_kib(pids)
    peak = before
    clients: list[socket.socket] = []
    try:
        for n in range(count):
            sock = socket.create_connection(address, timeout=10)
            clients.append(sock)
            head = f"PUT /upload/trickle-{n}.bin HTTP/1.1\r\nHost: bench\r\nContent-Length: 4096\r\n\r\n"
            sock.sendall(head.encode())
        for _ in range(TRICKLE_S):
            for sock in clients:
                sock.sendall(b"x")
            time.sleep(1)
            peak = max(peak, workers_rss_kib(pids))
    finally:
        for sock in clients:
            sock.close()  # aborted: the app discards each temp file
    return round((peak - before) / count, 1)


def unread_websockets(count: int, pids: list[int]) -> float:
    """MiB of worker memory per /ws/echo client that sent a 16 MiB message and never reads the
    echo: the peak while every echo waits on its client (before the send deadline closes it)."""
    port = endpoints.app_port()
    frame = wsclient.encode_frame(wsclient.OP_BINARY, os.urandom(UNREAD_MESSAGE))
    before = workers_rss_kib(pids)
    clients: list[wsclient.WebSocket] = []
    try:
        for _ in range(count):
            handshake, ws = wsclient.connect(("127.0.0.1", port), "/ws/echo", f"127.0.0.1:{port}", None)
            if ws is None:
                raise RuntimeError(f"/ws/echo handshake answered {handshake.status}")
            clients.append(ws)
            ws.settimeout(ECHO_START_S)
            ws.sock.sendall(frame)
        end = time.monotonic() + ECHO_START_S
        while time.monotonic() < end and not all(_echo_started(ws.sock) for ws in clients):
            time.sleep(0.1)
        peak = before
        for _ in range(int(HOLD_S / 0.1)):
            peak = max(peak, workers_rss_kib(pids))
            time.sleep(0.1)
    finally:
        for ws in clients:
            with contextlib.suppress(OSError):
                ws.sock.close()
    return round((peak - before) / 1024 / count, 1)


def _echo_started(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return bool(sock.recv(1, socket.MSG_PEEK))
    except BlockingIOError:
        return False
    finally:
        sock.setblocking(True)


def run(settings: BenchSettings) -> Hostile:
    pids = bench_stack.app_worker_pids()
    return Hostile(
        settings.hostile_slow_uploads,
        slow_uploads(settings.hostile_slow_uploads, pids),
        settings.hostile_unread_websockets,
        unread_websockets(settings.hostile_unread_websockets, pids),
    )
