"""gevent-websocket 0.10.1, made right for a server whose greenlets share sockets.

1. A correct close frame. Its ``WebSocket.close(code, message)`` ignores ``code`` and sends
   ``str(message)`` as the payload, so a server close carries no status (clients report 1005) and
   echoing a client's close with a reason sends ``b'...'`` where the status belongs (clients fail
   with "invalid close code"). Reported upstream as jgelens/gevent-websocket PR #6 (2018, unmerged).
2. Whole frames. ``send_frame`` writes header and payload with one ``sendall``, which a gevent
   socket may do in several writes, yielding in between: a frame another greenlet sends meanwhile
   (the chat relay, a close from the broker watcher or the graceful stop) would land inside it and
   corrupt the stream. Each socket gets a lock, taken per frame (kept on its handler: WebSocket
   has __slots__).
3. Bounded sends (``send_frame_within``, ``close_within``): a peer that stops reading would otherwise
   park the sending greenlet for ever; past the deadline the connection is cut instead.
   ``send_frame_within`` takes a frame encoded once (``text_frame``), which the chat relay sends
   to many sockets: one non-blocking send each, with no timer, no lock and no gevent
   ``sendall`` (which asks the kernel for SO_SNDBUF on every call) unless the socket is full.
4. Upgrades for websocket routes only (LAB_FIX_WS_UPGRADE): its handler answers 101 to a handshake
   for any path before the app routes it, so a mistyped path or a route declared without
   ``websocket=True`` "connects, then drops" (101, then a close). Asked first, the app's URL map
   decides: anything but a websocket route is answered by the app like any other request (404 for
   no route, 400 for a plain one), never upgraded.
5. Bounded bodies under ``Connection: upgrade`` (LAB_FIX_UPGRADE_INPUT). gevent's pywsgi takes
   any request saying that header for an upgrade and hands the app the socket itself as
   wsgi.input, with ``wsgi.input_terminated = False``; Werkzeug checks only that the key is
   *present*, trusts the socket as a terminated stream and reads it to its end, which on a
   keep-alive connection never comes: a POST hangs until some timeout. A proxy sends that header
   on every request when it sets ``Connection "upgrade"`` instead of the $connection_upgrade map
   (connection-upgrade-always). Unless the request is a websocket handshake, the app gets the
   handler's own body reader instead (bounded by Content-Length or the chunked framing, the one
   the handler discards the rest of after the response).
6. Once upgraded, the handler drops its parsed request headers (kept in the environ anyway).
"""

from __future__ import annotations

import contextlib
import socket
import struct
from typing import Any

import gevent
from gevent.lock import Semaphore
from geventwebsocket.exceptions import WebSocketError
from geventwebsocket.handler import WebSocketHandler
from geventwebsocket.websocket import Header, WebSocket
from werkzeug.exceptions import HTTPException

import labsettings

_stock_upgrade = WebSocketHandler.upgrade_websocket
_stock_get_environ = WebSocketHandler.get_environ

_LOCK = "_lab_send_lock"
# One frame to one peer: a peer that does not take it in this time is cut (its session ends).
SEND_TIMEOUT_S = labsettings.WS_SEND_TIMEOUT_S.value()
_original_send_frame = WebSocket.send_frame


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
    if self.environ.get("HTTP_UPGRADE", "").lower() != "websocket":
        return None  # no handshake (the stock check, first): not worth matching the URL for
    url_map = getattr(self.application, "url_map", None)
    if url_map is not None and not is_websocket_route(url_map, self.environ):
        return None  # not upgraded: the app answers it as a plain request
    return _upgrade_releasing_headers(self)


def _upgrade_releasing_headers(self: WebSocketHandler) -> Any:
    result = _stock_upgrade(self)
    if hasattr(self, "websocket"):
        # Upgraded: the parsed request headers (an email.message.Message) are in the environ
        # already and nothing reads them again, yet the handler would keep them for the socket's
        # life: 2.4 KiB of every idle websocket (make bench: ws.kib_per_connection).
        self.headers = type(self).headers
    return result


def _send_lock(handler: Any) -> Semaphore:
    lock = getattr(handler, _LOCK, None)
    if lock is None:  # no greenlet switch between this look and the assignment
        lock = Semaphore()
        setattr(handler, _LOCK, lock)
    return lock


def send_lock(ws: Any) -> Semaphore:
    """The lock a sender holds for a whole frame (or a fragmented message: labapp.wssend)."""
    return _send_lock(ws.handler)


def _send_whole_frame(self: WebSocket, message: Any, opcode: int) -> None:
    with _send_lock(self.handler):
        _original_send_frame(self, message, opcode)


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
    lock = _send_lock(handler)
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


def _environ_with_bounded_input(self: WebSocketHandler) -> dict[str, Any]:
    environ: dict[str, Any] = _stock_get_environ(self)
    if (
        environ.get("wsgi.input_terminated") is False
        and environ.get("HTTP_UPGRADE", "").lower() != "websocket"
    ):
        environ["wsgi.input"] = self.wsgi_input
        environ["wsgi.input_terminated"] = True
    return environ


def install(route_aware_upgrade: bool, bounded_upgrade_input: bool) -> None:
    WebSocket.close = _close
    WebSocket.send_frame = _send_whole_frame
    WebSocketHandler.upgrade_websocket = (
        _upgrade_websocket_routes_only if route_aware_upgrade else _upgrade_releasing_headers
    )
    WebSocketHandler.get_environ = (
        _environ_with_bounded_input if bounded_upgrade_input else _stock_get_environ
    )
