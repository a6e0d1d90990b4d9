"""WebSocket routes (gevent-websocket): echo, chat and info."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import gevent
from flask import Blueprint, Response, abort, current_app, g, request
from gevent import GreenletExit
from geventwebsocket.exceptions import ProtocolError, WebSocketError

import labsettings as lab
from labsettings import AppSettings

from .. import chat, wssend
from ..middleware import CloseWhenStopping
from ..patches import wsread
from ..patches.wsclose import Close
from .debug import served_by

WS_KEY = "wsgi.websocket"
GOING_AWAY_REASON = "server restarting: reconnect"
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
    frame announcing 4 GiB would take 4 GiB of worker memory. The lab's reader
    (labapp.patches.wsread, LAB_FIX_WS_READ) checks each frame header against the cap first.
    """

    def __init__(self, ws: Any, max_bytes: int) -> None:
        self.ws = ws
        self.max_bytes = max_bytes
        wsread.limit_messages(ws, max_bytes)

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
        """The next message, or None once the socket is closed: by the peer, by a refusal, or by
        another greenlet (the chat relay losing its broker, the graceful stop)."""
        if self.ws.closed:
            return None
        try:
            return self.ws.read_message()
        except UnicodeError:
            self.ws.close(Close.INVALID_PAYLOAD, b"invalid UTF-8 in a text message")
        except ProtocolError:
            self.ws.close(Close.PROTOCOL_ERROR, b"protocol error")
        except wsread.MessageTooBig:
            self.ws.close(Close.MESSAGE_TOO_BIG, f"message over {self.max_bytes} bytes".encode())
            self._discard_unread()
        except (WebSocketError, OSError):
            self.ws.closed = True  # the connection dropped mid-frame
        except (TypeError, AttributeError):
            # Closed by another greenlet during this read: gevent-websocket then trips over the
            # stream and reader its close() cleared. Anything else is a bug, and says so.
            if not self.ws.closed:
                raise
        return None


def send(ws: Any, message: str | bytes) -> bool:
    """``message`` to ``ws`` within the send deadline and cap (labapp/patches/wssend.py); False
    when it was not sent whole: the peer is gone, or it was closed with 1008 (not read in time)
    or 1009 (over the cap)."""
    try:
        ws.send(message)
    except WebSocketError:
        return False
    return True


def bounded_receiver(ws: Any) -> BoundedReceiver:
    settings: AppSettings = current_app.config["LAB"]
    return BoundedReceiver(ws, settings[lab.WS_MAX_MESSAGE])


# The worker's open websockets, for the graceful stop to close.
_open: set[Any] = set()


@contextmanager
def going_away_on_shutdown(ws: Any) -> Iterator[None]:
    """A websocket session that ends with a close frame (1001 and a reason) when the worker stops.

    On gunicorn's graceful stop (TERM, and what HUP sends the old workers) ``close_all_going_away``
    closes every open socket at once: the clients reconnect to a live worker right away, and the
    old worker exits as soon as its last handler returns instead of at graceful_timeout. A
    handler still running when graceful_timeout kills it closes its socket too: without a close
    frame the client would see the connection drop (1006)."""
    _open.add(ws)
    try:
        if CloseWhenStopping.stopping:  # accepted between the signal and the worker's last accept
            ws.close(Close.GOING_AWAY, GOING_AWAY_REASON)
        yield
    except GreenletExit:
        ws.close(Close.GOING_AWAY, GOING_AWAY_REASON)
        raise
    finally:
        _open.discard(ws)


def close_all_going_away() -> None:
    """From the worker's SIGTERM handler: the closes run in a greenlet of their own (a signal
    handler may run in gevent's hub, which must never block)."""

    def close_each() -> None:
        for ws in list(_open):
            ws.close(Close.GOING_AWAY, GOING_AWAY_REASON)

    gevent.spawn(close_each)


def echo_loop() -> Response:
    ws = _socket()
    receiver = bounded_receiver(ws)
    with going_away_on_shutdown(ws):
        # False: the peer left, the worker is stopping, or it did not read in time (closed 1008)
        while (message := receiver.receive()) is not None and send(ws, message):
            pass
    return Response(status=204)


def chat_session(ws: Any, room: chat.Room, whoami: bool) -> None:
    """One /ws/chat client: join, relay each text message, leave. With the broker down the
    client is told (1013 and a reason), at once or mid-session, never left waiting."""
    receiver = bounded_receiver(ws)
    try:
        client_id = room.join(ws)
    except chat.BrokerDown as down:
        ws.close(Close.TRY_AGAIN_LATER, str(down))
        return
    try:
        if whoami:  # the client's id and its worker: the lab page shows them, the checks count them
            hello = json.dumps({"you": client_id, "served_by": served_by()})
            if not wssend.send_frame_within(ws, wssend.text_frame(hello)):
                return
        while (message := receiver.receive()) is not None:
            if isinstance(message, str):
                room.publish(client_id, message)
    except chat.BrokerDown as down:
        ws.close(Close.TRY_AGAIN_LATER, str(down))
    finally:
        room.leave(client_id)


def info_message() -> str:
    """What the app saw of this websocket's handshake: the scheme above all (ws-scheme)."""
    return json.dumps(
        {
            "scheme": "wss" if request.scheme == "https" else "ws",
            "host": request.host,
            "path": request.path,
            "remote_addr": request.remote_addr,
            "request_id": g.get("request_id", ""),
            "served_by": served_by(),
        }
    )


def make_blueprint(websocket_flag: bool, any_path: bool = False) -> Blueprint:
    """``websocket_flag=False`` declares the routes like /bugs/ws-no-flag (ws-no-flag scenario);
    ``any_path`` (LAB_WS_ANY_PATH, lab check only) adds a websocket route on every other path."""
    bp = Blueprint("websockets", __name__)

    if any_path:

        @bp.route("/", websocket=True, endpoint="any_path_root")
        @bp.route("/<path:_anything>", websocket=True)
        def echo_on_any_path(_anything: str = "") -> Response:
            """The info message, then an echo: a user's own websocket location, probed."""
            ws = _socket()
            send(ws, info_message())
            return echo_loop()

    @bp.route("/ws/echo", websocket=websocket_flag)
    def echo() -> Response:
        return echo_loop()

    @bp.route("/ws/chat", websocket=websocket_flag)
    def chat_room() -> Response:
        """Every other member gets each text message; ``?whoami=1`` first sends the client
        ``{"you": <id>, "served_by": {"host", "pid"}}``."""
        ws = _socket()
        with going_away_on_shutdown(ws):
            chat_session(ws, chat.room_of(current_app), bool(request.args.get("whoami")))
        return Response(status=204)

    @bp.route("/ws/info", websocket=websocket_flag)
    def info() -> Response:
        ws = _socket()
        send(ws, info_message())
        ws.close(Close.NORMAL, "info sent")
        return Response(status=204)

    return bp
