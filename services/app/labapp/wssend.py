"""One frame, encoded once, to many websockets: the chat relay's send, the /ws/chat hello and a
Socket.IO packet's frame (patches/eiows.py: a broadcast's one packet to every client).

Every other send is ``ws.send`` / ``ws.close``, through gevent-websocket's writer as
labapp/patches/wssend.py makes it: the per-socket lock, fragments, the deadline
(LAB_WS_SEND_TIMEOUT_S, close 1008) and the cap (LAB_WS_SEND_MAX_BYTES, close 1009).

``send_frame_within`` takes a frame encoded once (``text_frame``) through the same writer's
``send_whole``: the cap, then one non-blocking send, with no timer, no lock and no gevent
``sendall`` (which asks the kernel for SO_SNDBUF on every call) unless the socket is full; then
the rest under the socket's send lock within the deadline, else 1008 and the reason (or the
connection cut), as for any message.
"""

from __future__ import annotations

from typing import Any

from geventwebsocket.exceptions import WebSocketError
from geventwebsocket.websocket import WebSocket

from .patches import wssend


def text_frame(text: str) -> bytes:
    """A whole server-to-client text frame (unmasked), to send to many sockets as it is."""
    return wssend.frame(True, WebSocket.OPCODE_TEXT, text.encode())


def _payload_size(frame: bytes) -> int:
    """The payload length in a frame's header (RFC 6455 5.2: 7 bits, or 16 or 64 after them)."""
    size = frame[1] & 0x7F
    if size < 126:
        return size
    return int.from_bytes(frame[2:4] if size == 126 else frame[2:10], "big")


def send_frame_within(ws: Any, frame: bytes) -> bool:
    """``frame`` (from text_frame) to ``ws``; False when it was not sent: the peer is gone (the
    connection cut), or it was closed with 1008 (not taken within LAB_WS_SEND_TIMEOUT_S) or 1009
    (over LAB_WS_SEND_MAX_BYTES)."""
    if ws.closed or getattr(getattr(ws, "handler", None), "socket", None) is None:
        return False
    try:
        wssend.send_whole(ws, frame, WebSocket.OPCODE_TEXT, _payload_size(frame))
    except WebSocketError:  # the writer closed it with the reason, or cut it
        return False
    except OSError:  # the peer is gone
        wssend.cut(ws)
        return False
    return True
