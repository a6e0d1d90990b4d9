"""A Socket.IO client that stops reading (issue 28 on Socket.IO's websocket transport): the worker
emits to it through gevent-websocket's writer as labapp/patches/wssend.py makes it, so past
LAB_WS_SEND_TIMEOUT_S the client is closed with 1008 and the reason, its session ends and what
was queued for it is freed, while the worker's other clients are served throughout.

Real python-socketio clients (its threaded client, websocket-client underneath) on the websocket
transport, straight to one worker's own /socket.io/ port (labapp/sioslots.py): through nginx the
kernel's buffers on both hops (tcp_rmem grows to 32 MiB here) would take much of what the worker
sends, and the port puts every client of the test on the same worker."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import requests
import socketio
import websocket

import labsettings
from labctl import nginx
from labctl.procs import rss_kib
from support.lab import Lab

from . import report

MIB = 1024 * 1024
SEND_TIMEOUT_S = labsettings.WS_SEND_TIMEOUT_S.value()
# Echoes asked for without reading a single answer: each ack is PAYLOAD characters the worker
# must send back (below LAB_SOCKETIO_MAX_MESSAGE, 1 MiB, with its packet around it).
ECHOES = 48
PAYLOAD = 768 * 1024
LATE_S = 3  # the client reads again this long after the deadline
SERVED_BOUND_S = 2.0  # the slowest echo of a client that reads, while the other one does not
BACK_MIB = 16  # what the worker may keep once the session has ended and glibc gave its free pages back
# Engine.IO's ping greenlet holds an ended session, and the packets still queued for it, until its
# next ping is due: the memory comes back within a ping interval of the close.
BACK_WITHIN_S = labsettings.SOCKETIO_PING_INTERVAL.value() + 5
TIMEOUT_S = 10
WINDOW = ((socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024),)  # a client on a slow link


class UnreadSocket(websocket.WebSocket):
    """websocket-client's socket as python-socketio's client uses it (create_connection's
    ``class_``), except that it does not read while ``reading`` is clear, and keeps the close
    frame it gets (python-socketio reports only "transport error")."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.reading = threading.Event()
        self.reading.set()
        self.close_frame: tuple[int, str] | None = None

    def recv(self) -> str | bytes:
        self.reading.wait()
        return super().recv()

    def recv_frame(self) -> websocket.ABNF:
        frame = super().recv_frame()
        if frame.opcode == websocket.ABNF.OPCODE_CLOSE and len(frame.data) >= 2:
            code, reason = int.from_bytes(frame.data[:2], "big"), frame.data[2:].decode(errors="replace")
            self.close_frame = (code, reason)
        return frame


@contextmanager
def client(url: str, **options: object) -> Iterator[socketio.Client]:
    sio = socketio.Client(reconnection=False, request_timeout=TIMEOUT_S, websocket_extra_options=options)
    sio.connect(url, transports=["websocket"], wait_timeout=TIMEOUT_S)
    try:
        yield sio
    finally:
        sio.disconnect()


def worker_of(sio: socketio.Client) -> int:
    return int(sio.call("info", timeout=TIMEOUT_S)["served_by"]["pid"])


def _trimmed_rss_mib(url: str, pid: int) -> float:
    """The worker's RSS once glibc has given its free pages back (POST /debug/malloc-trim on its
    own port): a fresh worker's heap kept up to 53 MiB of the freed echoes without it (labapp/heap.py)."""
    trimmed = requests.post(f"{url}/debug/malloc-trim", timeout=TIMEOUT_S)
    assert trimmed.status_code == 200 and trimmed.json()["served_by"]["pid"] == pid, trimmed.text
    return trimmed.json()["rss_kib_after"] / 1024


def _growth_once_back(url: str, pid: int, before: float) -> float:
    """The worker's growth over ``before`` (MiB, both trimmed) once under BACK_MIB, or after BACK_WITHIN_S."""
    end = time.monotonic() + BACK_WITHIN_S
    while (growth := _trimmed_rss_mib(url, pid) - before) >= BACK_MIB and time.monotonic() < end:
        time.sleep(0.1)
    return growth


def test_a_socketio_client_that_stops_reading_is_closed_1008_and_its_worker_serves_the_others(
    lab: Lab,
) -> None:
    assert lab.direct_url, "this test needs the native stack's worker ports"
    url = f"http://127.0.0.1:{nginx.socketio_ports()[0]}"
    with client(url, sockopt=WINDOW, class_=UnreadSocket) as slow, client(url) as other:
        pid = worker_of(slow)
        assert worker_of(other) == pid, "two clients of one worker's own port on two workers"
        ws: UnreadSocket = slow.eio.ws
        disconnected = threading.Event()
        slow.on("disconnect", lambda *_: disconnected.set())
        before = _trimmed_rss_mib(url, pid)
        acks: list[object] = []
        ws.reading.clear()
        started = time.monotonic()
        for n in range(ECHOES):
            slow.emit("echo", f"{n:08d}" + "x" * PAYLOAD, callback=lambda *data: acks.append(data))
        # Served throughout: the other client's echoes, and the worker's memory, until the slow
        # one has been closed (and some).
        peak, slowest, echoes = before, 0.0, 0
        while time.monotonic() - started < SEND_TIMEOUT_S + LATE_S:
            asked = time.monotonic()
            assert other.call("echo", {"n": echoes}, timeout=TIMEOUT_S) == {"n": echoes}
            slowest = max(slowest, time.monotonic() - asked)
            echoes += 1
            peak = max(peak, rss_kib(pid) / 1024)
            time.sleep(0.2)
        ws.reading.set()
        closed = disconnected.wait(TIMEOUT_S)
        kept = rss_kib(pid) / 1024 - before  # glibc's free pages included
        back = _growth_once_back(url, pid, before)
        assert other.call("echo", "after", timeout=TIMEOUT_S) == "after"
    report.note(
        "a Socket.IO client that stops reading",
        f"{ECHOES} echoes of {PAYLOAD // 1024} KiB unread: closed {ws.close_frame}, {len(acks)} acks taken "
        f"before; worker grew {peak - before:.0f} MiB at the peak, {back:.1f} MiB after ({kept:.1f} at the "
        f"close, untrimmed); the other "
        f"client's slowest of {echoes} echoes {slowest:.2f}s",
    )
    assert closed, "the client that did not read is still connected"
    assert back < BACK_MIB, f"worker {pid} kept {back:.1f} MiB once the session had ended (bound {BACK_MIB})"
    assert ws.close_frame is not None and ws.close_frame[0] == 1008, (
        f"the client that did not read got close {ws.close_frame} (expected 1008 and the reason): "
        "labapp/patches/wssend.py, LAB_WS_SEND_TIMEOUT_S"
    )
    assert "LAB_WS_SEND_TIMEOUT_S" in ws.close_frame[1]
    assert len(acks) < ECHOES, "every ack was taken: this client did not hold the worker up"
    assert slowest < SERVED_BOUND_S, f"the worker's other client waited {slowest:.2f}s for an echo"
