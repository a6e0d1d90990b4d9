"""Websocket messages sent with a deadline and a cap: a client that does not read is closed with
a reason, and what was waiting for it is freed.

gevent-websocket's ``send`` writes one frame with ``sendall``, which waits for as long as the peer
does not read: 10 clients that sent a 16 MiB message to /ws/echo and never read the echo pinned
48 MiB of the worker each, for as long as they stayed (issue 28).

Here a message goes out in fragments (RFC 6455 5.4) of FRAGMENT bytes, taken from the message
without copying it whole, each sent as the socket takes it:
- the whole message must be taken within LAB_WS_SEND_TIMEOUT_S; past it no further fragment is
  started, the one in flight is finished, and a close frame follows: 1008 and a reason. A control
  frame may come between fragments, so the stream stays valid for a client that reads later. A
  client that takes neither within the same time again is cut (wsfix.cut).
- a message over LAB_WS_SEND_MAX_BYTES is not sent: 1009 and a reason.
The socket's send lock (labapp.wsfix) is held for the whole message, so no other frame lands
between its fragments.
"""

from __future__ import annotations

import struct
import time
from typing import Any

import gevent
from geventwebsocket.websocket import Header, WebSocket

from . import wsfix

FRAGMENT = 64 * 1024
CLOSE_POLICY_VIOLATION = 1008
CLOSE_MESSAGE_TOO_BIG = 1009


def _frame(fin: bool, opcode: int, payload: bytes | memoryview) -> bytes:
    return bytes(Header.encode_header(fin, opcode, b"", len(payload), 0)) + payload


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


def send_message(ws: Any, message: str | bytes, timeout_s: float, max_bytes: int) -> bool:
    """``message`` to ``ws`` (text for str, binary for bytes); False when it was not sent whole:
    the peer is gone, or it was closed with 1008 (not read in time) or 1009 (over the cap)."""
    handler = getattr(ws, "handler", None)
    sock = getattr(handler, "socket", None)
    if ws.closed or sock is None:
        return False
    payload = memoryview(message.encode() if isinstance(message, str) else message)
    if len(payload) > max_bytes:
        reason = f"a message of {len(payload)} bytes is over the send cap (LAB_WS_SEND_MAX_BYTES)"
        wsfix.close_within(ws, CLOSE_MESSAGE_TOO_BIG, reason)
        return False
    opcode = WebSocket.OPCODE_TEXT if isinstance(message, str) else WebSocket.OPCODE_BINARY
    deadline = time.monotonic() + timeout_s
    try:
        with wsfix.send_lock(ws):
            start = 0
            while True:
                piece = payload[start : start + FRAGMENT]
                last = start + len(piece) >= len(payload)
                frame = _frame(last, opcode if start == 0 else WebSocket.OPCODE_CONTINUATION, piece)
                sent = _send_by(sock, frame, deadline)
                if sent < len(frame):
                    _close_late(ws, sock, frame[sent:], timeout_s)
                    return False
                if last:
                    return True
                start += len(piece)
    except OSError:
        wsfix.cut(ws)
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
        wsfix.cut(ws)
    ws.closed = True  # the handler's next read ends the session (the client's close, or EOF)
