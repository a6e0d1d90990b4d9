"""gevent-websocket's close frames: the status code sent, and the codes accepted.

1. A correct close frame. Its ``WebSocket.close(code, message)`` ignores ``code`` and sends
   ``str(message)`` as the payload, so a server close carries no status (clients report 1005) and
   echoing a client's close with a reason sends ``b'...'`` where the status belongs (clients fail
   with "invalid close code").
2. Close codes as RFC 6455 (section 7.4) and IANA's WebSocket Close Code Number Registry say.
   gevent-websocket 0.10.1 refuses the registered 1012 (service restart), 1013 (try again later) and
1014 (bad gateway) with 1002, and accepts, echoing it back, any code from 1017 to 1999 (but
1100) and every code of 5000 and over, which no one may send. Here a close frame's code is
accepted when it is one an endpoint may send: 1000-1003, 1007-1014 (registered), 3000-4999
(libraries and applications); every other code (0-999, the reserved 1004-1006 and 1015, the
unassigned 1016-2999, 5000 and over) is a protocol error (1002).
"""

from __future__ import annotations

import struct
from enum import IntEnum

from geventwebsocket.exceptions import WebSocketError
from geventwebsocket.websocket import WebSocket

import labsettings

from . import Patch

# The codes an endpoint may put in a close frame (inclusive ranges).
SENDABLE = ((1000, 1003), (1007, 1014), (3000, 4999))


class Close(IntEnum):
    """The close codes the app sends (RFC 6455 section 7.4.1, IANA's registry): declared here only."""

    NORMAL = 1000
    GOING_AWAY = 1001  # the worker stops (graceful stop, reload): reconnect
    PROTOCOL_ERROR = 1002
    INVALID_PAYLOAD = 1007  # invalid UTF-8 in a text message
    POLICY_VIOLATION = 1008  # a message not read within LAB_WS_SEND_TIMEOUT_S; a foreign Origin
    MESSAGE_TOO_BIG = 1009  # over LAB_WS_MAX_MESSAGE (read) or LAB_WS_SEND_MAX_BYTES (sent)
    TRY_AGAIN_LATER = 1013  # the chat's broker is unreachable


def payload(code: int, message: bytes | str | None = b"") -> bytes:
    """A close frame's payload: the status code, then the reason cut to fit a control frame (at
    most 125 bytes: the code's 2 and 123 of reason), never inside a UTF-8 character."""
    reason = message.encode() if isinstance(message, str) else (message or b"")
    return struct.pack("!H", code) + reason[:123].decode("utf-8", "ignore").encode()


def close(self: WebSocket, code: int = Close.NORMAL, message: bytes | str | None = b"") -> None:
    if self.closed:
        return
    try:
        self.send_frame(payload(code, message), opcode=self.OPCODE_CLOSE)
    except WebSocketError:
        pass  # the peer is gone; the socket is closed by the handler either way
    finally:
        self.closed = True
        self.stream = self.raw_write = self.raw_read = self.environ = None


def is_valid_close_code(self: WebSocket, code: int) -> bool:
    return any(low <= code <= high for low, high in SENDABLE)


PATCHES = (
    Patch(
        target="geventwebsocket.websocket:WebSocket.close",
        replacement=close,
        why="close(code, reason) sends str(reason) where the status code belongs",
        upstream="gevent-websocket: jgelens/gevent-websocket pull request 6 (2018, unmerged)",
        distribution="gevent-websocket",
        version="0.10.1",
        digest="528338fe180a",
    ),
    Patch(
        target="geventwebsocket.websocket:WebSocket._is_valid_close_code",
        replacement=is_valid_close_code,
        why="1012-1014 (registered) refused with 1002; 1016-2999 and 5000+ (not sendable) echoed back",
        upstream="gevent-websocket (jgelens/gevent-websocket, websocket.py _is_valid_close_code): "
        "unreleased since 0.10.1",
        distribution="gevent-websocket",
        version="0.10.1",
        digest="a7c8ddcd7cde",
        setting=labsettings.FIX_WS_CLOSE_CODES,
    ),
)
