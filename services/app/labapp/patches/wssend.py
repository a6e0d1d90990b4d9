"""gevent-websocket's frame writer: whole frames for a socket several greenlets share, large
messages in pieces that let the worker's other clients run, and every send bounded in time and
size (issue 28). Every frame the app sends goes through it: Socket.IO's websocket transport
(``ws.send``, or a packet's frame built once, patches/eiows.py), the echo and info routes, pongs
and close frames; frames encoded once for many sockets (labapp/wssend.py: the chat relay, a
Socket.IO broadcast) through ``send_whole``, with the same lock, cap, deadline and close.

1. Whole frames. gevent-websocket writes header and payload with one ``sendall``, which a gevent
   socket may do in several writes, yielding in between: a frame another greenlet sends meanwhile
   (the chat relay, a close from the broker watcher or the graceful stop) would land inside it and
   corrupt the stream. Each socket gets a lock, taken per message (kept on its handler: WebSocket
   has __slots__). It is made only when needed (a Semaphore is 1.5 KiB a socket): a message of one
   frame, while no other greenlet is inside a frame, goes out with one non-blocking send, which
   does not switch; only what the socket does not take at once is sent under the lock.
2. Large messages in pieces. The stock writer encodes the whole payload, copies it once more
   behind the header and hands it to one ``sendall``, which yields only when the kernel's buffer
   is full: over loopback 16 MiB went out in one go, the worker's other clients waiting 200-340 ms.
   Here a text or binary message is encoded ``CHUNK`` at a time and sent in fragments (RFC 6455
   5.4) of ``FRAGMENT`` bytes, each as the socket takes it, yielding to the hub whenever the writer
   has run ``wsread.YIELD_EVERY_S``; the lock is held for the whole message (nothing lands between
   its fragments), and a message of at most FRAGMENT bytes is the stock writer's one frame.
3. A deadline (LAB_WS_SEND_TIMEOUT_S). ``sendall`` waits for as long as the peer does not read: 10
   clients that sent a 16 MiB message to /ws/echo and never read the echo pinned 48 MiB of the
   worker each, for as long as they stayed, and a Socket.IO client that stops reading holds its
   session's writer and every packet queued behind it. Here each message must be taken within
   SEND_TIMEOUT_S of its send (waiting for the lock included). Past it no further fragment is
   started, the one in flight is finished and a close frame follows, 1008 and the reason, within
   the same time again; then the connection is ended (what the kernel still holds for the client
   goes out before the FIN, and the session's pending read ends with it). A peer that takes
   neither in time, or a control frame (a pong, a close) not taken in time, is cut (``cut``).
4. A cap (LAB_WS_SEND_MAX_BYTES). A text or binary message over SEND_MAX_BYTES is not sent: close
   1009 and the reason.

A message that was not sent whole raises WebSocketError, as the stock writer does for a dead peer
(``WebSocket.send`` then raises its own, which Engine.IO's writer and labapp's routes take as the
end of the session).
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator, Sequence
from typing import Any

import gevent
from gevent.lock import Semaphore
from geventwebsocket.exceptions import WebSocketError
from geventwebsocket.websocket import MSG_ALREADY_CLOSED, MSG_SOCKET_DEAD, Header, WebSocket

import labsettings

from . import Patch, wsdeflate
from .wsclose import Close, payload
from .wsread import CHUNK, Pacer

FRAGMENT = 64 * 1024
# Read once per process, as the patches are installed once.
SEND_TIMEOUT_S = labsettings.WS_SEND_TIMEOUT_S.value()
SEND_MAX_BYTES = labsettings.WS_SEND_MAX_BYTES.value()
_DATA = (WebSocket.OPCODE_TEXT, WebSocket.OPCODE_BINARY)
_LOCK = "_lab_send_lock"


def send_lock(handler: Any) -> Semaphore:
    """The lock a message to ``handler``'s socket is sent under."""
    lock = getattr(handler, _LOCK, None)
    if lock is None:  # no greenlet switch between this look and the assignment
        lock = Semaphore()
        setattr(handler, _LOCK, lock)
    return lock


def made_lock(handler: Any) -> Semaphore | None:
    """``handler``'s send lock if a frame ever needed it (None: no greenlet can be inside a frame)."""
    return getattr(handler, _LOCK, None)


def frame(fin: bool, opcode: int, data: bytes | memoryview, flags: int = 0) -> bytes:
    """One unmasked (server-to-client) frame."""
    return bytes(Header.encode_header(fin, opcode, b"", len(data), flags)) + data


def cut(ws: Any) -> None:
    """End the TCP connection under ``ws`` with no further frame (one may be half written): what
    the kernel holds for the peer still goes out before the FIN, and the session's pending read
    ends (EOF), and with it the session."""
    ws.closed = True
    sock = getattr(getattr(ws, "handler", None), "socket", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def send_by(sock: Any, data: bytes | memoryview, deadline: float) -> int:
    """Sends ``data`` until the deadline (time.monotonic); how much the socket took. No timer
    unless the socket is full (most sends: one non-blocking send); a timeout fires only while
    waiting for room, so the count is exact."""
    view = memoryview(data)
    sent = 0
    with contextlib.suppress(BlockingIOError):  # full: wait for room below
        sent = sock.send(view, 0, 0.0)  # timeout 0.0: never waits
    try:
        while sent < len(view):
            with gevent.Timeout(max(0.0, deadline - time.monotonic()), TimeoutError):
                sent += sock.send(view[sent:])
    except TimeoutError:
        pass
    return sent


@contextlib.contextmanager
def holding_lock(ws: Any, deadline: float) -> Iterator[None]:
    """The socket's send lock, waited for until ``deadline``; past it the socket is closed to
    further sends (WebSocketError). The greenlet holding it is on a peer that does not read, and
    is bounded itself: it ends the connection with 1008 and the reason, or cuts it; cutting it
    here would lose that close frame (several greenlets send to a Socket.IO session at once)."""
    lock = send_lock(ws.handler)
    if not lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
        ws.closed = True
        raise WebSocketError(f"the socket was not free to send within {SEND_TIMEOUT_S:g} s")
    try:
        yield
    finally:
        lock.release()


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


def _frames(ws: WebSocket, pieces: Sequence[bytes | memoryview], opcode: int) -> Iterator[bytes]:
    """The message's frames, one at a time (a copy of one fragment at most): a control frame
    whole; a text or binary message in fragments of at most FRAGMENT bytes (compressed first when
    permessage-deflate was agreed: RSV1 on the first)."""
    if opcode not in _DATA:
        yield frame(True, opcode, b"".join(pieces))
        return
    flags = 0
    deflate = wsdeflate.of(ws.handler)
    if deflate is not None:  # under the lock: the compressor's stream runs in the order sent
        pieces, flags = deflate.compress(pieces), wsdeflate.RSV1
    views = [memoryview(piece).cast("B") for piece in pieces]
    fragments = [view[at : at + FRAGMENT] for view in views for at in range(0, len(view), FRAGMENT)]
    fragments = fragments or [memoryview(b"")]
    last = len(fragments) - 1
    for index, piece in enumerate(fragments):
        yield frame(
            index == last, WebSocket.OPCODE_CONTINUATION if index else opcode, piece, 0 if index else flags
        )


def send_frame(self: WebSocket, message: Any, opcode: int) -> None:
    if self.closed:
        self.current_app.on_close(MSG_ALREADY_CLOSED)
        raise WebSocketError(MSG_ALREADY_CLOSED)
    deadline = time.monotonic() + SEND_TIMEOUT_S
    pacer = Pacer()
    pieces = _pieces(message, opcode, pacer)
    size = sum(len(piece) for piece in pieces)
    _within_cap(self, opcode, size)
    try:
        if opcode not in _DATA or (size <= FRAGMENT and wsdeflate.of(self.handler) is None):
            _send_alone(self, frame(True, opcode, b"".join(pieces)), opcode, deadline)
            return
        with holding_lock(self, deadline):
            for data in _frames(self, pieces, opcode):
                _send_or_late(self, data, opcode, deadline)
                pacer.tick()
    except WebSocketError:  # an OSError too
        raise
    except OSError:
        raise WebSocketError(MSG_SOCKET_DEAD) from None


def send_whole(ws: WebSocket, data: bytes, opcode: int, size: int) -> None:
    """``data``, one whole frame already built (``size`` bytes of payload: a frame encoded once
    for many sockets), under the cap and the deadline as ``send_frame`` sends a message; raises
    WebSocketError (an OSError) when it was not sent."""
    deadline = time.monotonic() + SEND_TIMEOUT_S
    _within_cap(ws, opcode, size)
    _send_alone(ws, data, opcode, deadline)


def _within_cap(ws: WebSocket, opcode: int, size: int) -> None:
    """A text or binary message over SEND_MAX_BYTES is not sent: close 1009 and the reason."""
    if opcode in _DATA and size > SEND_MAX_BYTES:
        reason = f"a message of {size} bytes is over the send cap (LAB_WS_SEND_MAX_BYTES)"
        ws.close(Close.MESSAGE_TOO_BIG, reason)
        raise WebSocketError(reason)


def _send_alone(ws: WebSocket, data: bytes, opcode: int, deadline: float) -> None:
    """A message that is one frame. While no other greenlet is inside a frame (the socket's lock
    never made, or free) one non-blocking send that takes it all is atomic: no lock, no timer (a
    Semaphore is 1.5 KiB a socket, made only when needed). Otherwise the rest under the lock,
    taken before any switch, so the rest of the frame goes out before anyone else's."""
    sock = ws.handler.socket
    sent = 0
    made = made_lock(ws.handler)
    if made is None or not made.locked():
        with contextlib.suppress(BlockingIOError):  # full: the rest under the lock below
            sent = sock.send(data, 0, 0.0)  # timeout 0.0: never waits
        if sent == len(data):
            return
    with holding_lock(ws, deadline):
        _send_or_late(ws, data[sent:], opcode, deadline)


def _send_or_late(ws: WebSocket, data: bytes, opcode: int, deadline: float) -> None:
    """``data`` by the deadline, else the message is late (``_late``: WebSocketError)."""
    sock = ws.handler.socket
    sent = send_by(sock, data, deadline)
    if sent < len(data):
        raise WebSocketError(_late(ws, sock, data[sent:], opcode))


def _late(ws: WebSocket, sock: Any, rest: bytes, opcode: int) -> str:
    """A message not taken by its deadline: the fragment in flight finished and 1008 with the
    reason, within SEND_TIMEOUT_S more, then the connection ended (a control frame: cut at once).
    Called holding the send lock; the reason returned."""
    reason = f"the client did not read a message within {SEND_TIMEOUT_S:g} s (LAB_WS_SEND_TIMEOUT_S)"
    if opcode in _DATA:
        data = rest + frame(True, WebSocket.OPCODE_CLOSE, payload(Close.POLICY_VIOLATION, reason))
        send_by(sock, data, time.monotonic() + SEND_TIMEOUT_S)
    cut(ws)
    return reason


PATCHES = (
    Patch(
        target="geventwebsocket.websocket:WebSocket.send_frame",
        replacement=send_frame,
        why="frames from two greenlets interleaved on one socket (corrupt stream); a large frame "
        "sent in one go stalled the worker's other clients; a peer that does not read held the "
        "sender, and all it had to send, for as long as it stayed",
        upstream="gevent-websocket (jgelens/gevent-websocket): a per-socket write lock, chunked "
        "sends and a send timeout; unreleased since 0.10.1",
        distribution="gevent-websocket",
        version="0.10.1",
        digest="b2937fb4e8f7",
    ),
)
