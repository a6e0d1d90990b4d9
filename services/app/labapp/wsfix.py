"""Bounded sends to websockets whose peers may stop reading (gevent-websocket's own patches:
labapp/patches/).

``send_frame_within`` and ``close_within``: a peer that stops reading would otherwise park the
sending greenlet for ever; past the deadline the connection is cut instead. ``send_frame_within``
takes a frame encoded once (``text_frame``), which the chat relay sends to many sockets: one
non-blocking send each, with no timer, no lock and no gevent ``sendall`` (which asks the kernel for
SO_SNDBUF on every call) unless the socket is full.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any

import gevent
from geventwebsocket.websocket import Header, WebSocket

from .patches import wssend

# One frame to one peer: a peer that does not take it in this time is cut (its session ends).
SEND_TIMEOUT_S = 5.0


def cut(ws: Any) -> None:
    """Drop the TCP connection under ``ws`` (no close frame: a frame may be half written). The
    handler's pending read then ends, and with it the session."""
    ws.closed = True
    handler = getattr(ws, "handler", None)
    sock = getattr(handler, "socket", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def text_frame(text: str) -> bytes:
    """A whole server-to-client text frame (unmasked), to send to many sockets as it is."""
    payload = text.encode()
    return bytes(Header.encode_header(True, WebSocket.OPCODE_TEXT, b"", len(payload), 0)) + payload


def send_frame_within(ws: Any, frame: bytes) -> bool:
    """``frame`` (from text_frame) to ``ws``; False (and the connection cut) when the peer
    is gone or does not take it within SEND_TIMEOUT_S."""
    handler = getattr(ws, "handler", None)
    sock = getattr(handler, "socket", None)
    if ws.closed or sock is None:
        return False
    lock = wssend.send_lock(handler)
    try:
        sent = 0
        if not lock.locked():
            # No other greenlet is inside a frame: a send that takes it all is atomic (no switch).
            with contextlib.suppress(BlockingIOError):  # full: wait for room below
                sent = sock.send(frame, 0, 0.0)  # timeout 0.0: never waits
            if sent == len(frame):
                return True
        # The lock first, before any switch: the rest of a frame goes out before anyone else's.
        with gevent.Timeout(SEND_TIMEOUT_S), lock:
            sock.sendall(frame[sent:])
        return True
    except (gevent.Timeout, OSError):
        cut(ws)
        return False


def close_within(ws: Any, code: int, reason: str) -> None:
    """A close frame with ``code`` and ``reason``, or the connection cut past SEND_TIMEOUT_S."""
    try:
        with gevent.Timeout(SEND_TIMEOUT_S):
            ws.close(code, reason)
    except (gevent.Timeout, OSError):
        cut(ws)
