"""One frame, encoded once, to many websockets: the chat relay's send (and the /ws/chat hello).

Every other send is ``ws.send`` / ``ws.close``, through gevent-websocket's writer as
labapp/patches/wssend.py makes it: the per-socket lock, fragments, the deadline
(LAB_WS_SEND_TIMEOUT_S, close 1008) and the cap (LAB_WS_SEND_MAX_BYTES, close 1009).

``send_frame_within`` takes a frame encoded once (``text_frame``), which the chat relay sends to
many sockets: one non-blocking send each, with no timer, no lock and no gevent ``sendall`` (which
asks the kernel for SO_SNDBUF on every call) unless the socket is full; then the rest under the
socket's send lock within the same deadline, else the connection is cut (its session ends).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from geventwebsocket.exceptions import WebSocketError
from geventwebsocket.websocket import WebSocket

from .patches import wssend


def text_frame(text: str) -> bytes:
    """A whole server-to-client text frame (unmasked), to send to many sockets as it is."""
    return wssend.frame(True, WebSocket.OPCODE_TEXT, text.encode())


def send_frame_within(ws: Any, frame: bytes) -> bool:
    """``frame`` (from text_frame) to ``ws``; False (and the connection cut) when the peer
    is gone or does not take it within LAB_WS_SEND_TIMEOUT_S."""
    handler = getattr(ws, "handler", None)
    sock = getattr(handler, "socket", None)
    if ws.closed or sock is None:
        return False
    try:
        sent = 0
        if not wssend.send_lock(handler).locked():
            # No other greenlet is inside a message: a send that takes it all is atomic (no switch).
            with contextlib.suppress(BlockingIOError):  # full: wait for room below
                sent = sock.send(frame, 0, 0.0)  # timeout 0.0: never waits
            if sent == len(frame):
                return True
        # The lock first, before any switch: the rest of a frame goes out before anyone else's.
        deadline = time.monotonic() + wssend.SEND_TIMEOUT_S
        with wssend.holding_lock(ws, deadline):
            rest = frame[sent:]
            if wssend.send_by(sock, rest, deadline) == len(rest):
                return True
    except (WebSocketError, OSError):
        pass
    wssend.cut(ws)
    return False
