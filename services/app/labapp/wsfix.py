"""A correct close frame for gevent-websocket 0.10.1.

Its ``WebSocket.close(code, message)`` ignores ``code`` and sends ``str(message)`` as the payload,
so a server close carries no status (clients report 1005) and echoing a client's close with a
reason sends ``b'...'`` where the status belongs (clients fail with "invalid close code").
Reported upstream as jgelens/gevent-websocket PR #6 (2018, unmerged). Applied by create_app().
"""

from __future__ import annotations

import struct

from geventwebsocket.exceptions import WebSocketError
from geventwebsocket.websocket import WebSocket


def _close(self: WebSocket, code: int = 1000, message: bytes | str | None = b"") -> None:
    if self.closed:
        return
    reason = message.encode() if isinstance(message, str) else (message or b"")
    try:
        # A control frame carries at most 125 bytes: the status code and 123 of reason.
        self.send_frame(struct.pack("!H", code) + reason[:123], opcode=self.OPCODE_CLOSE)
    except WebSocketError:
        pass  # the peer is gone; the socket is closed by the handler either way
    finally:
        self.closed = True
        self.stream = self.raw_write = self.raw_read = self.environ = None


def install() -> None:
    WebSocket.close = _close
