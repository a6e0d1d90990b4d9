"""Close codes as RFC 6455 (section 7.4) and IANA's WebSocket Close Code Number Registry say.

gevent-websocket 0.10.1 refuses the registered 1012 (service restart), 1013 (try again later) and
1014 (bad gateway) with 1002, and accepts, echoing it back, any code from 1017 to 1999 (but
1100) and every code of 5000 and over, which no one may send. Here a close frame's code is
accepted when it is one an endpoint may send: 1000-1003, 1007-1014 (registered), 3000-4999
(libraries and applications); every other code (0-999, the reserved 1004-1006 and 1015, the
unassigned 1016-2999, 5000 and over) is a protocol error (1002).
"""

from __future__ import annotations

from geventwebsocket.websocket import WebSocket

import labsettings

from . import Patch

# The codes an endpoint may put in a close frame (inclusive ranges).
SENDABLE = ((1000, 1003), (1007, 1014), (3000, 4999))


def is_valid_close_code(self: WebSocket, code: int) -> bool:
    return any(low <= code <= high for low, high in SENDABLE)


PATCHES = (
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
