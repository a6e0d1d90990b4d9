"""gevent-websocket's frame writer: whole frames for a socket several greenlets share, and large
frames in pieces that let the worker's other clients run.

1. Whole frames. ``send_frame`` writes header and payload with one ``sendall``, which a gevent
   socket may do in several writes, yielding in between: a frame another greenlet sends meanwhile
   (the chat relay, a close from the broker watcher or the graceful stop) would land inside it and
   corrupt the stream. Each socket gets a lock, taken per frame (kept on its handler: WebSocket
   has __slots__).
2. Large frames in pieces. The stock writer encodes the whole payload, copies it once more behind
   the header and hands it to one ``sendall``, which yields only when the kernel's buffer is full:
   over loopback 16 MiB went out in one go, the worker's other clients waiting 200-340 ms. Here the
   payload is encoded and sent ``CHUNK`` at a time, yielding to the hub whenever the writer has
   run ``wsread.YIELD_EVERY_S`` (the lock keeps the frame whole).

``encode`` (the payload in pieces, compressed when permessage-deflate was agreed) and ``send_lock``
are also the frames of the app's bounded send (labapp/wssend.py ``send_message``: a deadline and a
cap, the message in fragments under the same lock).
"""

from __future__ import annotations

from typing import Any

from gevent.lock import Semaphore
from geventwebsocket.exceptions import WebSocketError
from geventwebsocket.websocket import MSG_ALREADY_CLOSED, MSG_SOCKET_DEAD, Header, WebSocket

from . import Patch, wsdeflate
from .wsread import CHUNK, Pacer

_LOCK = "_lab_send_lock"


def send_lock(handler: Any) -> Semaphore:
    """The lock a frame to ``handler``'s socket is sent under."""
    lock = getattr(handler, _LOCK, None)
    if lock is None:  # no greenlet switch between this look and the assignment
        lock = Semaphore()
        setattr(handler, _LOCK, lock)
    return lock


def made_lock(handler: Any) -> Semaphore | None:
    """``handler``'s send lock if a frame ever needed it (None: no greenlet can be inside a frame)."""
    return getattr(handler, _LOCK, None)


def _pieces(message: Any, opcode: int, pacer: Pacer) -> list[bytes | memoryview]:
    """The payload as the stock writer encodes it, in pieces of about CHUNK bytes."""
    if opcode in (WebSocket.OPCODE_TEXT, WebSocket.OPCODE_PING):
        text = message if isinstance(message, str) else str(message or "")
        encoded: list[bytes | memoryview] = []
        for at in range(0, len(text), CHUNK):
            encoded.append(text[at : at + CHUNK].encode())
            pacer.tick()
        return encoded
    data = memoryview(message if isinstance(message, (bytes, bytearray)) else bytes(message)).cast("B")
    return [data[at : at + CHUNK] for at in range(0, len(data), CHUNK)]


def encode(
    ws: WebSocket, message: Any, opcode: int, pacer: Pacer
) -> tuple[list[bytes | memoryview], int, int]:
    """The payload of one message to ``ws`` in pieces, the frame's flags (RSV1: compressed, when
    permessage-deflate was agreed for a text or binary message) and the message's size before
    compression."""
    pieces = _pieces(message, opcode, pacer)
    size = sum(len(piece) for piece in pieces)
    deflate = wsdeflate.of(ws.handler)
    if deflate is not None and opcode in (WebSocket.OPCODE_TEXT, WebSocket.OPCODE_BINARY):
        return deflate.compress(pieces), wsdeflate.RSV1, size  # type: ignore[return-value]
    return pieces, 0, size


def send_frame(self: WebSocket, message: Any, opcode: int) -> None:
    if self.closed:
        self.current_app.on_close(MSG_ALREADY_CLOSED)
        raise WebSocketError(MSG_ALREADY_CLOSED)
    pacer = Pacer()
    pieces, flags, _ = encode(self, message, opcode, pacer)
    header = bytes(Header.encode_header(True, opcode, b"", sum(len(piece) for piece in pieces), flags))
    with send_lock(self.handler):
        try:
            if len(pieces) <= 1:
                self.raw_write(header + b"".join(pieces))
                return
            self.raw_write(header)
            for piece in pieces:
                self.raw_write(piece)
                pacer.tick()
        except OSError:
            raise WebSocketError(MSG_SOCKET_DEAD) from None


PATCHES = (
    Patch(
        target="geventwebsocket.websocket:WebSocket.send_frame",
        replacement=send_frame,
        why="frames from two greenlets interleaved on one socket (corrupt stream); a large frame "
        "sent in one go stalled the worker's other clients",
        upstream="gevent-websocket (jgelens/gevent-websocket): a per-socket write lock and "
        "chunked sends; unreleased since 0.10.1",
        distribution="gevent-websocket",
        version="0.10.1",
        digest="b2937fb4e8f7",
    ),
)
