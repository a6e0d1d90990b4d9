"""WebSocket routes (gevent-websocket): echo, chat and info."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import gevent
from flask import Blueprint, Response, abort, current_app, g, request
from gevent import GreenletExit
from gevent.lock import Semaphore
from geventwebsocket.exceptions import ProtocolError, WebSocketError

WS_KEY = "wsgi.websocket"
CLOSE_GOING_AWAY = 1001
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_INVALID_PAYLOAD = 1007
CLOSE_MESSAGE_TOO_BIG = 1009
# How much of a refused over-limit frame is read and thrown away before closing, at most.
DISCARD_CHUNK = 64 * 1024
DISCARD_MAX_BYTES = 4 * 1024 * 1024
DISCARD_SECONDS = 1.0


def _socket() -> Any:
    ws = request.environ.get(WS_KEY)
    if ws is None:
        # A plain GET to a route without websocket=True, or a worker that cannot upgrade (sync, gevent).
        abort(
            400,
            "no websocket on this request: connect with a websocket client, "
            "through a worker that upgrades (gevent-websocket)",
        )
    return ws


class BoundedReceiver:
    """``ws.receive()`` with a cap on one message's size (LAB_WS_MAX_MESSAGE, close 1009) and
    close frames that say why (1007 invalid UTF-8, 1002 protocol error).

    gevent-websocket reads whatever length a frame header announces straight into memory: one
    frame announcing 4 GiB would take 4 GiB of worker memory.
    """

    def __init__(self, ws: Any, max_bytes: int) -> None:
        self.ws = ws
        self.max_bytes = max_bytes
        self._left = max_bytes
        self._exceeded = False
        self._read = ws.raw_read
        ws.raw_read = self._bounded_read  # the payload reader; frame headers use ws.stream

    def _bounded_read(self, size: int) -> bytes:
        if size > self._left:
            self._exceeded = True
            return b""  # a short read: read_frame raises WebSocketError without reading on
        self._left -= size
        return self._read(size)

    def _discard_unread(self) -> None:
        """Read (a bounded part of) the refused payload before the handler closes the socket:
        closing with unread data sends a TCP RST, which can make nginx drop the 1009 close frame
        it has not yet relayed (seen in about 1 of 3 runs of test_websocket_limits.py)."""
        sock = self.ws.handler.socket
        with gevent.Timeout(DISCARD_SECONDS, False):
            for _ in range(DISCARD_MAX_BYTES // DISCARD_CHUNK):
                if not sock.recv(DISCARD_CHUNK):
                    return

    def receive(self) -> str | bytes | None:
        """The next message, or None once the socket is closed (by the peer or by a refusal)."""
        self._left = self.max_bytes
        try:
            return self.ws.read_message()
        except UnicodeError:
            self.ws.close(CLOSE_INVALID_PAYLOAD, b"invalid UTF-8 in a text message")
        except ProtocolError:
            self.ws.close(CLOSE_PROTOCOL_ERROR, b"protocol error")
        except (WebSocketError, OSError):
            if self._exceeded:
                self.ws.close(CLOSE_MESSAGE_TOO_BIG, f"message over {self.max_bytes} bytes".encode())
                self._discard_unread()
            else:
                self.ws.closed = True  # the connection dropped mid-frame
        return None


def bounded_receiver(ws: Any) -> BoundedReceiver:
    return BoundedReceiver(ws, current_app.config["LAB"].ws_max_message_bytes)


@contextmanager
def going_away_on_shutdown(ws: Any) -> Iterator[None]:
    """gunicorn's graceful stop (HUP, TERM) kills still-open handlers after graceful_timeout;
    without this the client sees the TCP connection drop instead of a close frame."""
    try:
        yield
    except GreenletExit:
        ws.close(CLOSE_GOING_AWAY, b"server restarting: reconnect")
        raise


def echo_loop() -> Response:
    ws = _socket()
    receiver = bounded_receiver(ws)
    with going_away_on_shutdown(ws):
        while (message := receiver.receive()) is not None:
            ws.send(message, binary=not isinstance(message, str))
    return Response(status=204)


class ChatRoom:
    """Clients of one worker process; a send lock per client keeps frames whole."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._members: dict[int, tuple[Any, Semaphore]] = {}

    def join(self, ws: Any) -> int:
        client_id = next(self._ids)
        self._members[client_id] = (ws, Semaphore())
        return client_id

    def leave(self, client_id: int) -> None:
        self._members.pop(client_id, None)

    def relay(self, sender: int, text: str) -> None:
        frame = json.dumps({"from": sender, "msg": text})
        for client_id, (ws, lock) in list(self._members.items()):
            if client_id == sender:
                continue
            try:
                with lock:
                    ws.send(frame)
            except Exception:  # noqa: BLE001 - a dead peer leaves; the others still get it
                self.leave(client_id)


room = ChatRoom()


def make_blueprint(websocket_flag: bool) -> Blueprint:
    """``websocket_flag=False`` declares the routes like /bugs/ws-no-flag (ws-no-flag scenario)."""
    bp = Blueprint("websockets", __name__)

    @bp.route("/ws/echo", websocket=websocket_flag)
    def echo() -> Response:
        return echo_loop()

    @bp.route("/ws/chat", websocket=websocket_flag)
    def chat() -> Response:
        ws = _socket()
        receiver = bounded_receiver(ws)
        client_id = room.join(ws)
        try:
            with going_away_on_shutdown(ws):
                while (message := receiver.receive()) is not None:
                    if isinstance(message, str):
                        room.relay(client_id, message)
        finally:
            room.leave(client_id)
        return Response(status=204)

    @bp.route("/ws/info", websocket=websocket_flag)
    def info() -> Response:
        ws = _socket()
        ws.send(
            json.dumps(
                {
                    "scheme": "wss" if request.scheme == "https" else "ws",
                    "host": request.host,
                    "remote_addr": request.remote_addr,
                    "request_id": g.get("request_id", ""),
                }
            )
        )
        ws.close(1000, "info sent")
        return Response(status=204)

    return bp
