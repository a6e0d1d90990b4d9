"""WebSocket routes (gevent-websocket): echo, chat and info."""

from __future__ import annotations

import itertools
import json
from typing import Any

from flask import Blueprint, Response, abort, g, request
from gevent.lock import Semaphore

WS_KEY = "wsgi.websocket"


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


def echo_loop() -> Response:
    ws = _socket()
    while (message := ws.receive()) is not None:
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
        client_id = room.join(ws)
        try:
            while (message := ws.receive()) is not None:
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
