"""Two repairs to gevent-websocket 0.10.1, applied by create_app().

A correct close frame: its ``WebSocket.close(code, message)`` ignores ``code`` and sends
``str(message)`` as the payload, so a server close carries no status (clients report 1005) and
echoing a client's close with a reason sends ``b'...'`` where the status belongs (clients fail
with "invalid close code"). Reported upstream as jgelens/gevent-websocket PR #6 (2018, unmerged).

Upgrades for websocket routes only (LAB_FIX_WS_UPGRADE): its handler answers 101 to a handshake
for any path before the app routes it, so a mistyped path or a route declared without
``websocket=True`` "connects, then drops" (101, then a close). Asked first, the app's URL map
decides: anything but a websocket route is answered by the app like any other request (404 for
no route, 400 for a plain one), never upgraded.
"""

from __future__ import annotations

import struct
from typing import Any

from geventwebsocket.exceptions import WebSocketError
from geventwebsocket.handler import WebSocketHandler
from geventwebsocket.websocket import WebSocket
from werkzeug.exceptions import HTTPException

_stock_upgrade = WebSocketHandler.upgrade_websocket


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


def is_websocket_route(url_map: Any, environ: dict[str, Any]) -> bool:
    """Whether the app's URL map routes this request to a rule declared with websocket=True."""
    try:
        rule, _ = url_map.bind_to_environ(environ).match(return_rule=True, websocket=True)
    except HTTPException:  # no route (404), a plain route (WebsocketMismatch), a wrong method
        return False
    return bool(rule.websocket)


def _upgrade_websocket_routes_only(self: WebSocketHandler) -> Any:
    url_map = getattr(self.application, "url_map", None)
    if url_map is not None and not is_websocket_route(url_map, self.environ):
        return None  # not upgraded: the app answers it as a plain request
    return _stock_upgrade(self)


def install(route_aware_upgrade: bool) -> None:
    WebSocket.close = _close
    WebSocketHandler.upgrade_websocket = (
        _upgrade_websocket_routes_only if route_aware_upgrade else _stock_upgrade
    )
