"""Websocket sends bounded in time and size, to peers that may stop reading: a client that does
not read is closed with a reason, or cut, and what was waiting for it is freed. The frames
themselves (encoding, permessage-deflate, the per-socket lock, pieces that yield) are
gevent-websocket's writer as labapp/patches/wssend.py makes it.

gevent-websocket's ``send`` writes one frame with ``sendall``, which waits for as long as the peer
does not read: 10 clients that sent a 16 MiB message to /ws/echo and never read the echo pinned
48 MiB of the worker each, for as long as they stayed (issue 28).

- ``send_message`` (the echo and info routes): a message goes out in fragments (RFC 6455 5.4) of
  FRAGMENT bytes, taken from the encoded message without copying it whole, each sent as the
  socket takes it, under the socket's send lock for the whole message (no other frame lands
  between its fragments):
  - the whole message must be taken within LAB_WS_SEND_TIMEOUT_S; past it no further fragment is
    started, the one in flight is finished, and a close frame follows: 1008 and a reason. A
    control frame may come between fragments, so the stream stays valid for a client that reads
    later. A client that takes neither within the same time again is cut (``cut``).
  - a message over LAB_WS_SEND_MAX_BYTES is not sent: 1009 and a reason.
- ``send_frame_within`` takes a frame encoded once (``text_frame``), which the chat relay sends
  to many sockets: one non-blocking send each, with no timer, no lock and no gevent ``sendall``
  (which asks the kernel for SO_SNDBUF on every call) unless the socket is full; past
  SEND_TIMEOUT_S the connection is cut.
- ``close_within``: a close frame, or the connection cut past SEND_TIMEOUT_S.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from typing import Any

import gevent
from geventwebsocket.websocket import Header, WebSocket

import labsettings

from .patches import wssend
from .patches.wsread import Pacer

FRAGMENT = 64 * 1024
CLOSE_POLICY_VIOLATION = 1008
CLOSE_MESSAGE_TOO_BIG = 1009
# One frame to one peer: a peer that does not take it in this time is cut (its session ends).
SEND_TIMEOUT_S = labsettings.WS_SEND_TIMEOUT_S.value()


def cut(ws: Any) -> None:
    """Drop the TCP connection under ``ws`` (no close frame: a frame may be half written). The
    handler's pending read then ends, and with it the session."""
    ws.closed = True
    handler = getattr(ws, "handler", None)
    sock = getattr(handler, "socket", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _frame(fin: bool, opcode: int, payload: bytes | memoryview, flags: int = 0) -> bytes:
    return bytes(Header.encode_header(fin, opcode, b"", len(payload), flags)) + payload


def text_frame(text: str) -> bytes:
    """A whole server-to-client text frame (unmasked), to send to many sockets as it is."""
    return _frame(True, WebSocket.OPCODE_TEXT, text.encode())


def send_frame_within(ws: Any, frame: bytes) -> bool:
    """``frame`` (from text_frame) to ``ws``; False (and the connection cut) when the peer
    is gone or does not take it within SEND_TIMEOUT_S."""
    handler = getattr(ws, "handler", None)
    sock = getattr(handler, "socket", None)
    if ws.closed or sock is None:
        return False
    made = wssend.made_lock(handler)  # made only when needed: a Semaphore is 1.5 KiB a socket
    try:
        sent = 0
        if made is None or not made.locked():
            # No other greenlet is inside a frame: a send that takes it all is atomic (no switch).
            with contextlib.suppress(BlockingIOError):  # full: wait for room below
                sent = sock.send(frame, 0, 0.0)  # timeout 0.0: never waits
            if sent == len(frame):
                return True
        # The lock first, before any switch: the rest of a frame goes out before anyone else's.
        with gevent.Timeout(SEND_TIMEOUT_S), wssend.send_lock(handler):
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


def _send_by(sock: Any, data: bytes, deadline: float) -> int:
    """Sends ``data`` until the deadline; how much the socket took. A timeout fires only while
    waiting for room, so the count is exact."""
    view = memoryview(data)
    sent = 0
    try:
        while sent < len(view):
            with gevent.Timeout(max(0.0, deadline - time.monotonic())):
                sent += sock.send(view[sent:])
    except gevent.Timeout:
        pass
    return sent


def _fragments(pieces: list[bytes | memoryview]) -> list[memoryview]:
    """The encoded payload as views of at most FRAGMENT bytes (at least one, maybe empty)."""
    views = [memoryview(piece).cast("B") for piece in pieces]
    return [view[at : at + FRAGMENT] for view in views for at in range(0, len(view), FRAGMENT)] or [
        memoryview(b"")
    ]


def send_message(ws: Any, message: str | bytes, timeout_s: float, max_bytes: int) -> bool:
    """``message`` to ``ws`` (text for str, binary for bytes); False when it was not sent whole:
    the peer is gone, or it was closed with 1008 (not read in time) or 1009 (over the cap)."""
    handler = getattr(ws, "handler", None)
    sock = getattr(handler, "socket", None)
    if ws.closed or sock is None:
        return False
    opcode = WebSocket.OPCODE_TEXT if isinstance(message, str) else WebSocket.OPCODE_BINARY
    pacer = Pacer()
    pieces, flags, size = wssend.encode(ws, message, opcode, pacer)
    if size > max_bytes:
        reason = f"a message of {size} bytes is over the send cap (LAB_WS_SEND_MAX_BYTES)"
        close_within(ws, CLOSE_MESSAGE_TOO_BIG, reason)
        return False
    fragments = _fragments(pieces)
    deadline = time.monotonic() + timeout_s
    try:
        with wssend.send_lock(handler):
            for index, piece in enumerate(fragments):
                last = index == len(fragments) - 1
                first = index == 0
                frame = _frame(
                    last, opcode if first else WebSocket.OPCODE_CONTINUATION, piece, flags if first else 0
                )
                sent = _send_by(sock, frame, deadline)
                if sent < len(frame):
                    _close_late(ws, sock, frame[sent:], timeout_s)
                    return False
                pacer.tick()
        return True
    except OSError:
        cut(ws)
        return False


def _close_late(ws: Any, sock: Any, rest: bytes, timeout_s: float) -> None:
    """The fragment in flight finished, then 1008 with a reason; the connection cut if the peer
    takes neither within ``timeout_s`` more. Called holding the send lock."""
    reason = f"the client did not read a message within {timeout_s:g} s (LAB_WS_SEND_TIMEOUT_S)"
    status = struct.pack("!H", CLOSE_POLICY_VIOLATION)
    close = _frame(True, WebSocket.OPCODE_CLOSE, status + reason.encode()[:123])
    deadline = time.monotonic() + timeout_s
    data = rest + close
    if _send_by(sock, data, deadline) < len(data):
        cut(ws)
    ws.closed = True  # the handler's next read ends the session (the client's close, or EOF)
